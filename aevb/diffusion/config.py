"""The options of a diffusion model, in one dataclass: the keyword arguments of
:class:`aevb.Diffusion`, the options of ``aevb fit --model diffusion`` and the ``"model"``
block of its config.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import Options, _require_positive_ints
from ..errors import AevbError
from .schedule import GAMMA_MAX, GAMMA_MIN


@dataclass
class DiffusionConfig(Options):
    hidden: tuple[int, ...] = field(
        default=(256, 256, 256), metadata={"help": "Hidden layer widths of the epsilon network (an MLP)."}
    )
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
    epochs: int = field(default=2000, metadata={"help": "Maximum number of passes over the data."})
    batch_size: int = field(default=128, metadata={"help": "Rows per gradient step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam step size."})
    weight_decay: float = field(default=0.0, metadata={"help": "Adam's L2 penalty on weights."})
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of rows held out for early stopping."})
    patience: int = field(default=50, metadata={"help": "Stop after this many epochs without a better validation bound."})
    max_time: float | None = field(default=None, metadata={"help": "Wall-clock cap on training, in seconds."})
    grad_clip: float | None = field(default=1.0, metadata={"help": "Rescale each gradient to at most this total norm."})
    seed: int = field(default=0, metadata={"help": "Seed: the same seed and data give the same model."})

    def __post_init__(self) -> None:
        self.hidden = tuple(self.hidden)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in self.hidden):
            raise AevbError(f"hidden must be one or more positive integers, got {self.hidden!r}")
        _require_positive_ints(self, ["t_samples", "sample_steps", "epochs", "batch_size", "patience"])
        if isinstance(self.fourier_octaves, bool) or not isinstance(self.fourier_octaves, int) or self.fourier_octaves < 0:
            raise AevbError(f"fourier_octaves must be an integer >= 0, got {self.fourier_octaves!r}")
        low = GAMMA_MIN if self.gamma_min is None else self.gamma_min
        if not (math.isfinite(low) and math.isfinite(self.gamma_max) and self.gamma_max > low):
            raise AevbError(f"gamma_max must exceed gamma_min, got {self.gamma_min!r} and {self.gamma_max!r}")
        for name in ("learning_rate",):
            if not (getattr(self, name) > 0 and math.isfinite(getattr(self, name))):
                raise AevbError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise AevbError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.validation_fraction < 1:
            raise AevbError(f"validation_fraction must lie strictly between 0 and 1, got {self.validation_fraction!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise AevbError(f"max_time must be a positive number of seconds, got {self.max_time!r}")
        if self.grad_clip is not None and not (self.grad_clip > 0 and math.isfinite(self.grad_clip)):
            raise AevbError(f"grad_clip must be a positive number, got {self.grad_clip!r}")
