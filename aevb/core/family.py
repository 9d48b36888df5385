"""What a model family tells the generic machinery, and nothing more.

The training loop, checkpoints and resume, early stopping, torchrun, chunked data,
progress, metrics.csv, ``score`` and ``evaluate`` work for any object with this
interface; they never name a family's terms (a VAE's reconstruction and KL, a
hierarchical VAE's KL per layer, a diffusion model's diffusion and decoder terms).

All tensors are batch first. Per-row values have shape (B,) and are in nats per row
of the *model's* data (after the preprocessor); the machinery adds the preprocessor's
log-Jacobian log|det dy/dx| to those named in ``log_density_names``, to report them
in the user's units.

A family is built from its options dataclass (which extends
:class:`aevb.config.TrainingConfig`) and holds no weights: the module it builds does.
Write one by subclassing :class:`Family` and overriding what the defaults do not fit.
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
    schema: object | None = None  # a table's columns (aevb.tables.schema.TableSchema), else None
    n_levels: int | None = None  # levels 0..L-1 of integer data (pixels), else None


@dataclass(frozen=True)
class Progress:
    """Where training stands, for losses that change with it (a KL warm-up)."""

    epoch: int  # epochs started so far, counting the current one (1 in the first)
    step: int  # optimizer steps taken before this one


@runtime_checkable
class Family(Protocol):
    """A model family: build, train, validate, score, sample and (optionally) encode.

    metrics.csv has the columns ``epoch``, ``seconds``, ``train_<m>`` for each m in
    ``metric_names`` (means over the epoch's training batches of :meth:`loss`'s metrics)
    and ``val_<m>`` for each m in ``validation_names`` (means over the held-out rows of
    :meth:`validate`); early stopping keeps the epoch of the highest ``val_<bound_name>``.
    """

    #: The per-row metrics :meth:`loss` returns, in metrics.csv order (train_<name>).
    metric_names: tuple[str, ...]
    #: The per-row metrics :meth:`validate` returns, in metrics.csv order (val_<name>).
    validation_names: tuple[str, ...]
    #: Which of ``validation_names`` is the held-out bound on log p(x) that early stopping watches.
    bound_name: str
    #: The metrics that are log-densities of x (shifted by the preprocessor's log-Jacobian).
    log_density_names: frozenset[str] = frozenset()
    #: Epochs during which the loss still changes with :class:`Progress` (a warm-up):
    #: early stopping counts its patience from their end at the earliest.
    warmup_epochs: float = 0.0

    @property
    def bound_label(self) -> str:
        """How messages and the progress bar name the watched bound."""
        return self.bound_name

    def build(self, data: DataDescription) -> nn.Module:
        """The untrained module for data of this description."""
        raise NotImplementedError

    def loss(self, module: nn.Module, x: torch.Tensor, progress: Progress) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(per-row loss to minimize (B,), {name: per-row value (B,)} for each of ``metric_names``).

        The loss is what the gradient follows; the metrics are for monitoring only and
        are detached by the caller."""
        raise NotImplementedError

    def validate(self, module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{name: per-row value (B,)} for each of ``validation_names`` on held-out rows x."""
        raise NotImplementedError

    def score(self, module: nn.Module, x: torch.Tensor, k: int) -> tuple[torch.Tensor, str]:
        """Per-row log p(x) estimate or bound (B,) using ``k`` draws where it draws, and its name."""
        raise NotImplementedError

    def sample(self, module: nn.Module, n: int) -> torch.Tensor:
        """n draws from the model, shape (n, n_features), in the model's data space."""
        raise NotImplementedError

    def encode(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
        """Latent means (B, latent_dim), or None for a family without latents."""
        return None

    def after_step(self, module: nn.Module) -> None:
        """Called after each optimizer step that changed the weights (a running average of them
        lives in the module's buffers, so checkpoints and the kept best state carry it)."""
