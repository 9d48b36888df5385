"""The GP-LVM as a model family (:class:`aevb.core.family.Family`).

Its training bound is not a sum over rows: the collapsed bound couples all rows through
q(u), so a batch is the whole training set (the GP-LVM is the model for small data; the
options default to a batch larger than any such set), and the per-row loss is the bound's
share per row, -F / N, the same for every row. Under the generic loop q(z|x) comes from an
encoder (``hidden``, a back-constrained GP-LVM), which works for rows in any order; free
q(z_n) per row need the rows in training order (:func:`aevb.gplvm.fit.fit_gplvm`).

Validation, what early stopping watches, is the amortized ELBO of held-out rows under the
GP's predictive, E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z)), with fixed draws.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from ..core.family import DataDescription, Family, Progress
from ..errors import AevbError
from .config import GPLVMConfig
from .heldout import HeldOut, fit_posteriors, holes, importance_weighted
from .model import SparseGPDecoder, TrainingLatents


def initial_latents(x: torch.Tensor, latent_dim: int, generator: torch.Generator) -> torch.Tensor:
    """Principal components of the rows (holes at 0), scaled to unit variance, (N, Q); dimensions
    beyond the data's rank get small random values."""
    filled, _ = holes(x)
    centered = filled - filled.mean(0)
    U, S, _ = torch.linalg.svd(centered, full_matrices=False)
    take = min(latent_dim, U.shape[1])
    means = U[:, :take] * math.sqrt(len(x))
    extra = 0.1 * torch.randn(len(x), latent_dim - take, generator=generator, dtype=x.dtype)
    return torch.cat([means, extra], dim=1)


def decoder_of(module: nn.Module) -> SparseGPDecoder:
    return module.decoder if isinstance(module, TrainingLatents) else module


def training_bound(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(bound F of all rows x (N, D), {metric: per-row value (N,)}) for a decoder with an encoder
    or for :class:`TrainingLatents`; conditions the decoder's q(u) on the rows as a side effect,
    so that predictions follow training."""
    decoder = decoder_of(module)
    if isinstance(module, TrainingLatents):
        if decoder.encoder is None and len(x) != len(module.mean):
            raise AevbError(f"the GP-LVM trains on all its {len(module.mean)} rows at once, got a batch of {len(x)}")
        q = module.posterior(x)
    else:
        q = decoder.encode(x)
        if q is None:
            raise AevbError("the generic loop trains a GP-LVM with an encoder (hidden=...); free q(z) train with fit_gplvm")
    x0, observed = holes(x)
    collapsed = decoder.bound(x0, observed, q.mean, q.variance)
    decoder.condition(collapsed)
    kl = torch.distributions.kl_divergence(q.base_dist, Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))).sum(-1)
    bound = collapsed.per_feature.sum() - kl.sum()
    share = (bound / len(x)).expand(len(x))
    return bound, {"bound": share, "kl": kl}


class GPLVMFamily(Family):
    """Bayesian GP-LVM: build / loss / validate / score / sample / encode for the generic machinery."""

    metric_names = ("bound", "kl")
    validation_names = ("elbo",)
    bound_name = "elbo"
    log_density_names = frozenset({"bound", "elbo"})

    @property
    def bound_label(self) -> str:
        return "ELBO"

    def __init__(self, config: GPLVMConfig, initial_mean: torch.Tensor | None = None):
        self.config = config
        self.initial_mean = initial_mean

    def build(self, data: DataDescription) -> nn.Module:
        c = self.config
        decoder = SparseGPDecoder(c.latent_dim, data.n_features, c.inducing, c.kernel, c.hidden)
        with torch.no_grad():  # spread over the prior: inducing inputs all at 0 would never part
            decoder.inducing.normal_()
        if self.initial_mean is None:
            return decoder
        return TrainingLatents(decoder.to(self.initial_mean.dtype), self.initial_mean)

    def loss(self, module: nn.Module, x: torch.Tensor, progress: Progress):
        bound, metrics = training_bound(module, x.to(decoder_of(module).inducing.dtype))
        return -metrics["bound"], metrics

    def validate(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        decoder = decoder_of(module)
        x0, observed = holes(x.to(decoder.inducing.dtype))
        q = decoder.encode(x.to(x0.dtype))
        if q is None:
            return {"elbo": self.infer(module, x, k=self.config.inference_draws).elbo}
        return {"elbo": importance_weighted(decoder, x0, observed, q, self.config.inference_draws, self.config.seed).elbo}

    def infer(self, module: nn.Module, x: torch.Tensor, k: int, seed: int = 0) -> HeldOut:
        """Fit q(z*) of the rows x (holes as NaN) with the GP frozen, then K-draw figures."""
        decoder = decoder_of(module)
        x0, observed = holes(x)
        with torch.enable_grad():
            q = fit_posteriors(decoder, x0, observed, self.config.inference_steps, self.config.inference_draws, self.config.seed)
        return importance_weighted(decoder, x0, observed, q, k, seed)

    def score(self, module: nn.Module, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        return self.infer(module, x, k).log_marginal, f"IWAE_{k}"

    @torch.no_grad()
    def sample(self, module: nn.Module, n: int) -> torch.Tensor:
        decoder = decoder_of(module)
        return decoder.likelihood(decoder.sample_latents(n)).sample()

    def encode(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        decoder = decoder_of(module)
        x0, observed = holes(x)
        with torch.enable_grad():
            q = fit_posteriors(decoder, x0, observed, self.config.inference_steps, self.config.inference_draws, self.config.seed)
        return q.mean
