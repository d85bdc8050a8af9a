"""The softplus every path of the loss ends with (L = tau * softplus(z))."""

import torch


def softplus(z: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(z)) to full precision for every z; torch's softplus returns z itself above a
    threshold, an error of up to exp(-20) that float64 comparisons would see."""
    return z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))
