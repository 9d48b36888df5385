"""The options of a diffusion model, in one dataclass: the keyword arguments of
:class:`aevb.Diffusion`, the options of ``aevb fit --model diffusion`` and the ``"model"``
block of its config.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..config import POSITIVE, POSITIVE_INT, LearningRateSchedule, TrainingConfig, option
from ..errors import AevbError
from .schedule import GAMMA_MAX, GAMMA_MIN

# The epsilon network: a U-Net over the image (images only), an MLP over the flat row, or auto.
EpsilonNet = Literal["auto", "mlp", "unet"]
# auto picks the U-Net for images whose smaller side has at least this many pixels: on 8x8
# digits it beat the MLP by 0.24 bits/dim at the same 120 s budget (README, Diffusion models).
UNET_MIN_SIDE = 8


@dataclass
class DiffusionConfig(TrainingConfig):
    """A diffusion model's options, plus the training fields of :class:`aevb.config.TrainingConfig`
    (with longer training and an annealed learning rate by default: the bound's estimate is
    noisier than a VAE's ELBO; the batch size follows the network when unset)."""

    batch_size: int | None = option(
        None,
        "Rows per gradient step (default: 512 with the MLP, whose steps cost little more for more rows; "
        "128 with the U-Net, whose steps cost in proportion).",
        POSITIVE_INT,
    )
    epochs: int = option(2000, "Maximum number of passes over the data.", POSITIVE_INT, may_change_on_resume=True)
    patience: int | None = option(
        None,
        "Stop after this many epochs without a better validation bound (default: 30 epochs, or as many "
        "as make 1,000 steps when epochs are short).",
        POSITIVE_INT, may_change_on_resume=True,
    )
    learning_rate_schedule: LearningRateSchedule = option(
        "cosine",
        "constant, or cosine: annealed to zero at the run's end (its --max-time budget or its last epoch, "
        "whichever comes first; default for diffusion, whose bound's estimate is noisy).",
        may_change_on_resume=True,
    )
    # No clipping by default: the schedule's shape learns from the squared loss, whose gradient
    # dwarfs the network's, so a clip on the total norm shrank the network's steps at random
    # (digits, U-Net, 150 s: 2.07 bits/dim clipped at 1, 1.96 unclipped).
    grad_clip: float | None = option(None, "Rescale each gradient to at most this total norm (off by default).",
                                     POSITIVE, may_change_on_resume=True)
    hidden: tuple[int, ...] = field(
        default=(256, 256, 256), metadata={"help": "Widths of the MLP epsilon network: a first layer, then a residual block per further width."}
    )
    dropout: float = field(
        default=0.2,
        metadata={"help": "Diffusion: dropout rate inside each residual block of the MLP epsilon network "
                  "(against overfitting: on 18,000 rows of 16 features the unregularized MLP fit its training "
                  "rows to the true density and held-out rows 0.35 nats/row worse)."},
    )
    net: EpsilonNet = field(
        default="auto",
        metadata={"help": f"Diffusion: the epsilon network: unet (residual convolutions over the image at two or "
                  f"three resolutions; images only), mlp (over the flat row), or auto (unet for images of "
                  f"{UNET_MIN_SIDE}x{UNET_MIN_SIDE} pixels or more, mlp otherwise)."},
    )
    conv_width: int = field(default=32, metadata={"help": "Channels of the conv networks' layers."})
    fourier_octaves: int = field(
        default=2,
        metadata={"help": "Diffusion, level data: Fourier features of z at periods of 1, 2, 4, ... level spacings "
                  "(this many; 0 for none). Continuous data gets none."},
    )
    gamma_min: float | None = field(
        default=None,
        metadata={"help": "Diffusion: initial gamma(0), the log noise-to-signal ratio at t = 0 (learned); by default "
                  f"2 log(spacing / 6) for level data (sigma_0 a sixth of the finest level spacing), else {GAMMA_MIN}."},
    )
    gamma_max: float = field(default=GAMMA_MAX, metadata={"help": "Diffusion: initial gamma(1), the log noise-to-signal ratio at t = 1 (learned)."})
    t_samples: int = field(
        default=4, metadata={"help": "Diffusion: draws of t per row in the validation bound that early stopping watches."}
    )
    sample_steps: int = field(default=256, metadata={"help": "Diffusion: steps of ancestral sampling (aevb sample --steps overrides)."})
    weight_average: float = field(
        default=0.999,
        metadata={"help": "Diffusion: decay of the running average of the network's weights that validation, "
                  "scores and samples use (0: the last weights)."},
    )

    @classmethod
    def from_dict(cls, values: dict) -> DiffusionConfig:
        """The options of a config.json or checkpoint; one saved before ``net``, ``weight_average``,
        ``dropout`` and ``learning_rate_schedule`` existed had the MLP, no average, no dropout and
        a constant rate."""
        earlier = {"net": "mlp", "weight_average": 0.0, "dropout": 0.0, "learning_rate_schedule": "constant"}
        return super().from_dict({**earlier, **values})

    def validate(self) -> None:
        super().validate()
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise AevbError(f"hidden must be one or more positive integers, got {self.hidden!r}")
        for name in ("t_samples", "sample_steps", "conv_width"):
            POSITIVE_INT.check(name, getattr(self, name))
        if isinstance(self.fourier_octaves, bool) or not isinstance(self.fourier_octaves, int) or self.fourier_octaves < 0:
            raise AevbError(f"fourier_octaves must be an integer >= 0, got {self.fourier_octaves!r}")
        if isinstance(self.dropout, bool) or not (0 <= self.dropout < 1):
            raise AevbError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if isinstance(self.weight_average, bool) or not (0 <= self.weight_average < 1):
            raise AevbError(f"weight_average must be in [0, 1), got {self.weight_average!r}")
        low = GAMMA_MIN if self.gamma_min is None else self.gamma_min
        if not (math.isfinite(low) and math.isfinite(self.gamma_max) and self.gamma_max > low):
            raise AevbError(f"gamma_max must exceed gamma_min, got {self.gamma_min!r} and {self.gamma_max!r}")
