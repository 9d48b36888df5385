"""Map the user's data to the model's space and keep the books on the Jacobian.

The model sees y = (x + u - shift) / scale, where u ~ U[0, 1) is added only to
integer "level" data (pixels, counts) and is 0 otherwise. So that every
log-likelihood is reported for the data the user gave, in the user's units:

    continuous x:  log p(x) = log p_model(y) - sum_j log scale_j
    level x:       log P(x) >= E_u[log p_model(y)] - sum_j log scale_j

The second line is the dequantization bound: the density of x + u is constant
on each unit cell, integrates to P(x) there, and Jensen's inequality gives the
bound. Binary data with a Bernoulli decoder is passed through untouched, and so
are levels under a discrete likelihood (categorical, logistic-mixture), which give
log P(x) of the discrete values directly: no noise, no Jacobian.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

import numpy as np
import torch

from ..errors import AevbError
from ..images.pixels import DISCRETE_LIKELIHOODS
from ..store.fields import DamagedField, listing, mapping, number, optional, text, whole
from .chunks import CHUNK_ROWS
from .column_statistics import column_statistics, is_binary
from .degenerate import warn_if_degenerate
from .dequantization import dequantization_moments, noise, quantized

Kind = Literal["binary", "levels", "continuous"]
# The model computes in float32 (max ~3.4e38); a margin keeps x - shift finite too.
LARGEST_VALUE = 1e30
# Below this a column's spread would vanish in float32; such a column counts as constant.
SMALLEST_SCALE = 1e-30
# float32 keeps 24 bits: a value |x| is rounded by up to |x| * 2^-24. Past this ratio of
# |shift| to scale that rounding would blur a column by more than ~1e-5 of its spread
# (a 1e12 offset in float32 has a spacing of 65,536), so its raw rows stay in float64.
FLOAT32_OFFSET_RATIO = 100.0
# Most levels a discrete likelihood takes (8-bit pixels).
MAX_DISCRETE_LEVELS = 256


def check_range(x: np.ndarray, first_row: int = 0) -> None:
    """Raise unless every value fits the model's 32-bit arithmetic; x's rows are counted from ``first_row``."""
    too_large = np.abs(x) > LARGEST_VALUE
    if too_large.any():
        row, column = np.argwhere(too_large)[0]
        raise AevbError(
            f"the data holds values too large for aevb's 32-bit arithmetic ({x[row, column]:g} at row "
            f"{first_row + row}, "
            f"column {column}; the limit is {LARGEST_VALUE:g}); rescale them"
        )


@dataclass
class Preprocessor:
    """How raw rows become model inputs; fitted once, saved, replayed on new data."""

    kind: Kind
    n_levels: int | None
    shift: list[float]
    scale: list[float]
    discrete: str | None = None  # the discrete likelihood that scores the levels as they are, if any

    @classmethod
    def fit(cls, x: np.ndarray, likelihood: str, standardize: bool = True) -> "Preprocessor":
        """Choose the transform for training data ``x`` (n, D) and the decoder family.

        ``x`` may be memory-mapped: it is read once, chunk by chunk
        (:func:`aevb.column_statistics.column_statistics`), in float64.
        ``standardize=False`` keeps the user's scale (shift 0, scale 1), for
        models like PPCA whose fit is not invariant to rescaling columns.
        """
        stats = column_statistics(x)
        if stats.largest_abs > LARGEST_VALUE:
            for start in range(0, len(x), CHUNK_ROWS):  # name the first such value
                check_range(np.asarray(x[start : start + CHUNK_ROWS]), start)
        n_features = x.shape[1]
        if likelihood == "bernoulli" or (likelihood == "auto" and stats.binary):
            if not stats.binary:
                raise AevbError(
                    "the bernoulli likelihood needs data of 0s and 1s only; "
                    "use --likelihood gaussian for other values"
                )
            return cls("binary", None, [0.0] * n_features, [1.0] * n_features)
        levels = stats.levels
        if likelihood in DISCRETE_LIKELIHOODS:
            if not levels or stats.maximum >= MAX_DISCRETE_LEVELS:
                raise AevbError(
                    f"the {likelihood} likelihood needs whole numbers 0..{MAX_DISCRETE_LEVELS - 1} "
                    "(pixel levels); use --likelihood gaussian for other values"
                )
            n_levels = max(2, int(stats.maximum) + 1)
            return cls("levels", n_levels, [0.0] * n_features, [1.0] * n_features, likelihood)
        kind, n_levels = ("levels", int(stats.maximum) + 1) if levels else ("continuous", None)
        if kind == "continuous":
            warn_if_degenerate(x, stats.mean, stats.variance)
        if not standardize:
            return cls(kind, n_levels, [0.0] * n_features, [1.0] * n_features)
        mean, variance = dequantization_moments(stats.mean, stats.variance) if levels else (stats.mean, stats.variance)
        std = np.sqrt(variance)
        std = np.where(std > SMALLEST_SCALE, std, 1.0)
        return cls(kind, n_levels, mean.tolist(), std.tolist())

    @property
    def row_dtype(self) -> torch.dtype:
        """The dtype raw rows must be held in until :meth:`to_model` has standardized them:
        float32 unless a column's offset dwarfs its spread (1e12 + N(0, 1), timestamps,
        1e-12 +- 1e-20), where float32 would round its values together."""
        ratio = np.abs(np.asarray(self.shift)) / np.asarray(self.scale)
        return torch.float64 if (ratio > FLOAT32_OFFSET_RATIO).any() else torch.float32

    @property
    def likelihood(self) -> str:
        if self.discrete:
            return self.discrete
        return "bernoulli" if self.kind == "binary" else "gaussian"

    def check(self, x: np.ndarray) -> None:
        """Raise if ``x`` cannot come from the data this was fitted on."""
        check_range(x)
        if x.shape[1] != len(self.shift):
            raise AevbError(
                f"the data has {x.shape[1]} columns but the model was trained on {len(self.shift)}"
            )
        if self.kind == "binary" and not is_binary(x):
            raise AevbError("this model has a Bernoulli decoder and scores only data of 0s and 1s")
        if self.discrete and not ((x >= 0) & (x <= self.n_levels - 1) & (x == np.round(x))).all():
            raise AevbError(
                f"this model's {self.discrete} likelihood scores only whole numbers 0..{self.n_levels - 1}, "
                "the levels it was trained on"
            )

    def value_range(self, rows: np.ndarray) -> tuple[float, float]:
        """The values rows (n, D) in the user's units can take, to draw them as images: the
        levels 0 .. n_levels - 1, 0 and 1 for binary data, else the rows' own span."""
        if self.kind == "levels":
            return 0.0, self.n_levels - 1.0
        if self.kind == "binary":
            return 0.0, 1.0
        return float(rows.min()), float(rows.max())

    def log_abs_det_jacobian(self) -> float:
        """log |dy/dx| per row, the same for every row: -sum_j log scale_j."""
        return -float(np.log(np.asarray(self.scale)).sum())

    def to_model(
        self, x: torch.Tensor, generator: torch.Generator | None = None, center: bool = False
    ) -> torch.Tensor:
        """Raw rows (n, D) -> model inputs y (n, D), computed in x's dtype (give float64 rows
        of :attr:`row_dtype` float64, and cast the result to the model's dtype afterwards).

        Level data gets fresh uniform noise u from ``generator``, or u = 1/2
        (the centre of each cell) with ``center=True``.
        """
        if self.discrete:
            return x
        shift = torch.as_tensor(self.shift, dtype=x.dtype, device=x.device)
        scale = torch.as_tensor(self.scale, dtype=x.dtype, device=x.device)
        if self.kind == "levels":
            x = x + noise(x, generator, center)
        return (x - shift) / scale

    def from_model(self, y: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """Model-space rows y (n, D) -> the user's units, in float64 (a float32 y * scale + shift
        would round a column of 1e12 + N(0, 1) to multiples of 65,536).

        A draw of level data is floored onto its grid of levels; a mean
        (``mean=True``) has the dequantization offset of 1/2 taken off instead.
        Under a discrete likelihood, y is already in levels.
        """
        y = y.double()
        if self.discrete:
            return y.clamp(0, self.n_levels - 1)
        shift = torch.as_tensor(self.shift, dtype=y.dtype, device=y.device)
        scale = torch.as_tensor(self.scale, dtype=y.dtype, device=y.device)
        x = y * scale + shift
        if self.kind == "levels":
            x = quantized(x, mean).clamp(0, self.n_levels - 1)
        return x

    @property
    def n_features(self) -> int:
        return len(self.shift)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocessor":
        """The inverse of to_dict, refusing (DamagedField, naming the field) values that
        :meth:`fit` cannot have written: a scale at or below SMALLEST_SCALE (1e-300 would
        make every log-likelihood ~ +690 nats per column), a shift or scale past
        LARGEST_VALUE, a binary or discrete model that standardizes."""
        values = mapping(values, "preprocessor")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise DamagedField(f"preprocessor has an unknown field {unknown[0]!r}")
        kind = text(values.get("kind"), "preprocessor.kind", get_args(Kind))
        discrete = optional(text, values.get("discrete"), "preprocessor.discrete", DISCRETE_LIKELIHOODS)
        shift = listing(values.get("shift"), "preprocessor.shift")
        scale = listing(values.get("scale"), "preprocessor.scale", len(shift))
        if not shift:
            raise DamagedField("preprocessor.shift is empty")
        shift = [number(v, f"preprocessor.shift[{j}]", -LARGEST_VALUE, LARGEST_VALUE) for j, v in enumerate(shift)]
        scale = [number(v, f"preprocessor.scale[{j}]", high=LARGEST_VALUE, above=SMALLEST_SCALE) for j, v in enumerate(scale)]
        if (kind == "binary" or discrete) and (any(shift) or any(v != 1.0 for v in scale)):
            raise DamagedField(f"preprocessor of {discrete or kind} data has a shift or scale; it keeps the values as they are")
        n_levels = values.get("n_levels")
        if kind == "levels":
            most = MAX_DISCRETE_LEVELS if discrete else int(LARGEST_VALUE) + 1
            whole(n_levels, "preprocessor.n_levels", 2 if discrete else 1, most)
        elif n_levels is not None:
            raise DamagedField(f"preprocessor.n_levels is {n_levels!r} for {kind} data, which has no levels")
        if discrete and kind != "levels":
            raise DamagedField(f"preprocessor.discrete is {discrete!r} for {kind} data, not levels")
        return cls(kind, n_levels, shift, scale, discrete)
