"""The GP-LVM as a model family (:class:`aevb.core.family.Family`).

Its training bound is not a sum over rows: the collapsed bound couples all rows through
q(u), so a "batch" is the whole training set (the GP-LVM is the model for small data), and
the per-row loss is the bound's share per row, -F / N, the same for every row. Free q(z_n)
need the rows in training order; an encoder (``hidden``) lifts that.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Normal

from ..core.family import DataDescription, Progress
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


def training_bound(latents: TrainingLatents, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(bound F of all rows x (N, D), {metric: per-row value (N,)}); conditions the decoder's
    q(u) on the rows as a side effect, so that predictions follow training."""
    decoder = latents.decoder
    if latents.decoder.encoder is None and len(x) != len(latents.mean):
        raise AevbError(f"the GP-LVM trains on all its {len(latents.mean)} rows at once, got a batch of {len(x)}")
    x0, observed = holes(x)
    q = latents.posterior(x)
    collapsed = decoder.bound(x0, observed, q.mean, q.variance)
    decoder.condition(collapsed)
    kl = torch.distributions.kl_divergence(q.base_dist, Normal(torch.zeros_like(q.mean), torch.ones_like(q.mean))).sum(-1)
    bound = collapsed.per_feature.sum() - kl.sum()
    share = (bound / len(x)).expand(len(x))
    return bound, {"bound": share, "kl": kl, "fit": share + kl}


class GPLVMFamily:
    """Bayesian GP-LVM: build / loss / bound / score / sample / encode for the generic machinery."""

    bound_name = "ELBO"

    def __init__(self, config: GPLVMConfig, initial_mean: torch.Tensor | None = None):
        self.config = config
        self.initial_mean = initial_mean

    def build(self, data: DataDescription) -> nn.Module:
        c = self.config
        decoder = SparseGPDecoder(c.latent_dim, data.n_features, c.inducing, c.kernel, c.hidden)
        if self.initial_mean is None:
            return decoder
        return TrainingLatents(decoder.to(self.initial_mean.dtype), self.initial_mean)

    def loss(self, module: nn.Module, x: torch.Tensor, progress: Progress):
        bound, metrics = training_bound(module, x)
        return -metrics["bound"], metrics

    def infer(self, module: nn.Module, x: torch.Tensor, k: int, seed: int = 0) -> HeldOut:
        """Fit q(z*) of the rows x (holes as NaN) with the GP frozen, then K-draw figures."""
        decoder = decoder_of(module)
        x0, observed = holes(x)
        with torch.enable_grad():
            q = fit_posteriors(decoder, x0, observed, self.config.inference_steps, self.config.inference_draws, self.config.seed)
        return importance_weighted(decoder, x0, observed, q, k, seed)

    def bound(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.infer(module, x, k=self.config.inference_draws).elbo

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
