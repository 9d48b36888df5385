"""Objectives: functions of (model, x) that return one value per row, in nats.

    ELBO(x)   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                     <= log p(x)
    IWAE_K(x) = E[log (1/K) sum_k p(x, z_k) / q(z_k|x)],  z_k ~ q(z|x)    <= log p(x)

with ELBO = IWAE_1 <= IWAE_K <= IWAE_{K+1} (Burda et al., 2016). Both use the
reparameterized draw z = mu + sigma * eps, so they can be maximized directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Distribution, kl_divergence

from .model import LatentVariableModel


@dataclass
class ElboTerms:
    """The ELBO and its two parts, each of shape (B,): elbo = reconstruction - kl."""

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def kl_to_prior(q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
    """KL(q || p) per row: closed form where torch has one registered, else the
    Monte-Carlo estimate mean_l [log q(z_l) - log p(z_l)] over the draws z (L, B, d)."""
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return (q.log_prob(z) - p.log_prob(z)).mean(0)


def elbo(model: LatentVariableModel, x: torch.Tensor, n_samples: int = 1) -> ElboTerms:
    """Per-row ELBO of rows x (B, D) with ``n_samples`` draws of z for the reconstruction term."""
    q = model.posterior(x)
    z = q.rsample((n_samples,))  # (L, B, d)
    reconstruction = model.likelihood(z).log_prob(x).mean(0)  # (B,)
    kl = kl_to_prior(q, model.prior(), z)  # (B,)
    return ElboTerms(reconstruction - kl, reconstruction, kl)


def log_importance_weights(
    model: LatentVariableModel, x: torch.Tensor, q: Distribution, k: int
) -> torch.Tensor:
    """log p(x, z_k) - log q(z_k) for k draws z_k ~ q, a proposal with batch shape (B,); shape (k, B)."""
    z = q.rsample((k,))  # (k, B, d)
    return model.likelihood(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)


@dataclass
class ImportanceEstimate:
    """log p(x) estimates and the effective sample size of their weights, each of shape (B,)."""

    log_marginal: torch.Tensor
    effective_sample_size: torch.Tensor


def importance_sampling(
    model: LatentVariableModel,
    x: torch.Tensor,
    k: int,
    proposal: Distribution,
    chunk_size: int | None = None,
) -> ImportanceEstimate:
    """log (1/k) sum_k p(x, z_k) / r(z_k), z_k ~ r, per row, for a proposal r with batch shape (B,).

    With r = q(z|x) this is IWAE_k; with r = p(z) it is naive Monte Carlo,
    log mean_k p(x|z_k), which needs vastly more draws. The effective sample
    size (sum w)^2 / sum w^2 lies in [1, k] and says how many draws counted.
    The draws are taken ``chunk_size`` at a time and combined with running
    log-sum-exps, so memory grows with chunk_size, not with k.
    """
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    chunk_size = k if chunk_size is None else max(1, min(chunk_size, k))
    log_sum = log_sum_squares = None
    for start in range(0, k, chunk_size):
        log_w = log_importance_weights(model, x, proposal, min(chunk_size, k - start))
        parts = torch.logsumexp(log_w, dim=0), torch.logsumexp(2 * log_w, dim=0)
        if log_sum is None:
            log_sum, log_sum_squares = parts
        else:
            log_sum = torch.logaddexp(log_sum, parts[0])
            log_sum_squares = torch.logaddexp(log_sum_squares, parts[1])
    return ImportanceEstimate(log_sum - math.log(k), torch.exp(2 * log_sum - log_sum_squares))


def iwae(model: LatentVariableModel, x: torch.Tensor, k: int, chunk_size: int | None = None) -> torch.Tensor:
    """Per-row importance-weighted bound IWAE_k (proposal q(z|x)), shape (B,)."""
    return importance_sampling(model, x, k, model.posterior(x), chunk_size).log_marginal
