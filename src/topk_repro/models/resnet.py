"""torchvision's ResNet-18 (`model=resnet18`), the paper's ImageNet model."""

from dataclasses import dataclass

from torch import nn
from torchvision.models import resnet18 as torchvision_resnet18


@dataclass
class Settings:
    name: str


def resnet18(num_classes: int) -> nn.Module:
    return torchvision_resnet18(num_classes=num_classes)
