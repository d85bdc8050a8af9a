"""A small CNN for 32x32 images: the demo's and the tests' model (fast on a CPU)."""

from dataclasses import dataclass

from torch import nn

from topk_repro.config.components import ModelSettings, at_least


@dataclass
class Settings(ModelSettings):
    width: int


def check(cfg, num_classes: int) -> None:
    at_least("model.width", cfg.width, 1)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


def cifar_small(num_classes: int, width: int = 32) -> nn.Sequential:
    return nn.Sequential(
        _block(3, width),
        _block(width, 2 * width),
        _block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, num_classes),
    )
