"""A table's schema: each column's name, kind, categories and scale.

The schema is inferred once from the training table, shown to the user,
saved in config.json and replayed on every later table. It turns a pandas
DataFrame into the model's numeric rows and back:

    continuous  float value                      Gaussian (or mixture) likelihood
    integer     integer value, dequantized       the same, on x + u, u ~ U[0, 1)
    categorical index of the label in categories categorical (softmax) likelihood
    boolean     0 / 1                            Bernoulli likelihood

A hole (empty cell, NaN, NA) is NaN in every kind; the model masks it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import numpy as np

from ..errors import AevbError

ColumnKind = Literal["continuous", "integer", "categorical", "boolean"]
TRUE_WORDS = {"true", "yes", "t", "y"}
FALSE_WORDS = {"false", "no", "f", "n"}


@dataclass
class Column:
    """One modelled column. ``shift``/``scale`` standardize continuous and integer columns
    (for integer columns, of x + u); ``dtype`` is the clean pandas dtype that decoded values get.
    ``categories`` are the labels of a categorical column, or a yes/no column's spelling of
    (false, true) when it is written in words."""

    name: str
    kind: ColumnKind
    dtype: str
    categories: list = field(default_factory=list)
    shift: float = 0.0
    scale: float = 1.0

    @property
    def width(self) -> int:
        """Entries of this column in the encoder's input: one-hot width or 1."""
        return len(self.categories) if self.kind == "categorical" else 1


def _pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - pandas is a dependency
        raise AevbError("tables need pandas; install it with pip install pandas") from None
    return pandas


def _is_numeric(series) -> bool:
    pd = _pandas()
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _boolean_values(series) -> np.ndarray | None:
    """The column as 0/1 floats with NaN holes if every observed value is a truth value, else None."""
    pd = _pandas()
    observed = series.dropna()
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    if _is_numeric(series):
        return series.astype("float64").to_numpy() if observed.isin([0, 1]).all() else None
    words = observed.map(lambda v: str(v).strip().lower() if not isinstance(v, (bool, np.bool_)) else str(v).lower())
    if not words.isin(TRUE_WORDS | FALSE_WORDS).all():
        return None
    out = np.full(len(series), np.nan)
    mask = series.notna().to_numpy()
    out[mask] = words.isin(TRUE_WORDS).to_numpy().astype(float)
    return out


def _label(value):
    """A category label as JSON keeps it: int, float or str."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if float(value).is_integer() else float(value)
    return str(value)


@dataclass
class TableSchema:
    """The modelled columns in order, and the columns the user asked to ignore."""

    columns: list[Column]
    ignored: list[str] = field(default_factory=list)

    # -- inference -------------------------------------------------------------------

    @classmethod
    def infer(
        cls,
        frame,
        categorical=(),
        continuous=(),
        boolean=(),
        ignore=(),
        max_categories: int = 10,
    ) -> "TableSchema":
        """Choose a kind for every column of ``frame``; the named overrides win.

        Strings are categorical unless they are all truth words (boolean);
        numbers that are all 0/1 are boolean; integers with at most
        ``max_categories`` distinct values are categorical, other integers
        are ``integer`` (dequantized); everything else is continuous.
        """
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise AevbError("the table has repeated column names; give every column its own name")
        overrides = {}
        for kind, chosen in (("categorical", categorical), ("continuous", continuous), ("boolean", boolean), ("ignore", ignore)):
            for name in chosen:
                if name not in names:
                    raise AevbError(f"--{kind} names column {name!r}, which the table does not have (it has {', '.join(names)})")
                if name in overrides:
                    raise AevbError(f"column {name!r} is given two kinds, {overrides[name]} and {kind}")
                overrides[name] = kind
        columns = []
        for name, key in zip(names, frame.columns):
            kind = overrides.get(name)
            if kind == "ignore":
                continue
            columns.append(_infer_column(name, frame[key], kind, max_categories))
        if not columns:
            raise AevbError("every column is ignored; the table has nothing to model")
        return cls(columns, [n for n in names if overrides.get(n) == "ignore"])

    # -- checking and encoding ---------------------------------------------------------

    def check_columns(self, frame) -> None:
        """Raise, naming the column, if ``frame`` lacks a modelled column or has a new one."""
        names = [str(c) for c in frame.columns]
        known = {c.name for c in self.columns} | set(self.ignored)
        for column in self.columns:
            if column.name not in names:
                raise AevbError(
                    f"column {column.name!r} is missing; the model was trained with it "
                    "(add it, empty, to mark every value as missing)"
                )
        for name in names:
            if name not in known:
                raise AevbError(f"column {name!r} was not in the training table; drop it or refit")

    def encode(self, frame) -> np.ndarray:
        """The table as model rows (n, C) float64: values, category indices or 0/1, NaN for holes."""
        self.check_columns(frame)
        by_name = {str(c): c for c in frame.columns}
        out = np.empty((len(frame), len(self.columns)))
        for j, column in enumerate(self.columns):
            out[:, j] = _encode_column(column, frame[by_name[column.name]])
        return out

    def decode(self, rows: np.ndarray):
        """Model rows (n, C) -> a DataFrame with the training table's names, order, dtypes and labels.

        Integer columns are rounded; category indices become labels. NaN stays a hole.
        """
        pd = _pandas()
        data = {}
        for j, column in enumerate(self.columns):
            values = rows[:, j]
            holes = np.isnan(values)
            if column.kind == "categorical":
                index = np.clip(np.nan_to_num(values), 0, len(column.categories) - 1).astype(int)
                labels = np.array(column.categories, dtype=object)[index]
                series = pd.Series(labels, dtype=object)
            elif column.kind == "boolean" and column.categories:
                series = pd.Series(np.array(column.categories, dtype=object)[(np.nan_to_num(values) > 0.5).astype(int)])
            elif column.kind == "boolean":
                series = pd.Series(np.nan_to_num(values) > 0.5)
            elif column.kind == "integer":
                series = pd.Series(np.round(np.nan_to_num(values)))
            else:
                series = pd.Series(values)
            if holes.any():
                series = series.astype(object).where(~holes, None)
            else:
                series = series.astype(column.dtype)
            data[column.name] = series
        return pd.DataFrame(data)

    def summary(self) -> str:
        """One line per column: name, kind and what the model knows of it."""
        lines = [f"{'column':20} {'kind':12} details"]
        for c in self.columns:
            if c.kind == "categorical":
                shown = ", ".join(map(str, c.categories[:6])) + (", ..." if len(c.categories) > 6 else "")
                detail = f"{len(c.categories)} categories: {shown}"
            elif c.kind == "boolean":
                detail = "yes/no" if not c.categories else f"{c.categories[1]}/{c.categories[0]}"
            else:
                detail = f"mean {c.shift:.4g}, sd {c.scale:.4g}" + (", dequantized" if c.kind == "integer" else "")
            lines.append(f"{c.name:20} {c.kind:12} {detail}")
        if self.ignored:
            lines.append(f"ignored: {', '.join(self.ignored)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns], "ignored": list(self.ignored)}

    @classmethod
    def from_dict(cls, values: dict) -> "TableSchema":
        columns = [Column(**c) for c in values["columns"]]
        for c in columns:
            if c.kind not in get_args(ColumnKind):
                raise ValueError(f"unknown column kind {c.kind!r}")
        return cls(columns, list(values.get("ignored", [])))


def _numbers(name: str, series) -> np.ndarray:
    """The column as float64 with NaN holes; an AevbError naming it if a value is not a number."""
    pd = _pandas()
    if _is_numeric(series):
        return series.astype("float64").to_numpy()
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy()
    converted = pd.to_numeric(series, errors="coerce")
    bad = converted.isna() & series.notna()
    if bad.any():
        raise AevbError(f"column {name!r} is numeric in the model but holds {series[bad].iloc[0]!r}")
    return converted.astype("float64").to_numpy()


def _infer_column(name: str, series, kind: str | None, max_categories: int) -> Column:
    pd = _pandas()
    observed = series.dropna()
    if len(observed) == 0:
        raise AevbError(f"column {name!r} has no values at all; drop it with --ignore {name}")
    if kind is None:
        if _boolean_values(series) is not None and observed.nunique() <= 2:
            kind = "boolean"
        elif not _is_numeric(series) or pd.api.types.is_bool_dtype(series):
            kind = "categorical"
        else:
            values = observed.astype("float64").to_numpy()
            integral = bool((values == np.round(values)).all())
            if integral and observed.nunique() <= max_categories:
                kind = "categorical"
            else:
                kind = "integer" if integral else "continuous"
    if kind == "boolean":
        if _boolean_values(series) is None:
            raise AevbError(f"column {name!r} cannot be boolean: it holds {observed.iloc[0]!r}")
        if pd.api.types.is_bool_dtype(series) or observed.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            return Column(name, "boolean", "bool")
        if _is_numeric(series):
            return Column(name, "boolean", "int64")
        # Words (yes/no, true/false, ...): keep the table's own spelling for the output.
        words = [str(v) for v in observed]
        truth = _boolean_values(observed).astype(bool)
        spelling = {t: next((w for w, u in zip(words, truth) if u == t), None) for t in (False, True)}
        return Column(name, "boolean", "object", [spelling[False] or "False", spelling[True] or "True"])
    if kind == "categorical":
        labels = sorted({_label(v) for v in observed}, key=lambda v: (isinstance(v, str), v))
        numeric = all(not isinstance(v, str) for v in labels)
        dtype = ("int64" if all(isinstance(v, int) for v in labels) else "float64") if numeric else "object"
        return Column(name, "categorical", dtype, labels)
    values = _numbers(name, series)
    values = values[~np.isnan(values)]
    if kind == "integer" and not (values == np.round(values)).all():
        raise AevbError(f"column {name!r} cannot be integer: it holds fractions")
    offset, extra_variance = (0.5, 1.0 / 12.0) if kind == "integer" else (0.0, 0.0)
    std = float(np.sqrt(values.var() + extra_variance))
    return Column(
        name, kind, "int64" if kind == "integer" else "float64",
        shift=float(values.mean() + offset), scale=std if std > 0 else 1.0,
    )


def _encode_column(column: Column, series) -> np.ndarray:
    if column.kind == "boolean":
        values = _boolean_values(series)
        if values is None:
            bad = series.dropna()
            bad = bad[~bad.map(lambda v: str(v).strip().lower()).isin(TRUE_WORDS | FALSE_WORDS | {"0", "1", "0.0", "1.0"})]
            raise AevbError(f"column {column.name!r} is boolean in the model but holds {bad.iloc[0] if len(bad) else '?'!r}")
        return values
    if column.kind == "categorical":
        index = {label: i for i, label in enumerate(column.categories)}
        out = np.full(len(series), np.nan)
        numeric_labels = column.dtype != "object"
        for i, value in enumerate(series.to_numpy()):
            if value is None or (isinstance(value, float) and np.isnan(value)) or value is _pandas().NA:
                continue
            label = _label(value)
            if numeric_labels and isinstance(label, str):
                try:
                    label = _label(float(label))
                except ValueError:
                    pass
            if label not in index:
                known = ", ".join(map(str, column.categories[:10]))
                raise AevbError(f"column {column.name!r} holds category {value!r}, which the model never saw (known: {known})")
            out[i] = index[label]
        return out
    return _numbers(column.name, series)
