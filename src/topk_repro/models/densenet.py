"""DenseNet-BC for 32x32 images, as the paper uses it ("40-40": depth 40, growth rate 40).

Bottleneck layers (BN-ReLU-1x1 conv to 4 x growth, BN-ReLU-3x3 conv to growth), compression 0.5
in the transitions, no dropout, a 3x3 stem conv to 2 x growth channels, 3 dense blocks of
(depth - 4) / 6 layers, then BN-ReLU, global average pooling and a linear classifier.
"""

from dataclasses import dataclass

import torch
from torch import nn

from topk_repro.config.components import ModelSettings, at_least


@dataclass
class Settings(ModelSettings):
    depth: int
    growth_rate: int
    bottleneck_factor: int
    compression: float


def check(cfg, num_classes: int) -> None:
    at_least("model.depth", cfg.depth, 10)
    if (cfg.depth - 4) % 6:
        raise ValueError(f"model.depth must be 6 n + 4 for DenseNet-BC, got {cfg.depth}")
    at_least("model.growth_rate", cfg.growth_rate, 1)
    at_least("model.bottleneck_factor", cfg.bottleneck_factor, 1)
    if not 0 < cfg.compression <= 1:
        raise ValueError(f"model.compression must be in (0, 1], got {cfg.compression}")


class _DenseLayer(nn.Module):
    def __init__(self, channels: int, growth_rate: int, bottleneck_factor: int):
        super().__init__()
        inner = bottleneck_factor * growth_rate
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, inner, 1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def _transition(channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, out_channels, 1, bias=False),
        nn.AvgPool2d(2),
    )


class DenseNetBC(nn.Module):
    def __init__(
        self,
        num_classes: int,
        depth: int = 40,
        growth_rate: int = 40,
        bottleneck_factor: int = 4,
        compression: float = 0.5,
    ):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"model.depth must be 6 n + 4 for DenseNet-BC, got {depth}")
        layers_per_block = (depth - 4) // 6
        channels = 2 * growth_rate
        modules: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                modules.append(_DenseLayer(channels, growth_rate, bottleneck_factor))
                channels += growth_rate
            if block < 2:
                out_channels = int(channels * compression)
                modules.append(_transition(channels, out_channels))
                channels = out_channels
        modules += [
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.features = nn.Sequential(*modules)
        self.classifier = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
