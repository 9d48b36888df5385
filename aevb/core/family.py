"""What a model family tells the generic machinery, and nothing more.

The training loop, checkpoints and resume, early stopping, torchrun, chunked data,
progress, metrics.csv, ``score`` and ``evaluate`` work for any object with this
interface; they never name a family's terms (a VAE's reconstruction and KL, a
hierarchical VAE's KL per layer, a diffusion model's diffusion and decoder terms).

All tensors are batch first. Per-row values have shape (B,) and are in nats per row
of the *model's* data (after the preprocessor); the machinery adds the preprocessor's
log-Jacobian to report them in the user's units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@dataclass(frozen=True)
class DataDescription:
    """What a family may know about the data when it builds its module."""

    n_features: int
    image_shape: tuple[int, ...] | None = None
    likelihood: str = "gaussian"  # the resolved observation kind, never "auto"


@dataclass(frozen=True)
class Progress:
    """Where training stands, for losses that change with it (a KL warm-up)."""

    epoch: int  # epochs started so far, counting the current one (1 in the first)
    step: int  # optimizer steps taken before this one


@runtime_checkable
class Family(Protocol):
    """A model family: build, train, bound, score, sample and (optionally) encode."""

    #: Name of the held-out bound that early stopping watches ("ELBO", "IWAE", ...).
    bound_name: str

    def build(self, data: DataDescription) -> nn.Module:
        """The untrained module for data of this description."""

    def loss(self, module: nn.Module, x: torch.Tensor, progress: Progress) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(per-row loss to minimize (B,), {metric name: per-row value (B,)}) for a batch x."""

    def bound(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Per-row held-out bound on log p(x) (B,), higher is better: what early stopping watches."""

    def score(self, module: nn.Module, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        """Per-row log p(x) estimate or bound (B,) using ``k`` draws, and its name."""

    def sample(self, module: nn.Module, n: int) -> torch.Tensor:
        """n draws from the model, shape (n, n_features), in the model's data space."""

    def encode(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """Latent means (B, latent_dim), or None for a family without latents."""
