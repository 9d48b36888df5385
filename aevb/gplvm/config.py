"""The options of a Bayesian GP-LVM, in one dataclass (keyword arguments of
:class:`aevb.GPLVM`, options of ``aevb fit --model gplvm``, the "model" block of config.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from ..config import POSITIVE_INT, TrainingConfig
from ..errors import AevbError

# The GP's covariance over latent points: squared exponential, Matern 5/2 (both with one
# length scale per latent dimension, ARD), or linear with one weight per dimension (a Bayesian PPCA).
Kernel = Literal["rbf", "matern52", "linear"]


@dataclass
class GPLVMConfig(TrainingConfig):
    latent_dim: int = field(default=2, metadata={"help": "Size of the latent code z."})
    kernel: Kernel = field(
        default="rbf",
        metadata={"help": "GP-LVM kernel: rbf, matern52 (ARD length scales) or linear (ARD weights)."},
    )
    inducing: int = field(
        default=32, metadata={"help": "GP-LVM: inducing points of the sparse GP."}
    )
    hidden: tuple[int, ...] = field(
        default=(),
        metadata={"help": "GP-LVM: hidden widths of an encoder x -> q(z) (a back-constraint, trained by the "
                  "generic loop with validation and checkpoints); empty (the default): free q(z) per row, all rows at once."},
    )
    # The collapsed bound couples all rows through q(u): a step takes them all (a batch of the whole set).
    epochs: int = field(default=2000, metadata={"help": "Full-batch optimizer steps on the GP-LVM bound."})
    batch_size: int = field(default=1_000_000, metadata={"help": "Rows per gradient step (GP-LVM: all of them)."})
    # The bound is deterministic (all rows, closed-form psi): 0.03 reached the bound 0.01 did
    # in 2.5x fewer steps at 50 and 200 rows (benchmarks/gplvm.py's manifold).
    learning_rate: float = field(default=0.03, metadata={"help": "Adam step size."})
    patience: int = field(default=200, metadata={"help": "Stop after this many steps without a better validation ELBO."})
    tol: float = field(
        default=1e-7,
        metadata={"help": "Free q(z): stop when the bound per row and feature gains less than this over 100 steps."},
    )
    inference_steps: int = field(
        default=100, metadata={"help": "GP-LVM: Adam steps fitting q(z*) of each new row (score, transform)."}
    )
    inference_draws: int = field(
        default=16, metadata={"help": "GP-LVM: fixed draws of z* per row in the bound that fits q(z*)."}
    )

    def validate(self) -> None:
        super().validate()
        self.hidden = tuple(self.hidden) if isinstance(self.hidden, (list, tuple)) else (self.hidden,)
        for name in ("latent_dim", "inducing", "inference_steps", "inference_draws"):
            POSITIVE_INT.check(name, getattr(self, name))
        if self.kernel not in get_args(Kernel):
            raise AevbError(f"kernel must be one of {', '.join(get_args(Kernel))}, got {self.kernel!r}")
        if any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise AevbError(f"hidden must be positive integers, got {self.hidden!r}")
        if not self.tol >= 0:
            raise AevbError(f"tol must be >= 0, got {self.tol!r}")
