"""Objectives: functions of (model, x) that return one value per row, in nats.

    ELBO(x)   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                     <= log p(x)
    IWAE_K(x) = E[log (1/K) sum_k p(x, z_k) / q(z_k|x)],  z_k ~ q(z|x)    <= log p(x)

with ELBO = IWAE_1 <= IWAE_K <= IWAE_{K+1} (Burda et al., 2016). Both use
reparameterized draws of z, so they can be maximized directly; both work for
any posterior and prior the model returns (the KL is in closed form where torch
has it registered, else the Monte-Carlo estimate log q(z|x) - log p(z)).

Training may maximize a modified objective (:func:`training_objective`): the
ELBO with a KL weight (beta, warm-up) and free bits, or the IWAE bound with
the prior-to-posterior ratio weighted the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Distribution, Independent, kl_divergence

from ..config import VAEConfig
from ..vae.model import LatentVariableModel


@dataclass
class ElboTerms:
    """The ELBO and its two parts, each of shape (B,): elbo = reconstruction - kl.

    ``kl_per_dimension`` (B, d) splits the KL over latent dimensions where q and
    p both factorize over them with a closed-form KL each; else None.
    """

    elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_dimension: torch.Tensor | None = None
    layer_sizes: tuple[int, ...] | None = None  # the stochastic layers' sizes in kl_per_dimension, if a hierarchy


def kl_per_dimension(q: Distribution, p: Distribution) -> torch.Tensor | None:
    """KL(q_i || p_i) for each latent dimension i, shape (B, d), when q and p are both
    products over the dimensions (Independent over one dimension) with a closed form; else None."""
    factorized = all(isinstance(dist, Independent) and dist.reinterpreted_batch_ndims == 1 for dist in (q, p))
    if not factorized:
        return None
    try:
        return kl_divergence(q.base_dist, p.base_dist)
    except NotImplementedError:
        return None


def kl_to_prior(q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
    """KL(q || p) per row: closed form where torch has one registered, else the
    Monte-Carlo estimate mean_l [log q(z_l) - log p(z_l)] over the draws z (L, B, d)."""
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        return (q.log_prob(z) - p.log_prob(z)).mean(0)


def elbo(
    model: LatentVariableModel, x: torch.Tensor, n_samples: int = 1, posterior: Distribution | None = None
) -> ElboTerms:
    """Per-row ELBO of rows x (B, D) with ``n_samples`` draws of z for the reconstruction term;
    ``posterior`` is q(z|x) when the caller has it already (else the encoder computes it)."""
    q, p = model.posterior(x) if posterior is None else posterior, model.prior_distribution()
    z = q.rsample((n_samples,))  # (L, B, d)
    reconstruction = model.likelihood(z).log_prob(x).mean(0)  # (B,)
    # A hierarchy's KL: per layer in closed form given the draws of the layers above it.
    layered = getattr(q, "kl_per_dimension_given", None)
    kl_dims = layered(z).mean(0) if layered is not None else kl_per_dimension(q, p)  # (B, d) or None
    kl = kl_dims.sum(-1) if kl_dims is not None else kl_to_prior(q, p, z)  # (B,)
    return ElboTerms(reconstruction - kl, reconstruction, kl, kl_dims, getattr(q, "layer_sizes", None))


def log_likelihood_and_ratio(
    model: LatentVariableModel, x: torch.Tensor, q: Distribution, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x|z_k) and log p(z_k) - log q(z_k|x) for k draws z_k ~ q = q(z|x); each (k, B)."""
    z = q.rsample((k,))  # (k, B, d)
    return model.likelihood(z).log_prob(x), model.prior_distribution().log_prob(z) - q.log_prob(z)


def log_importance_weights(
    model: LatentVariableModel, x: torch.Tensor, q: Distribution, k: int
) -> torch.Tensor:
    """log p(x, z_k) - log q(z_k) for k draws z_k ~ q, a proposal with batch shape (B,); shape (k, B)."""
    log_likelihood, log_ratio = log_likelihood_and_ratio(model, x, q, k)
    return log_likelihood + log_ratio


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


# -- training objectives -------------------------------------------------------------


def kl_weight(config: VAEConfig, epoch: float) -> float:
    """The KL weight at (1-based) ``epoch``: beta, ramped linearly from 0 over kl_warmup epochs."""
    if config.kl_warmup <= 0:
        return config.beta
    return config.beta * min(1.0, (epoch - 1) / config.kl_warmup)


def free_bits_kl(terms: ElboTerms, free_bits: float, latent_dim: int) -> torch.Tensor:
    """sum_g max(KL_g, free_bits * |g|) per row, shape (B,), over groups g of latent
    dimensions: each dimension where the KL splits over them, else one group of all d.

    Below the threshold the KL of a group costs nothing, so the encoder can spend
    that much information on it without a penalty (Kingma et al., 2016). In a
    hierarchy the groups are the stochastic layers (free bits per layer, as in the
    ladder VAE).
    """
    if terms.layer_sizes is not None:
        layers = terms.kl_per_dimension.split(list(terms.layer_sizes), dim=-1)
        return sum(kl.sum(-1).clamp(min=free_bits * kl.shape[-1]) for kl in layers)
    if terms.kl_per_dimension is not None:
        return terms.kl_per_dimension.clamp(min=free_bits).sum(-1)
    return terms.kl.clamp(min=free_bits * latent_dim)


def elbo_objective(model: LatentVariableModel, x: torch.Tensor, config: VAEConfig, weight: float):
    """reconstruction - weight * KL (with free bits), per row; and the plain ELBO terms."""
    terms = elbo(model, x, config.mc_samples)
    kl = free_bits_kl(terms, config.free_bits, config.latent_dim) if config.free_bits > 0 else terms.kl
    return terms.reconstruction - weight * kl, terms


def iwae_objective(model: LatentVariableModel, x: torch.Tensor, config: VAEConfig, weight: float):
    """log (1/k) sum_k p(x|z_k) [p(z_k) / q(z_k|x)]^weight per row (the IWAE bound at
    weight 1); and the ELBO terms estimated from the same k draws (Monte-Carlo KL)."""
    log_likelihood, log_ratio = log_likelihood_and_ratio(model, x, model.posterior(x), config.k)  # (k, B) each
    bound = torch.logsumexp(log_likelihood + weight * log_ratio, dim=0) - math.log(config.k)
    reconstruction, kl = log_likelihood.mean(0), -log_ratio.mean(0)
    return bound, ElboTerms(reconstruction - kl, reconstruction, kl)


TRAINING_OBJECTIVES = {"elbo": elbo_objective, "iwae": iwae_objective}


def training_objective(
    model: LatentVariableModel, x: torch.Tensor, config: VAEConfig, weight: float = 1.0
) -> tuple[torch.Tensor, ElboTerms]:
    """What training maximizes for rows x (B, D), per row (B,), under config.objective,
    beta and free bits, at KL weight ``weight`` (see :func:`kl_weight`); with the plain
    ELBO terms of the same draws, for monitoring."""
    return TRAINING_OBJECTIVES[config.objective](model, x, config, weight)
