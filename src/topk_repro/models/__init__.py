"""Models of the framework; `build_model` is the one place where they are registered."""

from torch import nn
from torchvision.models import resnet18

from topk_repro.models.cifar_small import cifar_small
from topk_repro.models.densenet import DenseNetBC


def build_model(cfg, num_classes: int) -> nn.Module:
    """Build the model named by `cfg.name` (the `model` config group)."""
    options = {key: value for key, value in cfg.items() if key != "name"}
    if cfg.name == "densenet":
        return DenseNetBC(num_classes, **options)
    if cfg.name == "cifar_small":
        return cifar_small(num_classes, **options)
    if cfg.name == "resnet18":
        return resnet18(num_classes=num_classes, **options)
    raise ValueError(f"model.name must be one of densenet, cifar_small, resnet18, got {cfg.name!r}")
