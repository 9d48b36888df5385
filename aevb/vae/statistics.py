"""Everything scoring and evaluation report about rows, from one encoder pass per batch.

For rows y (B, D) in the model's space, q(z|x) is computed once and gives

    elbo, reconstruction, kl       ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)), one draw of z
    kl_per_dimension (B, d)        KL(q(z_i|x) || p(z_i)) where q and p factorize over i
    log_likelihood                 log (1/k) sum_k p(x, z_k) / r(z_k), z_k ~ r: IWAE_k for r = q(z|x),
                                   naive Monte Carlo for r = p(z)
    effective_sample_size          (sum_k w_k)^2 / sum_k w_k^2 of those k weights, in [1, k]
    exact_log_likelihood           log p(x) in closed form, for linear-Gaussian models
    code (B, d)                    E_q[z|x], the latent mean

each of shape (B,) unless shown, in nats of the model's data: the caller adds the
preprocessor's log-Jacobian and aggregates over rows (:mod:`aevb.core.evaluation`).
"""

from __future__ import annotations

import contextlib

import torch

from ..core.objectives import elbo, importance_sampling
from .model import LatentVariableModel

# Keys of row_statistics that are log-densities of x (the caller adds the log-Jacobian to them).
LOG_DENSITIES = ("elbo", "reconstruction", "log_likelihood", "exact_log_likelihood")


def _one_stream(name: str):
    return contextlib.nullcontext()


@torch.no_grad()
def row_statistics(
    model: LatentVariableModel,
    y: torch.Tensor,
    k: int | None = None,
    *,
    encode_at: torch.Tensor | None = None,
    proposal: str = "posterior",
    streams=_one_stream,
    chunk_size: int | None = None,
) -> dict[str, torch.Tensor]:
    """The per-row statistics above of rows y (B, D), as a dict of tensors.

    ``k`` draws give the estimate, its effective sample size and, where the model has
    one, the exact log p(x) (None: the ELBO terms only). ``encode_at`` adds the latent
    means E_q[z|x] at those rows: y itself reuses q(z|x); other rows (cells' centres
    for dequantized data) take an encoder pass of their own. ``streams(name)`` is a
    context for the draws of the ELBO ("elbo") and of the estimate ("estimate")
    (:class:`aevb.core.noise.DrawStreams`); by default both draw from torch's generator.
    ``chunk_size`` bounds the draws of z held at once.
    """
    q = model.posterior(y)
    with streams("elbo"):
        terms = elbo(model, y, posterior=q)
    out = {"elbo": terms.elbo, "reconstruction": terms.reconstruction, "kl": terms.kl}
    if terms.kl_per_dimension is not None:
        out["kl_per_dimension"] = terms.kl_per_dimension
    if k is not None:
        r = q if proposal == "posterior" else model.prior_distribution().expand((len(y),))
        with streams("estimate"):
            estimate = importance_sampling(model, y, k, r, chunk_size)
        out["log_likelihood"] = estimate.log_marginal
        out["effective_sample_size"] = estimate.effective_sample_size
        marginal = model.exact_marginal()
        if marginal is not None:
            out["exact_log_likelihood"] = marginal.log_prob(y)
    if encode_at is not None:
        out["code"] = (q if encode_at is y else model.posterior(encode_at)).mean
    return out
