"""A table's schema: each column's name, kind, categories and scale.

The schema is inferred once from the training table, shown to the user,
saved in config.json and replayed on every later table. It turns a pandas
DataFrame into the model's numeric rows and back; what each kind does is its
class in :mod:`aevb.tables.kinds` (continuous, positive, integer, date,
categorical, boolean). A hole (empty cell, NaN, NA) is NaN in every kind; the
model masks it. Identifier columns (a different word or row number in every
row) are left out with a note.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..data.preprocess import LARGEST_VALUE
from ..errors import AevbError
from ..store.fields import DamagedField, listing, mapping, number, optional, text, whole
from .kinds import KINDS, MAX_DECIMALS, infer_kind, is_identifier, pandas

OVERRIDES = ("categorical", "continuous", "boolean", "ignore")
BOUNDS = ("sign", "range", "none")


@dataclass
class Column:
    """One modelled column. The model sees x - ``offset`` (subtracted in float64), standardized
    by ``shift``/``scale`` (for integer columns, of x - offset + u; for positive ones, of log x);
    ``dtype`` is the clean pandas dtype that decoded values get. ``categories`` are the labels
    of a categorical column, a yes/no column's spelling of (false, true) when it is written in
    words, or a date column's format. Draws are rounded to ``decimals`` and kept in
    [``lower``, ``upper``] (None: no rounding, no bound)."""

    name: str
    kind: str
    dtype: str
    categories: list = field(default_factory=list)
    shift: float = 0.0
    scale: float = 1.0
    offset: float = 0.0
    decimals: int | None = None
    lower: float | None = None
    upper: float | None = None

    @property
    def kind_class(self):
        return KINDS[self.kind]

    @property
    def width(self) -> int:
        """Entries of this column in the encoder's input: one-hot width or 1."""
        return self.kind_class.width(self)


@dataclass
class TableSchema:
    """The modelled columns in order, the columns left out, and why (``notes``: name -> reason)."""

    columns: list[Column]
    ignored: list[str] = field(default_factory=list)
    notes: dict = field(default_factory=dict)

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
        bounds: str = "sign",
    ) -> "TableSchema":
        """Choose a kind for every column of ``frame``; the named overrides win.

        A column with a different word or row number in every row is an identifier
        and is left out (noted); strings are dates if every one reads as a date,
        else categorical unless they are all truth words (boolean); numbers that are
        all 0/1 are boolean; integers with at most ``max_categories`` distinct values
        are categorical, other integers are ``integer`` (dequantized); right-skewed
        always-positive numbers are ``positive`` (log-normal); everything else is
        continuous. ``bounds`` (sign, range, none) says where draws are kept.
        """
        if bounds not in BOUNDS:
            raise AevbError(f"bounds must be one of {', '.join(BOUNDS)}, got {bounds!r}")
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise AevbError("the table has repeated column names; give every column its own name")
        overrides = {}
        for kind, chosen in zip(OVERRIDES, (categorical, continuous, boolean, ignore)):
            for name in chosen:
                if name not in names:
                    raise AevbError(f"--{kind} names column {name!r}, which the table does not have (it has {', '.join(names)})")
                if name in overrides:
                    raise AevbError(f"column {name!r} is given two kinds, {overrides[name]} and {kind}")
                overrides[name] = kind
        columns, notes = [], {}
        for name, key in zip(names, frame.columns):
            series = frame[key]
            kind = overrides.get(name)
            if kind is None and is_identifier(series):
                overrides[name] = "ignore"
                notes[name] = "a different value in every row: an identifier"
                continue
            if kind == "ignore":
                continue
            columns.append(_infer_column(name, series, kind, max_categories, bounds))
        if not columns:
            raise AevbError("every column is ignored; the table has nothing to model")
        return cls(columns, [n for n in names if overrides.get(n) == "ignore"], notes)

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
        """The table as model rows (n, C) float64: numbers less their offset, category indices
        or 0/1, NaN for holes."""
        self.check_columns(frame)
        by_name = {str(c): c for c in frame.columns}
        out = np.empty((len(frame), len(self.columns)))
        for j, column in enumerate(self.columns):
            out[:, j] = column.kind_class.encode(column, frame[by_name[column.name]])
        return out

    def decode(self, rows: np.ndarray):
        """Model rows (n, C) -> a DataFrame with the training table's names, order, dtypes and labels.

        Numbers get their offset back (in float64), their bounds and the column's precision;
        integer columns are rounded; category indices become labels. NaN stays a hole.
        """
        pd = pandas()
        data = {}
        for j, column in enumerate(self.columns):
            values = rows[:, j]
            holes = np.isnan(values)
            series = column.kind_class.decode(column, np.nan_to_num(values))
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
            lines.append(f"{c.name:20} {c.kind:12} {c.kind_class.summary(c)}")
        if self.ignored:
            lines.append(f"ignored: {', '.join(self.ignored)}")
        for name, reason in self.notes.items():
            lines.append(f"note: column {name!r} is left out ({reason}; model it with --categorical {name} if it matters)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"columns": [asdict(c) for c in self.columns], "ignored": list(self.ignored), "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, values: dict) -> "TableSchema":
        """The inverse of to_dict, refusing (DamagedField, naming the column and field) a schema
        that :meth:`infer` cannot have written."""
        values = mapping(values, "preprocessor")
        columns = [_saved_column(c, j) for j, c in enumerate(listing(values.get("columns"), "preprocessor.columns"))]
        if not columns:
            raise DamagedField("preprocessor.columns is empty")
        ignored = [text(name, "an ignored column's name") for name in listing(values.get("ignored", []), "preprocessor.ignored")]
        notes = mapping(values.get("notes", {}), "preprocessor.notes")
        for reason in notes.values():
            text(reason, "a note on a column")
        names = [c.name for c in columns] + ignored
        repeated = next((name for name in names if names.count(name) > 1), None)
        if repeated is not None:
            raise DamagedField(f"column {repeated!r} appears twice in the schema")
        return cls(columns, ignored, dict(notes))


def _saved_column(values, j: int) -> Column:
    """Column ``j`` of a saved schema, each field checked."""
    values = mapping(values, f"preprocessor.columns[{j}]")
    unknown = sorted(set(values) - {f.name for f in fields(Column)})
    if unknown:
        raise DamagedField(f"preprocessor.columns[{j}] has an unknown field {unknown[0]!r}")
    name = text(values.get("name"), f"preprocessor.columns[{j}].name")

    def named(part: str) -> str:
        return f"column {name!r} {part}"

    kind = text(values.get("kind"), named("kind"), tuple(KINDS))
    text(values.get("dtype"), named("dtype"), KINDS[kind].dtypes)
    listing(values.get("categories", []), named("categories"))
    number(values.get("shift", 0.0), named("shift"), -LARGEST_VALUE, LARGEST_VALUE)
    number(values.get("scale", 1.0), named("scale"), high=LARGEST_VALUE, above=0.0)
    number(values.get("offset", 0.0), named("offset"), -LARGEST_VALUE, LARGEST_VALUE)
    optional(whole, values.get("decimals"), named("decimals"), 0, MAX_DECIMALS)
    lower, upper = (optional(number, values.get(end), named(end)) for end in ("lower", "upper"))
    if lower is not None and upper is not None and lower > upper:
        raise DamagedField(f"column {name!r} has lower bound {lower:g} above its upper bound {upper:g}")
    column = Column(**values)
    KINDS[kind].check_saved(column)
    return column


def _infer_column(name: str, series, kind: str | None, max_categories: int, bounds: str) -> Column:
    observed = series.dropna()
    if len(observed) == 0:
        raise AevbError(f"column {name!r} has no values at all; drop it with --ignore {name}")
    if kind is None:
        kind = infer_kind(series, max_categories)
    return KINDS[kind].describe(name, series, Column, bounds)
