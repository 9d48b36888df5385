"""The epsilon-predicting network for rows: eps_hat(z_t, gamma_t), an MLP with Fourier features.

It sees the noise level as gamma_t, never as t: so the continuous-time bound
depends on the schedule only through its end points (see :mod:`.schedule`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.nets import mlp
from .schedule import GAMMA_MAX, GAMMA_MIN


def sinusoidal_embedding(position: torch.Tensor, size: int) -> torch.Tensor:
    """Sines and cosines of ``position`` (B,) at ``size // 2`` geometric frequencies, (B, size)."""
    half = size // 2
    frequencies = torch.exp(-math.log(10_000) * torch.arange(half, dtype=position.dtype, device=position.device) / max(half - 1, 1))
    angles = 1000 * position.unsqueeze(-1) * frequencies  # (B, half)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class FourierFeatures(nn.Module):
    """sin and cos of 2 pi 2^k z_j / spacing_j for octaves k = 0, -1, ..., 1 - n: periods of one
    and more level spacings, the fine detail a smooth net would miss (VDM, appendix C)."""

    def __init__(self, spacing: torch.Tensor, octaves: int):
        super().__init__()
        self.register_buffer("frequency", 2 * math.pi / spacing)  # (D,)
        self.register_buffer("octave", 2.0 ** -torch.arange(octaves, dtype=spacing.dtype))  # (n,)

    @property
    def out_features(self) -> int:
        return 2 * len(self.frequency) * len(self.octave)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        angles = (z * self.frequency).unsqueeze(-1) * self.octave  # (B, D, n)
        return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)  # (B, 2 D n)


class EpsilonMLP(nn.Module):
    """eps_hat(z, gamma) = sigma z + net([z, fourier(z), embed(gamma)]).

    The first term is the exact answer for N(0, I) data (E[eps | z] = sigma z when
    alpha^2 + sigma^2 = 1), which standardized data starts close to; the net, whose
    last layer starts at zero, learns the rest.
    """

    def __init__(self, n_features: int, hidden: tuple[int, ...], spacing: torch.Tensor, octaves: int,
                 embedding: int = 32):
        super().__init__()
        self.fourier = FourierFeatures(spacing, octaves) if octaves > 0 else None
        self.embedding = embedding
        width = n_features + (self.fourier.out_features if self.fourier is not None else 0) + embedding
        self.body = mlp(width, hidden)
        self.out = nn.Linear(hidden[-1], n_features)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """z (B, D), gamma (B,) -> eps_hat (B, D)."""
        level = (gamma - GAMMA_MIN) / (GAMMA_MAX - GAMMA_MIN)  # ~[0, 1] for the usual end points
        parts = [z, sinusoidal_embedding(level, self.embedding)]
        if self.fourier is not None:
            parts.append(self.fourier(z))
        sigma = torch.sigmoid(gamma).sqrt().unsqueeze(-1)
        return sigma * z + self.out(self.body(torch.cat(parts, dim=-1)))
