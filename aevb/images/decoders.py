"""Decoders p(x|z) that give a distribution per pixel: a body maps z to P outputs per
pixel (..., D, P), and the likelihood's head turns them into a distribution with event (D,).

Gaussian (P = 2: mean and log-scale, of the dequantized, standardized pixels),
Bernoulli (P = 1: the logit) and the discrete likelihoods of :mod:`.pixels`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent

from ..core.distributions import diagonal_normal
from .pixels import DISCRETE_LIKELIHOODS, pixel_distribution, pixel_outputs

CONTINUOUS_OUTPUTS = {"gaussian": 2, "bernoulli": 1}


def outputs_per_pixel(likelihood: str, n_levels: int | None, components: int) -> int:
    """P, the network outputs per pixel (and channel) for ``likelihood``."""
    if likelihood in DISCRETE_LIKELIHOODS:
        return pixel_outputs(likelihood, n_levels, components)
    return CONTINUOUS_OUTPUTS[likelihood]


def per_pixel_distribution(likelihood: str, params: torch.Tensor, n_levels: int | None) -> Distribution:
    """p(x|z) from outputs (..., D, P); batch shape (...), event shape (D,)."""
    if likelihood == "gaussian":
        return diagonal_normal(params[..., 0], params[..., 1])
    if likelihood == "bernoulli":
        return Independent(Bernoulli(logits=params[..., 0]), 1)
    return pixel_distribution(likelihood, params, n_levels)


def pixel_log_prob(dist: Distribution, x: torch.Tensor) -> torch.Tensor:
    """log p(x_j | z) of each pixel (..., D) under a decoder's distribution with event (D,):
    the discrete likelihoods' own, else the per-value terms of an Independent product."""
    own = getattr(dist, "pixel_log_prob", None)
    if own is not None:
        return own(x)
    return dist.base_dist.log_prob(x)


class FlatOutputs(nn.Module):
    """Features (..., H) -> (..., D, P) by one linear layer: an MLP decoder's last layer."""

    def __init__(self, in_features: int, n_features: int, outputs: int):
        super().__init__()
        self.shape = (n_features, outputs)
        self.linear = nn.Linear(in_features, n_features * outputs)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.linear(h).reshape(*h.shape[:-1], *self.shape)


class PixelDecoder(nn.Module):
    """z -> p(x|z): ``body`` gives (..., D, P) outputs, read as ``likelihood`` over ``n_levels``."""

    def __init__(self, body: nn.Module, likelihood: str, n_levels: int | None):
        super().__init__()
        self.body = body
        self.likelihood = likelihood
        self.n_levels = n_levels

    def forward(self, z: torch.Tensor) -> Distribution:
        return per_pixel_distribution(self.likelihood, self.body(z), self.n_levels)


class LevelsToUnit(nn.Module):
    """Levels 0..L-1 -> [-1, 1]: how an encoder sees images scored by a discrete likelihood."""

    def __init__(self, n_levels: int):
        super().__init__()
        self.n_levels = n_levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (2.0 / max(self.n_levels - 1, 1)) - 1.0
