"""Network heads that turn features into torch.distributions objects.

Every head maps features h of shape (..., H) to a distribution whose event is
the last dimension, so ``log_prob`` returns one value per row, summed over the
event (latent or data) dimensions.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import (
    Bernoulli,
    Independent,
    MultivariateNormal,
    Normal,
    kl_divergence,
    register_kl,
)

from .noise import ReparameterizedMultivariateNormal, ReparameterizedNormal

# Guard rails on log-scales: exp() of these stays finite and away from 0 in float32.
MIN_LOG_SCALE = math.log(1e-4)
MAX_LOG_SCALE = math.log(1e4)


def bounded_scale(log_scale: torch.Tensor) -> torch.Tensor:
    """exp(log_scale), with the log-scale clamped to [MIN_LOG_SCALE, MAX_LOG_SCALE]."""
    return log_scale.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE).exp()


def diagonal_normal(loc: torch.Tensor, log_scale: torch.Tensor) -> Independent:
    """N(loc, diag(exp(log_scale)^2)) with the last dimension as the event."""
    return Independent(ReparameterizedNormal(loc, bounded_scale(log_scale)), 1)


class DiagonalGaussianHead(nn.Module):
    """(mu, log sigma) = Linear(h);  q(z|x) = prod_i N(z_i; mu_i, sigma_i^2)   (seed 003, 2.36-2.37)."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * dim)

    def forward(self, h: torch.Tensor) -> Independent:
        loc, log_scale = self.linear(h).chunk(2, dim=-1)
        return diagonal_normal(loc, log_scale)


class BernoulliHead(nn.Module):
    """p(x|z) = prod_j Bernoulli(x_j; sigmoid(logit_j)), logits = Linear(h)."""

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.linear = nn.Linear(in_features, dim)

    def forward(self, h: torch.Tensor) -> Independent:
        return Independent(Bernoulli(logits=self.linear(h)), 1)


class GaussianFeatureScaleHead(nn.Module):
    """p(x|z) = N(f(z), diag(sigma^2)) with sigma one learned parameter per feature.

    ``init_log_scale`` should be near the data's log standard deviation: a
    log-scale moves about one learning rate per Adam step, so a start far
    from the right noise level costs many epochs.
    """

    def __init__(self, in_features: int, dim: int, init_log_scale: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_features, dim)
        self.log_scale = nn.Parameter(torch.full((dim,), float(init_log_scale)))

    def forward(self, h: torch.Tensor) -> Independent:
        loc = self.linear(h)
        return diagonal_normal(loc, self.log_scale.expand_as(loc))


class GaussianOutputScaleHead(nn.Module):
    """p(x|z) = N(f(z), diag(sigma(z)^2)): the decoder outputs a log-scale per row and feature."""

    def __init__(self, in_features: int, dim: int, init_log_scale: float = 0.0):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * dim)
        with torch.no_grad():
            self.linear.bias[dim:] = float(init_log_scale)

    def forward(self, h: torch.Tensor) -> Independent:
        loc, log_scale = self.linear(h).chunk(2, dim=-1)
        return diagonal_normal(loc, log_scale)


class FullCovarianceGaussianHead(nn.Module):
    """q(z|x) = N(mu, L L^T) with L lower triangular: the linear layer gives mu, the log
    of L's diagonal (so it is positive) and L's strictly lower part.

    Unlike the diagonal head it can represent a posterior with correlated latents.
    """

    def __init__(self, in_features: int, dim: int):
        super().__init__()
        self.dim = dim
        self.linear = nn.Linear(in_features, 2 * dim + dim * (dim - 1) // 2)
        self.register_buffer("lower_index", torch.tril_indices(dim, dim, offset=-1), persistent=False)

    def forward(self, h: torch.Tensor) -> ReparameterizedMultivariateNormal:
        out = self.linear(h)
        loc, log_diagonal, lower = out.split([self.dim, self.dim, out.shape[-1] - 2 * self.dim], dim=-1)
        diagonal = log_diagonal.clamp(MIN_LOG_SCALE, MAX_LOG_SCALE).exp()
        strictly_lower = out.new_zeros(*out.shape[:-1], self.dim, self.dim)  # (..., d, d)
        strictly_lower[..., self.lower_index[0], self.lower_index[1]] = lower
        return ReparameterizedMultivariateNormal(loc, scale_tril=strictly_lower + torch.diag_embed(diagonal))


@register_kl(MultivariateNormal, Independent)
def _kl_full_to_diagonal(q: MultivariateNormal, p: Independent) -> torch.Tensor:
    """KL(N(m, S) || N(mu, diag sigma^2)) in closed form, by writing p as a MultivariateNormal."""
    if not isinstance(p.base_dist, Normal) or p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    return kl_divergence(q, MultivariateNormal(p.base_dist.loc, scale_tril=torch.diag_embed(p.base_dist.scale)))
