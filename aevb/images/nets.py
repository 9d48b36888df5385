"""Convolutional bodies for images: rows (..., D) in, features or per-pixel outputs out.

Rows are flattened images of shape (H, W) or (H, W, C), channels last, as aevb's
loaders store them. The encoder body halves the resolution until it is at most 4
pixels wide, with a residual block at every resolution, and ends in a linear layer
to a feature vector; the decoder body mirrors it from a latent vector up to P
outputs per pixel, returned as (..., D, P) in the rows' own pixel order.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SMALLEST_SIDE = 4  # the encoder stops halving at this many pixels a side


def channels_of(image_shape: tuple[int, ...]) -> int:
    return image_shape[2] if len(image_shape) == 3 else 1


class ResidualBlock(nn.Module):
    """x + conv(SiLU(conv(SiLU(x)))), 3x3 convolutions keeping the width."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _halvings(image_shape: tuple[int, ...]) -> int:
    """How often the encoder halves the image: until the longer side is at most SMALLEST_SIDE."""
    side = max(image_shape[:2])
    return max(0, math.ceil(math.log2(side / SMALLEST_SIDE))) if side > SMALLEST_SIDE else 0


def _reduced_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(h, w) after the encoder's halvings (stride-2 convolutions with padding 1 round up)."""
    h, w = image_shape[:2]
    for _ in range(_halvings(image_shape)):
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


class ConvEncoderBody(nn.Module):
    """Rows (..., H*W*C) -> features (..., out_features) through residual convolutions."""

    def __init__(self, image_shape: tuple[int, ...], width: int, out_features: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = [nn.Conv2d(channels_of(image_shape), width, 3, padding=1), ResidualBlock(width)]
        for _ in range(_halvings(image_shape)):
            layers += [nn.Conv2d(width, width, 3, stride=2, padding=1), ResidualBlock(width)]
        self.convs = nn.Sequential(*layers, nn.SiLU())
        h, w = _reduced_shape(image_shape)
        self.linear = nn.Sequential(nn.Linear(width * h * w, out_features), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        h, w = self.image_shape[:2]
        images = x.reshape(-1, h, w, channels_of(self.image_shape)).permute(0, 3, 1, 2)  # (N, C, H, W)
        features = self.convs(images).flatten(1)
        return self.linear(features).reshape(*lead, -1)


class ConvDecoderBody(nn.Module):
    """Latents (..., d) -> per-pixel outputs (..., H*W*C, P), mirroring :class:`ConvEncoderBody`."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, ...], width: int, outputs_per_pixel: int):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.width = width
        self.outputs = outputs_per_pixel
        self.start = _reduced_shape(image_shape)
        self.linear = nn.Sequential(nn.Linear(latent_dim, width * self.start[0] * self.start[1]), nn.SiLU())
        layers: list[nn.Module] = [ResidualBlock(width)]
        for _ in range(_halvings(image_shape)):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1),
                       ResidualBlock(width)]
        layers += [nn.SiLU(), nn.Conv2d(width, channels_of(image_shape) * outputs_per_pixel, 3, padding=1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h, w = self.image_shape[:2]
        c = channels_of(self.image_shape)
        maps = self.convs(self.linear(z.reshape(-1, z.shape[-1])).reshape(-1, self.width, *self.start))
        maps = maps[:, :, :h, :w]  # an odd side was rounded up on the way down
        out = maps.reshape(-1, c, self.outputs, h, w).permute(0, 3, 4, 1, 2)  # (N, H, W, C, P)
        return out.reshape(*lead, h * w * c, self.outputs)
