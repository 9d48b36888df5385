"""Column kinds: how one column of a table is recognised, encoded, modelled and written back.

Each kind is a class in ``KINDS``; everything that depends on a column's kind asks
its class (inference, encoding to model rows and back, the encoder's input, the
decoder head's size and distribution, the summary line). The model sees, per cell,

    continuous   x - offset                 Gaussian (or mixture) on (v - shift) / scale
    positive     x (always > 0, skewed)     the same on (log x - shift) / scale: log-normal
    integer      x - offset, + u ~ U[0, 1)  the same, dequantized (offset a whole number)
    date         seconds since the epoch - offset, modelled as continuous
    categorical  index of the label         categorical (softmax)
    boolean      0 / 1                      Bernoulli

``offset`` is subtracted in float64 (for integers, in exact integer arithmetic)
before the rows are cast to the model's float32, so a column 1e12 + N(0, 1) or a
spread of 1e-20 keeps its digits; ``shift`` and ``scale`` then standardize inside the
model through an affine map whose log-Jacobian (-log scale, and -log x for
log-normal cells) keeps every log-density in the user's units.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import (
    AffineTransform,
    Bernoulli,
    Categorical,
    Distribution,
    ExpTransform,
    MixtureSameFamily,
    Normal,
    TransformedDistribution,
)

from ..core.distributions import bounded_scale
from ..data.dequantization import dequantization_moments
from ..data.preprocess import LARGEST_VALUE
from ..errors import AevbError
from ..store.fields import DamagedField, whole

TRUE_WORDS = {"true", "yes", "t", "y"}
FALSE_WORDS = {"false", "no", "f", "n"}
INT64_LIMIT = 2**63 - 1
# Tried in order on a column of words; the first that reads every observed cell is the column's format.
DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y")
# The observed precision is read from at most this many cells.
PRECISION_CELLS = 10_000
# The most digits after the point that a column's precision keeps.
MAX_DECIMALS = 300


def pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is a dependency
        raise AevbError("tables need pandas; install it with pip install pandas") from None
    return pandas


def is_numeric(series) -> bool:
    pd = pandas()
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def is_integer_dtype(series) -> bool:
    pd = pandas()
    return pd.api.types.is_integer_dtype(series) and not pd.api.types.is_bool_dtype(series)


def observed_numbers(series, observed) -> np.ndarray | None:
    """The observed cells of a numeric column as float64, or None for a column of another type."""
    return observed.astype("float64").to_numpy() if is_numeric(series) else None


def boolean_values(series) -> np.ndarray | None:
    """The column as 0/1 floats with NaN holes if every observed value is a truth value, else None."""
    pd = pandas()
    observed = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    if is_numeric(series):
        return series.astype("float64").to_numpy() if observed.isin([0, 1]).all() else None
    words = observed.map(lambda v: str(v).strip().lower() if not isinstance(v, (bool, np.bool_)) else str(v).lower())
    if not words.isin(TRUE_WORDS | FALSE_WORDS).all():
        return None
    out = np.full(len(series), np.nan)
    mask = series.notna().to_numpy()
    out[mask] = words.isin(TRUE_WORDS).to_numpy().astype(float)
    return out


def label(value):
    """A category label as JSON keeps it: int, float or str."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


def check_finite(name: str, values: np.ndarray) -> None:
    """Refuse, naming the column and the row (counted from 0), a cell that is infinite or too large."""
    bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > LARGEST_VALUE)
    if bad.any():
        row = int(np.argmax(bad))
        raise AevbError(
            f"column {name!r} holds {values[row]:g} at row {row}; aevb models finite values up to "
            f"{LARGEST_VALUE:g} in size (leave the column out with --ignore {name}, or rescale it)"
        )


def numbers(name: str, series) -> np.ndarray:
    """The column as float64 with NaN holes; an AevbError naming it if a value is not a number."""
    pd = pandas()
    if is_numeric(series) or pd.api.types.is_bool_dtype(series):
        values = series.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
    else:
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            raise AevbError(f"column {name!r} is numeric in the model but holds {series[bad].iloc[0]!r}")
        values = converted.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
    check_finite(name, values)
    return values


def decimals(values: np.ndarray) -> int | None:
    """The most digits after the decimal point among (up to PRECISION_CELLS) observed values, read
    from their shortest repr: 2 for a column written 89.17; None when rounding would not be exact
    in float64 (more than 15 significant digits, or tiny numbers)."""
    most = 0
    for text in map(repr, values[:PRECISION_CELLS].tolist()):
        mantissa, _, exponent = text.lower().partition("e")
        digits = len(mantissa.partition(".")[2].rstrip("0"))
        most = max(most, digits - int(exponent or 0))
    largest = float(np.max(np.abs(values))) if len(values) else 0.0
    if most > MAX_DECIMALS or largest * 10.0**most > 2**53:
        return None
    return max(most, 0)


class StandardizedGaussian(TransformedDistribution):
    """A Gaussian (or a mixture of them) on standardized values, mapped to the user's units by
    x = shift + scale y (then exp for a log-normal column); log_prob carries the Jacobian."""

    @property
    def mean(self) -> torch.Tensor:
        affine = self.transforms[0]
        base = self.base_dist
        if isinstance(base, MixtureSameFamily):
            weights, parts = base.mixture_distribution.probs, base.component_distribution
        else:
            weights, parts = None, base
        loc, scale = affine.loc + affine.scale * parts.loc, affine.scale * parts.scale
        # E[exp(Y)] = exp(m + s^2 / 2) for Y ~ N(m, s^2).
        means = (loc + scale**2 / 2).exp() if len(self.transforms) > 1 else loc
        return means if weights is None else (weights * means).sum(-1)


class ColumnKind:
    """What every column kind says about its columns. Subclasses override what differs."""

    name = ""
    numeric = False  # modelled by a Gaussian on a standardized value
    dequantized = False  # the model sees x + u, u ~ U[0, 1)
    dtypes: tuple[str, ...] = ()  # the pandas dtypes that describe() gives columns of this kind

    def check_saved(self, column) -> None:
        """Raise DamagedField unless ``column``, read back from config.json, is one that
        describe() can have written (the schema checks the fields every kind has)."""
        if column.categories:
            raise DamagedField(f"column {column.name!r} of kind {self.name} has categories {column.categories!r:.60}")

    # -- inference and the description of a column (see schema.Column) ----------------

    @staticmethod
    def matches(series, observed, max_categories: int) -> bool:
        """Whether inference picks this kind for the column (tried in INFERENCE_ORDER)."""
        return False

    def describe(self, name: str, series, column_class, bounds: str = "sign"):
        """The Column of this kind for the observed values of ``series``."""
        raise NotImplementedError

    # -- rows --------------------------------------------------------------------------

    def encode(self, column, series) -> np.ndarray:
        """The cells as the model's float64 values, NaN for holes."""
        raise NotImplementedError

    def decode(self, column, values: np.ndarray):
        """Model values (no NaN) -> a pandas Series of the column's labels or numbers."""
        raise NotImplementedError

    # -- the network -------------------------------------------------------------------

    def width(self, column) -> int:
        """Entries of this column in the encoder's input."""
        return 1

    def head_size(self, column, components: int) -> int:
        """Outputs of the decoder's last layer for this column."""
        return 1

    def encoder_piece(self, filled, observed, shift, scale, width: int) -> torch.Tensor:
        """The encoder's input for this column's cells ``filled`` (holes 0) (..., width)."""
        raise NotImplementedError

    def distribution(self, out: torch.Tensor, shift, scale, components: int) -> Distribution:
        """p(x_j | z) from this column's head outputs ``out`` (..., head_size)."""
        raise NotImplementedError

    def summary(self, column) -> str:
        raise NotImplementedError


class Numeric(ColumnKind):
    """A number: standardized inside the model, Gaussian (or a mixture) in the user's units."""

    numeric = True
    log_values = False  # log-normal: the Gaussian is on log x

    def head_size(self, column, components: int) -> int:
        return 3 * components if components > 1 else 2

    def standardized(self, filled, shift, scale):
        values = filled.clamp_min(torch.finfo(filled.dtype).tiny).log() if self.log_values else filled
        return (values - shift) / scale

    def encoder_piece(self, filled, observed, shift, scale, width: int) -> torch.Tensor:
        return (self.standardized(filled, shift, scale) * observed).unsqueeze(-1)

    def distribution(self, out, shift, scale, components: int) -> Distribution:
        if components > 1:
            logits, loc, log_scale = out.chunk(3, dim=-1)
            base = MixtureSameFamily(Categorical(logits=logits), Normal(loc, bounded_scale(log_scale)))
        else:
            base = Normal(out[..., 0], bounded_scale(out[..., 1]))
        transforms = [AffineTransform(shift, scale)] + ([ExpTransform()] if self.log_values else [])
        return StandardizedGaussian(base, transforms, validate_args=False)

    def moments(self, values: np.ndarray) -> tuple[float, float]:
        """shift and scale: the mean and standard deviation of what the Gaussian models."""
        mean, variance = float(values.mean()), float(values.var())
        if self.dequantized:
            mean, variance = dequantization_moments(mean, variance)
        std = math.sqrt(variance)
        return mean, std if std > 0 else 1.0

    def bounds(self, values: np.ndarray, bounds: str) -> tuple[float | None, float | None]:
        """The range draws are kept in: ``sign`` keeps a column that never goes below zero at or
        above its smallest value (or 0), ``range`` keeps [min, max] observed, ``none`` nothing."""
        low, high = float(values.min()), float(values.max())
        if bounds == "range":
            return low, high
        if bounds == "sign" and low >= 0:
            return low, None
        return None, None

    def summary(self, column) -> str:
        mean = column.offset + column.shift
        text = f"mean {mean:.4g}, sd {column.scale:.4g}" if not self.log_values else (
            f"log-normal: log mean {column.shift:.4g}, log sd {column.scale:.4g}")
        if column.lower is not None or column.upper is not None:
            low = "" if column.lower is None else f"{column.lower:.4g}"
            high = "" if column.upper is None else f"{column.upper:.4g}"
            text += f", kept in [{low}, {high}]"
        return text

    def clipped(self, column, values: np.ndarray) -> np.ndarray:
        """Values in the user's units kept inside the column's bounds."""
        low = -np.inf if column.lower is None else column.lower
        high = np.inf if column.upper is None else column.upper
        return np.clip(values, low, high)


class Continuous(Numeric):
    name = "continuous"
    dtypes = ("float64",)

    @staticmethod
    def matches(series, observed, max_categories):
        return is_numeric(series)

    def describe(self, name, series, column_class, bounds="sign"):
        values = numbers(name, series)
        values = values[~np.isnan(values)]
        offset = float(values.mean())  # in float64, before the model's float32
        shift, scale = self.moments(values - offset)
        lower, upper = self.bounds(values, bounds)
        return column_class(name, self.name, "float64", shift=shift, scale=scale, offset=offset,
                            decimals=decimals(values), lower=lower, upper=upper)

    def encode(self, column, series):
        return numbers(column.name, series) - column.offset

    def decode(self, column, values):
        values = self.clipped(column, values + column.offset)
        if column.decimals is not None:
            values = np.round(values, column.decimals)
        return pandas().Series(values)


class Positive(Continuous):
    """An always-positive, right-skewed column (sizes, areas, concentrations): log-normal given z.

    A Gaussian in x gives such a column negative draws and, with the long right tail
    held by a few rows in a corner of latent space that the prior rarely visits,
    synthetic columns far narrower than the data; a Gaussian in log x has neither.
    """

    name = "positive"
    log_values = True

    @staticmethod
    def matches(series, observed, max_categories):
        values = observed_numbers(series, observed)
        if values is None or len(values) < 8 or values.min() <= 0 or not np.isfinite(values).all() or values.max() > LARGEST_VALUE:
            return False
        skew, log_skew = _skewness(values), _skewness(np.log(values))
        return skew > 1.0 and abs(log_skew) < skew / 2

    def describe(self, name, series, column_class, bounds="sign"):
        values = numbers(name, series)
        values = values[~np.isnan(values)]
        if (values <= 0).any():
            raise AevbError(f"column {name!r} cannot be positive: it holds {values[values <= 0][0]:g}")
        shift, scale = self.moments(np.log(values))
        lower, upper = self.bounds(values, bounds) if bounds == "range" else (None, None)
        return column_class(name, self.name, "float64", shift=shift, scale=scale,
                            decimals=decimals(values), lower=lower, upper=upper)

    def encode(self, column, series):
        values = numbers(column.name, series)
        if (values <= 0).any():
            row = int(np.argmax(values <= 0))
            raise AevbError(f"column {column.name!r} is positive in the model but holds {values[row]:g} at row {row}")
        return values

    def decode(self, column, values):
        values = np.minimum(values, LARGEST_VALUE)  # a far draw of exp(.) stays a number
        if column.decimals is not None:
            # Rounding keeps the column's digits but never rounds a value down to 0.
            step = 10.0 ** -column.decimals
            values = np.maximum(np.round(values, column.decimals), step)
        return pandas().Series(self.clipped(column, values))


class Integer(Numeric):
    name = "integer"
    dequantized = True
    dtypes = ("int64",)

    def check_saved(self, column) -> None:
        super().check_saved(column)
        # decode() adds whole numbers to these in exact integer arithmetic
        for field in ("offset", "lower", "upper"):
            value = getattr(column, field)
            if value is not None and not (isinstance(value, int) or float(value).is_integer()):
                raise DamagedField(f"column {column.name!r} of kind integer has {field} {value!r}, not a whole number")
            if value is not None:
                whole(int(value), f"column {column.name!r} {field}", -(2**63), INT64_LIMIT)

    @staticmethod
    def matches(series, observed, max_categories):
        values = observed_numbers(series, observed)
        return values is not None and bool((values == np.round(values)).all() and (np.abs(values) < 2.0**63).all())

    def describe(self, name, series, column_class, bounds="sign"):
        whole = _whole_numbers(name, series)
        observed = [v for v in whole if v is not None]
        if not all(-(2**63) <= v <= INT64_LIMIT for v in observed):
            raise AevbError(f"column {name!r} holds integers beyond 64 bits; model it with --continuous {name} "
                            f"or leave it out with --ignore {name}")
        offset = (2 * sum(observed) + len(observed)) // (2 * len(observed))  # the rounded mean, in exact integers
        if any(abs(v - offset) > 2**53 for v in observed):
            raise AevbError(
                f"column {name!r} spans more than 2^53 between its integers; model it with --continuous {name} "
                f"or leave it out with --ignore {name}"
            )
        values = np.array([v - offset for v in observed], dtype=np.float64)
        shift, scale = self.moments(values)
        # Bounds are kept exactly (integers past 2^53 are not floats).
        low, high = min(observed), max(observed)
        lower = low if bounds == "range" or (bounds == "sign" and low >= 0) else None
        upper = high if bounds == "range" else None
        return column_class(name, self.name, "int64", shift=shift, scale=scale, offset=offset, lower=lower, upper=upper)

    def encode(self, column, series):
        offset = int(column.offset)
        if is_integer_dtype(series) and len(series):
            holes = series.isna().to_numpy()
            ints = series.astype("Int64").to_numpy(dtype=np.int64, na_value=offset)
            if -(2**62) < int(ints.min()) - offset and int(ints.max()) - offset < 2**62:  # no wrap-around
                return np.where(holes, np.nan, (ints - np.int64(offset)).astype(np.float64))
        whole = _whole_numbers(column.name, series)
        return np.array([np.nan if v is None else float(v - offset) for v in whole], dtype=np.float64)

    def decode(self, column, values):
        offset = int(column.offset)
        low = -(2**63) if column.lower is None else int(column.lower)
        high = INT64_LIMIT if column.upper is None else int(column.upper)
        steps = np.clip(np.round(values), float(low - offset), float(high - offset))
        if abs(offset) < 2**62 and (len(steps) == 0 or np.abs(steps).max() < 2**61):
            return pandas().Series(np.int64(offset) + steps.astype(np.int64), dtype="int64")
        # Whole numbers added to the offset as Python ints: exact past 2^53, never wrapped.
        ints = [offset + int(v) for v in steps]
        ints = [min(max(v, max(low, -(2**63))), min(high, INT64_LIMIT)) for v in ints]
        return pandas().Series(ints, dtype="int64")


class Date(Numeric):
    """Dates and times, modelled as continuous seconds since 1970 (written back in the column's format)."""

    name = "date"
    dtypes = ("object", "datetime64[ns]")

    def check_saved(self, column) -> None:
        # A column of words keeps its format as its one category; a datetime column has none.
        formats = 1 if column.dtype == "object" else 0
        if len(column.categories) != formats or not all(isinstance(f, str) for f in column.categories):
            raise DamagedField(f"column {column.name!r} of kind date ({column.dtype}) has the formats {column.categories!r:.60}")

    @staticmethod
    def matches(series, observed, max_categories):
        return date_format(series, observed) is not None

    def describe(self, name, series, column_class, bounds="sign"):
        observed = series.dropna()
        form = date_format(series, observed)
        if form is None:
            raise AevbError(f"column {name!r} cannot be a date: it holds {observed.iloc[0]!r}")
        seconds = _seconds(name, series, form)
        seconds = seconds[~np.isnan(seconds)]
        offset = float(np.round(seconds.mean()))
        shift, scale = self.moments(seconds - offset)
        lower, upper = self.bounds(seconds, "range" if bounds == "range" else "none")
        return column_class(name, self.name, "object" if form else "datetime64[ns]", categories=[form] if form else [],
                            shift=shift, scale=scale, offset=offset, lower=lower, upper=upper)

    def encode(self, column, series):
        return _seconds(column.name, series, column.categories[0] if column.categories else "") - column.offset

    def decode(self, column, values):
        pd = pandas()
        seconds = self.clipped(column, values + column.offset)
        form = column.categories[0] if column.categories else ""
        # Whole days when the format has no time of day.
        unit = 86400 if form and "%H" not in form else 1
        seconds = np.round(np.clip(seconds, -(2**33), 2**33) / unit) * unit
        stamps = pd.to_datetime(seconds, unit="s")
        return pd.Series(stamps.strftime(form) if form else stamps, dtype=object if form else "datetime64[ns]")

    def summary(self, column) -> str:
        pd = pandas()
        mean = pd.to_datetime(column.offset + column.shift, unit="s")
        return f"date, mean {mean:%Y-%m-%d}, sd {column.scale / 86400:.4g} days"


class CategoricalKind(ColumnKind):
    name = "categorical"
    dtypes = ("int64", "float64", "object")

    def check_saved(self, column) -> None:
        labels = column.categories
        if not labels or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in labels):
            raise DamagedField(f"column {column.name!r} of kind categorical has the labels {labels!r:.60}, not numbers or words")
        if len(set(labels)) != len(labels):
            raise DamagedField(f"column {column.name!r} of kind categorical repeats a label")
        typed = {"int64": lambda v: isinstance(v, int) and -(2**63) <= v <= INT64_LIMIT,
                 "float64": lambda v: isinstance(v, float), "object": lambda v: True}[column.dtype]
        if not all(map(typed, labels)):
            raise DamagedField(f"column {column.name!r} of kind categorical has labels that are not {column.dtype}")

    @staticmethod
    def matches(series, observed, max_categories):
        if not is_numeric(series):
            return True
        return observed.nunique() <= max_categories and Integer.matches(series, observed, max_categories)

    def describe(self, name, series, column_class, bounds="sign"):
        observed = series.dropna()
        labels = sorted({label(v) for v in observed}, key=lambda v: (isinstance(v, str), v))
        numeric = all(not isinstance(v, str) for v in labels)
        whole = all(isinstance(v, int) and -(2**63) <= v <= INT64_LIMIT for v in labels)
        dtype = ("int64" if whole else "float64" if all(isinstance(v, float) for v in labels) else "object") if numeric else "object"
        return column_class(name, self.name, dtype, labels)

    def encode(self, column, series):
        index = {lab: i for i, lab in enumerate(column.categories)}
        out = np.full(len(series), np.nan)
        numeric_labels = column.dtype != "object"
        na = pandas().NA
        for i, value in enumerate(series.to_numpy(dtype=object)):
            if value is None or value is na or (isinstance(value, float) and np.isnan(value)):
                continue
            lab = label(value)
            if numeric_labels and isinstance(lab, str):
                try:
                    lab = label(float(lab))
                except ValueError:
                    pass
            if lab not in index:
                known = ", ".join(map(str, column.categories[:10]))
                raise AevbError(f"column {column.name!r} holds category {value!r}, which the model never saw (known: {known})")
            out[i] = index[lab]
        return out

    def decode(self, column, values):
        index = np.clip(values, 0, len(column.categories) - 1).astype(int)
        return pandas().Series(np.array(column.categories, dtype=object)[index], dtype=object)

    def width(self, column):
        return len(column.categories)

    def head_size(self, column, components):
        return len(column.categories)

    def encoder_piece(self, filled, observed, shift, scale, width):
        one_hot = nn.functional.one_hot(filled.long().clamp(0, width - 1), width).to(filled.dtype)
        return one_hot * observed.unsqueeze(-1)

    def distribution(self, out, shift, scale, components):
        return Categorical(logits=out)

    def summary(self, column):
        shown = ", ".join(map(str, column.categories[:6])) + (", ..." if len(column.categories) > 6 else "")
        return f"{len(column.categories)} categories: {shown}"


class Boolean(ColumnKind):
    name = "boolean"
    dtypes = ("bool", "int64", "object")

    def check_saved(self, column) -> None:
        # A column of words keeps its spelling of (false, true); other columns have none.
        words = column.categories
        if column.dtype == "object":
            spelled = len(words) == 2 and all(isinstance(w, str) for w in words) and words[0] != words[1]
        else:
            spelled = not words
        if not spelled:
            wanted = "two words for false and true" if column.dtype == "object" else "none"
            raise DamagedField(f"column {column.name!r} of kind boolean ({column.dtype}) has the labels {words!r:.60}, not {wanted}")

    @staticmethod
    def matches(series, observed, max_categories):
        return observed.nunique() <= 2 and boolean_values(series) is not None

    def describe(self, name, series, column_class, bounds="sign"):
        pd = pandas()
        observed = series.dropna()
        if boolean_values(series) is None:
            raise AevbError(f"column {name!r} cannot be boolean: it holds {observed.iloc[0]!r}")
        if pd.api.types.is_bool_dtype(series) or observed.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            return column_class(name, self.name, "bool")
        if is_numeric(series):
            return column_class(name, self.name, "int64")
        # Words (yes/no, true/false, ...): keep the table's own spelling for the output.
        words = [str(v) for v in observed]
        truth = boolean_values(observed).astype(bool)
        spelling = {t: next((w for w, u in zip(words, truth) if u == t), None) for t in (False, True)}
        return column_class(name, self.name, "object", [spelling[False] or "False", spelling[True] or "True"])

    def encode(self, column, series):
        values = boolean_values(series)
        if values is None:
            bad = series.dropna()
            bad = bad[~bad.map(lambda v: str(v).strip().lower()).isin(TRUE_WORDS | FALSE_WORDS | {"0", "1", "0.0", "1.0"})]
            raise AevbError(f"column {column.name!r} is boolean in the model but holds {bad.iloc[0] if len(bad) else '?'!r}")
        return values

    def decode(self, column, values):
        truth = values > 0.5
        if column.categories:
            return pandas().Series(np.array(column.categories, dtype=object)[truth.astype(int)])
        return pandas().Series(truth)

    def encoder_piece(self, filled, observed, shift, scale, width):
        return ((2 * filled - 1) * observed).unsqueeze(-1)

    def distribution(self, out, shift, scale, components):
        return Bernoulli(logits=out[..., 0])

    def summary(self, column):
        return "yes/no" if not column.categories else f"{column.categories[1]}/{column.categories[0]}"


KINDS: dict[str, ColumnKind] = {
    kind.name: kind for kind in (Continuous(), Positive(), Integer(), Date(), CategoricalKind(), Boolean())
}
# Inference tries the kinds in this order; the first that matches wins (continuous matches any number).
INFERENCE_ORDER = ("boolean", "date", "categorical", "integer", "positive", "continuous")


def infer_kind(series, max_categories: int) -> str:
    observed = series.dropna()
    for name in INFERENCE_ORDER:
        if KINDS[name].matches(series, observed, max_categories):
            return name
    return "categorical"


def is_identifier(series) -> bool:
    """A column of words or whole numbers with a different value in every row (an id, a key):
    it tells nothing about the other columns, and as categories it would take one per row."""
    pd = pandas()
    observed = series.dropna()
    if len(observed) < 20 or len(observed) < len(series) or observed.nunique() < len(observed):
        return False
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_float_dtype(series):
        return False
    if is_integer_dtype(series):
        # Row numbers and counters: evenly spaced once sorted. Measurements that happen to differ are kept.
        steps = np.diff(np.sort(observed.to_numpy(dtype=object)).astype(object))
        return len(set(steps.tolist())) == 1
    return date_format(series, observed) is None and pd.to_numeric(observed, errors="coerce").isna().all()


def date_format(series, observed) -> str | None:
    """'' for a datetime column, the strftime format that reads every observed word, or None."""
    pd = pandas()
    if pd.api.types.is_datetime64_any_dtype(series):
        return ""
    if is_numeric(series) or pd.api.types.is_bool_dtype(series) or len(observed) == 0:
        return None
    words = observed.astype(str)
    if not words.str.contains(r"\d", regex=True).all():
        return None
    for form in DATE_FORMATS:
        if pd.to_datetime(words, format=form, errors="coerce").notna().all():
            return form
    return None


def _seconds(name: str, series, form: str) -> np.ndarray:
    pd = pandas()
    stamps = pd.to_datetime(series, format=form or None, errors="coerce")
    bad = stamps.isna() & series.notna()
    if bad.any():
        raise AevbError(f"column {name!r} is a date in the model but holds {series[bad].iloc[0]!r}")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    # Whatever the resolution pandas chose (s, ms, ns): seconds since 1970 as float64, NaN for holes.
    return ((stamps - pd.Timestamp(0)) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def _whole_numbers(name: str, series) -> list:
    """The cells as exact Python ints (None for holes): a nullable or object column of integers past
    2^53 is read without a detour through float64; an AevbError names a cell that is not whole."""
    pd = pandas()
    if is_integer_dtype(series):
        return [None if v is pd.NA else int(v) for v in series.astype("Int64").to_numpy(dtype=object)]
    if is_numeric(series):
        values = numbers(name, series)
    else:
        values = series.to_numpy(dtype=object)
    out = []
    for value in values:
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
            continue
        try:
            whole = int(value) if isinstance(value, (int, np.integer)) else int(str(value).strip())
        except ValueError:
            number = float(value)
            check_finite(name, np.array([number]))
            if not number.is_integer():
                raise AevbError(f"column {name!r} cannot be integer: it holds fractions ({value!r})") from None
            whole = int(number)
        out.append(whole)
    return out


def _skewness(values: np.ndarray) -> float:
    centred = values - values.mean()
    spread = centred.std()
    return float((centred**3).mean() / spread**3) if spread > 0 else 0.0
