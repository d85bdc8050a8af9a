"""CIFAR augmentation and normalisation (the paper's): random 32 crop after 4-pixel zero padding,
horizontal flip with probability 1/2, then per-channel normalisation.  One batched function
serves both input pipelines, so they draw from the same distribution by construction.
"""

import torch

CIFAR_MEAN = (125.3 / 255, 123.0 / 255, 113.9 / 255)
CIFAR_STD = (63.0 / 255, 62.1 / 255, 66.7 / 255)
PAD = 4


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Augment a uint8 or float batch (B, C, H, W): zero-pad, crop back to (H, W), maybe flip."""
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
    device = images.device
    offsets = torch.randint(0, 2 * PAD + 1, (2, batch), generator=generator, device=device)
    flips = torch.rand(batch, generator=generator, device=device) < 0.5
    rows = offsets[0, :, None] + torch.arange(height, device=device)
    cols = offsets[1, :, None] + torch.arange(width, device=device)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    index = torch.arange(batch, device=device)[:, None, None]
    cropped = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    return cropped.permute(0, 3, 1, 2)


def normalize(images_uint8: torch.Tensor, mean=CIFAR_MEAN, std=CIFAR_STD) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 normalised."""
    mean_t = torch.tensor(mean, device=images_uint8.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=images_uint8.device).view(1, -1, 1, 1)
    return (images_uint8.float() / 255 - mean_t) / std_t
