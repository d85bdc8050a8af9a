"""Models of the framework; `MODELS` is the one place where they are registered.

A model is one module with a builder `(num_classes, **options) -> nn.Module`, the schema of its
config (a dataclass extending `ModelSettings`) and its check, plus one config in
`configs/model/` whose `name` is its key here and whose other keys are the options.
"""

from torch import nn

from topk_repro.config.components import Component, ModelSettings, Registry
from topk_repro.models import cifar_small, densenet, resnet

MODELS = Registry(
    "model",
    ModelSettings,
    {
        "densenet": Component(densenet.DenseNetBC, densenet.Settings, densenet.check),
        "cifar_small": Component(cifar_small.cifar_small, cifar_small.Settings, cifar_small.check),
        "resnet18": Component(resnet.resnet18, resnet.Settings, resnet.check),
    },
)


def build_model(cfg, num_classes: int) -> nn.Module:
    """Build the model named by `cfg.name` (the `model` config group), after its checks."""
    MODELS.check(cfg, num_classes)
    options = {key: value for key, value in cfg.items() if key != "name"}
    return MODELS.look_up(cfg.name).build(num_classes, **options)
