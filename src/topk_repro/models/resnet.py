"""torchvision's ResNet-18 (`model=resnet18`), the paper's ImageNet model."""

from dataclasses import dataclass

from torch import nn
from torchvision.models import resnet18 as torchvision_resnet18

from topk_repro.config.components import ModelSettings


@dataclass
class Settings(ModelSettings):
    """No options: torchvision's ResNet-18 as it is."""


def check(cfg, num_classes: int) -> None:
    """Nothing beyond the types to check."""


def resnet18(num_classes: int) -> nn.Module:
    return torchvision_resnet18(num_classes=num_classes)
