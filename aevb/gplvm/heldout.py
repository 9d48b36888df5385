"""Inference for new rows with the GP frozen: fit q(z*) per row, then estimate log p(x*).

For a new row x* (holes allowed), the model gives log p(x*) = log E_{p(z)} p(x*|z), with
p(x*|z) the sparse GP's predictive prod_d N(x*_d; E f_d(z), Var f_d(z) + noise_d) over
the observed features. q(z*) = N(m, diag s^2) maximizes, per row,

    ELBO(x*) = E_q[log p(x*|z)] - KL(q(z*) || N(0, I))

by Adam on a fixed set of S standard-normal draws (common to every row), so the fit of a
row depends on that row alone: not on the other rows, their order or the batching. The
estimate is the importance-weighted bound with q(z*) as proposal (Burda et al., 2016),

    log p(x*) >= log 1/K sum_k p(x*|z_k) p(z_k) / q(z_k),   z_k ~ q(z*),

whose expectation rises with K towards log p(x*) and is at least the ELBO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Independent, Normal, kl_divergence

from ..train.threads import StepThreads, kept_threads
from .model import SparseGPDecoder


def holes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x with 0 at the holes, observed mask of 0/1 in x's dtype), both (B, D)."""
    observed = ~torch.isnan(x)
    return torch.where(observed, x, torch.zeros_like(x)), observed.to(x.dtype)


def _starting_means(decoder: SparseGPDecoder, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Per row, the best of the inducing inputs, the origin and the encoder's mean under
    log p(x|z) + log p(z): a start near the right mode of a possibly multimodal posterior."""
    candidates = torch.cat([decoder.inducing, decoder.inducing.new_zeros(1, decoder.latent_dim)])
    score = decoder.log_likelihood(x, observed, candidates[:, None, :].expand(-1, len(x), -1))  # (C, B)
    score = score + decoder.prior().log_prob(candidates)[:, None]
    best = candidates[score.argmax(0)]  # (B, Q)
    encoded = decoder.encode(x)
    if encoded is None:
        return best
    at_encoder = decoder.log_likelihood(x, observed, encoded.mean) + decoder.prior().log_prob(encoded.mean)
    return torch.where((at_encoder > score.max(0).values)[:, None], encoded.mean, best)


def fit_posteriors(
    decoder: SparseGPDecoder, x: torch.Tensor, observed: torch.Tensor, steps: int, draws: int, seed: int = 0,
    learning_rate: float = 0.05, threads: int | None = None,
) -> Independent:
    """q(z*) = N(m, diag s^2) of each row of x (B, D), fitted with the decoder frozen, on
    ``threads`` intra-op threads (default: timed as the training loop does)."""
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(draws, decoder.latent_dim, generator=generator, dtype=x.dtype)[:, None, :]  # (S, 1, Q)
    with torch.no_grad():
        start = _starting_means(decoder, x, observed)
    mean = start.clone().requires_grad_(True)
    log_scale = torch.full_like(start, math.log(0.1)).requires_grad_(True)
    optimizer = torch.optim.Adam([mean, log_scale], lr=learning_rate)
    frozen = [p.requires_grad for p in decoder.parameters()]
    for p in decoder.parameters():
        p.requires_grad_(False)
    try:
        with kept_threads() as available:
            step_threads = StepThreads(decoder, draws * len(x), available, threads)
            for _ in range(steps):
                step_threads.before_step()
                q = Independent(Normal(mean, log_scale.exp()), 1)
                z = mean + log_scale.exp() * eps  # (S, B, Q)
                elbo = decoder.log_likelihood(x, observed, z).mean(0) - kl_divergence(q, decoder.prior(mean.shape[:1]))
                optimizer.zero_grad()
                (-elbo.sum()).backward()  # rows are independent: the sum's gradient is each row's own
                optimizer.step()
                step_threads.after_step()
    finally:
        for p, flag in zip(decoder.parameters(), frozen):
            p.requires_grad_(flag)
    return Independent(Normal(mean.detach(), log_scale.detach().exp()), 1)


@dataclass
class HeldOut:
    """Per-row figures (B,) of new rows, in nats of the model's data."""

    log_marginal: torch.Tensor  # importance-weighted estimate of log p(x*)
    elbo: torch.Tensor  # E_q[log p(x*|z)] (the K draws) - KL (closed form)
    reconstruction: torch.Tensor  # E_q[log p(x*|z)]
    kl: torch.Tensor  # KL(q(z*) || p(z)), closed form
    kl_per_dimension: torch.Tensor  # (B, Q)
    effective_sample_size: torch.Tensor
    mean: torch.Tensor  # E_q[z*], (B, Q)


@torch.no_grad()
def importance_weighted(
    decoder: SparseGPDecoder, x: torch.Tensor, observed: torch.Tensor, q: Independent, k: int, seed: int = 0,
    threads: int | None = None,
) -> HeldOut:
    """The K-draw estimate of log p(x*) with proposal q(z*). The standard-normal draws come from
    ``seed`` and are shared by the rows, so a row's figure depends on that row alone. One pass
    with nothing to time: on one thread unless ``threads`` says otherwise (on a shared 2-core
    CPU two threads made it 3x slower)."""
    with kept_threads(threads or 1):
        return _importance_weighted(decoder, x, observed, q, k, seed)


def _importance_weighted(decoder, x, observed, q, k, seed) -> HeldOut:
    generator = torch.Generator().manual_seed(seed)
    eps = torch.randn(k, 1, decoder.latent_dim, generator=generator, dtype=x.dtype)
    z = q.mean + q.stddev * eps  # (K, B, Q)
    log_likelihood = decoder.log_likelihood(x, observed, z)  # (K, B)
    log_w = log_likelihood + decoder.prior().log_prob(z) - q.log_prob(z)
    per_dimension = kl_divergence(q.base_dist, Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean)))
    kl = per_dimension.sum(-1)
    reconstruction = log_likelihood.mean(0)
    lse = torch.logsumexp(log_w, 0)
    return HeldOut(
        log_marginal=lse - math.log(k),
        elbo=reconstruction - kl,
        reconstruction=reconstruction,
        kl=kl,
        kl_per_dimension=per_dimension,
        effective_sample_size=torch.exp(2 * lse - torch.logsumexp(2 * log_w, 0)),
        mean=q.mean,
    )
