"""The epsilon network for images: eps_hat(z_t, gamma_t), a small U-Net over the image.

Like :class:`.network.EpsilonMLP` it is an exact base denoiser plus a learned residual
whose last layer starts at zero, so a new model's bound is the base's. The residual is a
U-Net (Ronneberger et al. 2015; the diffusion form of Ho et al. 2020): residual 3x3
convolutions at the image's resolution and at one or two halvings of it, the noise
level added into every block, and skip connections from each resolution on the way down
to the same resolution on the way up. Without normalization layers an output pixel
depends only on the input pixels within its receptive field.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..images.nets import channels_of
from .network import FourierFeatures, StandardNormal, noise_level_embedding

# Images whose smaller side is at least this get a second halving (16 -> 8 -> 4).
TWO_LEVELS_MIN_SIDE = 16


def resolutions(image_shape: tuple[int, ...]) -> int:
    """How many times the U-Net halves the image: once, twice from TWO_LEVELS_MIN_SIDE pixels a side."""
    return 2 if min(image_shape[:2]) >= TWO_LEVELS_MIN_SIDE else 1


class NoiseResidualBlock(nn.Module):
    """x -> skip(x) + conv(SiLU(conv(SiLU(x)) + W e)): two 3x3 convolutions, the embedded
    noise level e (B, E) added to every channel after the first; a 1x1 skip where widths differ."""

    def __init__(self, width_in: int, width: int, embedding: int):
        super().__init__()
        self.first = nn.Conv2d(width_in, width, 3, padding=1)
        self.noise = nn.Linear(embedding, width)
        self.second = nn.Conv2d(width, width, 3, padding=1)
        self.skip = nn.Identity() if width_in == width else nn.Conv2d(width_in, width, 1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W), e (B, E) -> (B, C, H, W)."""
        h = self.first(F.silu(x)) + self.noise(F.silu(e))[:, :, None, None]
        return self.skip(x) + self.second(F.silu(h))


class EpsilonUNet(nn.Module):
    """eps_hat(z, gamma) = base(z, gamma) + unet([z, fourier(z)] as images, embed(gamma)).

    Rows z (B, D) are flattened images (H, W) or (H, W, C), channels last; the Fourier
    features of a pixel's values (level data) are further input channels of that pixel.
    ``width`` channels at every resolution; the output convolution starts at zero.
    """

    def __init__(self, image_shape: tuple[int, ...], width: int, spacing: torch.Tensor, octaves: int,
                 embedding: int = 32, base: nn.Module | None = None):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.base = base if base is not None else StandardNormal()
        self.fourier = FourierFeatures(spacing, octaves) if octaves > 0 else None
        self.embedding = embedding
        channels = channels_of(self.image_shape)
        self.noise = nn.Sequential(nn.Linear(embedding, width), nn.SiLU(), nn.Linear(width, width))
        self.head = nn.Conv2d(channels * (1 + 2 * octaves), width, 3, padding=1)
        levels = resolutions(self.image_shape)
        self.down = nn.ModuleList(NoiseResidualBlock(width, width, width) for _ in range(levels))
        self.downsample = nn.ModuleList(nn.Conv2d(width, width, 3, stride=2, padding=1) for _ in range(levels))
        self.middle = NoiseResidualBlock(width, width, width)
        self.upsample = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(levels))
        self.up = nn.ModuleList(NoiseResidualBlock(2 * width, width, width) for _ in range(levels))
        self.out = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def residual(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """What the U-Net adds to the base denoiser: z (B, D), gamma (B,) -> (B, D)."""
        h, w = self.image_shape[:2]
        pixels = z.reshape(len(z), h, w, -1)  # (B, H, W, C)
        if self.fourier is not None:
            pixels = torch.cat([pixels, self.fourier(z).reshape(len(z), h, w, -1)], dim=-1)  # (B, H, W, C (1 + 2n))
        x = self.head(pixels.permute(0, 3, 1, 2))  # (B, width, H, W)
        e = self.noise(noise_level_embedding(gamma, self.embedding))  # (B, width)
        skips = []
        for block, downsample in zip(self.down, self.downsample):
            x = block(x, e)
            skips.append(x)
            x = downsample(x)  # (B, width, ceil(h / 2), ceil(w / 2))
        x = self.middle(x, e)
        for block, upsample, skip in zip(reversed(self.up), reversed(self.upsample), reversed(skips)):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")[:, :, : skip.shape[2], : skip.shape[3]]
            x = block(torch.cat([upsample(x), skip], dim=1), e)
        return self.out(F.silu(x)).permute(0, 2, 3, 1).reshape(z.shape)  # channels last, as the rows

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """z (B, D), gamma (B,) -> eps_hat (B, D)."""
        return self.base(z, gamma) + self.residual(z, gamma)
