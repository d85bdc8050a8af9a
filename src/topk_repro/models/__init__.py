"""Models of the framework; `MODELS` is the one place where they are registered.

A model is one module with a builder `(num_classes, **options) -> nn.Module` plus one config in
`configs/model/` whose `name` is its key here and whose other keys are the options.
"""

from collections.abc import Callable

from torch import nn
from torchvision.models import resnet18

from topk_repro.models.cifar_small import cifar_small
from topk_repro.models.densenet import DenseNetBC

MODELS: dict[str, Callable[..., nn.Module]] = {
    "densenet": DenseNetBC,
    "cifar_small": cifar_small,
    "resnet18": lambda num_classes, **options: resnet18(num_classes=num_classes, **options),
}


def build_model(cfg, num_classes: int) -> nn.Module:
    """Build the model named by `cfg.name` (the `model` config group)."""
    if cfg.name not in MODELS:
        raise ValueError(f"model.name must be one of {', '.join(MODELS)}, got {cfg.name!r}")
    options = {key: value for key, value in cfg.items() if key != "name"}
    return MODELS[cfg.name](num_classes, **options)
