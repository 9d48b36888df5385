"""Dequantization: integer data x (pixel levels, counts) is modelled as y = x + u, u ~ U[0, 1).

The density of y is constant on each unit cell [x, x + 1) and integrates to P(x)
there, so E_u[log p(x + u)] <= log P(x) (Jensen). The noise's moments,

    E[u] = 1/2,    Var[u] = 1/12,

give those of y from those of x (u independent of x): E[y] = E[x] + 1/2,
Cov[y] = Cov[x] + I/12. A point estimate maps back by flooring a draw, or by
taking 1/2 off a mean.
"""

from __future__ import annotations

import numpy as np
import torch

NOISE_MEAN = 0.5
NOISE_VARIANCE = 1.0 / 12.0


def dequantization_moments(mean, covariance):
    """The mean and (co)variance of x + u, u ~ U[0, 1) independent of x: mean + 1/2, and
    variance + 1/12 (a number or vector of variances) or covariance + I/12 (a matrix)."""
    extra = NOISE_VARIANCE * np.eye(len(covariance)) if np.ndim(covariance) == 2 else NOISE_VARIANCE
    return mean + NOISE_MEAN, covariance + extra


def noise(x: torch.Tensor, generator: torch.Generator | None = None, center: bool = False) -> torch.Tensor:
    """u shaped like x: uniform on [0, 1) from ``generator``, or 1/2 (the centre of each cell)."""
    if center:
        return torch.full_like(x, NOISE_MEAN)
    return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def quantized(y: torch.Tensor, mean: bool = False) -> torch.Tensor:
    """Back from y to the grid of x: a draw is floored; a mean (``mean=True``) loses the 1/2."""
    return (y - NOISE_MEAN) if mean else torch.floor(y)
