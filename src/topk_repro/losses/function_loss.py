"""A loss written as a function of (logits, labels, **settings), as an `nn.Module` criterion."""

from collections.abc import Callable

import torch
from torch import nn


class FunctionLoss(nn.Module):
    """`function(logits, labels, **settings)` as a module (for losses without buffers)."""

    def __init__(self, function: Callable[..., torch.Tensor], **settings):
        super().__init__()
        self.function = function
        self.settings = settings

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.function(logits, labels, **self.settings)

    def extra_repr(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.settings.items())
        return f"{self.function.__name__}, {settings}"
