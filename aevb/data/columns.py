"""How the training data wrote its columns, so that rows written back look like it.

A model learns real numbers, but the file it learned from had column names and,
often, columns of whole numbers (counts, years, magnesium in mg/l). Sampled and
reconstructed rows written to CSV carry the same header and write those columns
as integers (rounded to the nearest), as the table path does for its integer
columns. Rows of a file without names get x0, x1, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import AevbError

WHOLE_NUMBER = re.compile(r"\s*[+-]?\d+\s*")
# Integers a float64 column can be rounded to and written as Python ints without overflow.
INT_LIMIT = 2.0**63


def default_names(n_features: int) -> tuple[str, ...]:
    return tuple(f"x{j}" for j in range(n_features))


@dataclass(frozen=True)
class ColumnFormat:
    """Per column (D,): its name, and whether every training value was written as a whole number."""

    names: tuple[str, ...]
    whole: tuple[bool, ...]

    @classmethod
    def plain(cls, n_features: int) -> "ColumnFormat":
        """Columns x0, x1, ... of real numbers."""
        return cls(default_names(n_features), (False,) * n_features)

    @classmethod
    def of_csv(cls, header: list[str] | None, cells: list[list[str]]) -> "ColumnFormat":
        """From a CSV's header (None: none) and its cells as written (rows of strings)."""
        width = len(header) if header else len(cells[0])
        whole = tuple(all(WHOLE_NUMBER.fullmatch(row[j]) for row in cells) for j in range(width))
        return cls(tuple(header) if header else default_names(width), whole)

    @classmethod
    def of(cls, X, n_features: int) -> "ColumnFormat":
        """From what a ``fit`` was given: a DataFrame's names and integer dtypes, an integer
        array's dtype; the names x0, x1, ... otherwise."""
        known = getattr(X, "column_format", None)  # a Dataset's, from its file
        if isinstance(known, ColumnFormat):
            return known
        columns = getattr(X, "columns", None)
        dtypes = getattr(X, "dtypes", None)
        if columns is not None and dtypes is not None and len(columns) == n_features:
            whole = tuple(np.dtype(d).kind in "iu" if isinstance(d, np.dtype) else False for d in dtypes)
            return cls(tuple(str(c) for c in columns), whole)
        kind = getattr(getattr(X, "dtype", None), "kind", "f")
        return cls(default_names(n_features), (kind in "iub",) * n_features)

    def cells(self, block: np.ndarray) -> list[list]:
        """The rows (n, D) as lists for a CSV writer: whole-number columns rounded to ints
        (a column holding a value past 2^63, or not finite, stays float)."""
        columns = []
        for j, column in enumerate(np.asarray(block, dtype=np.float64).T):
            if self.whole[j] and np.isfinite(column).all() and (np.abs(column) < INT_LIMIT).all():
                columns.append(np.rint(column).astype(np.int64).tolist())
            else:
                columns.append(column.tolist())
        return [list(row) for row in zip(*columns)]

    def to_dict(self) -> dict:
        return {"names": list(self.names), "whole": list(self.whole)}

    @classmethod
    def from_dict(cls, values, n_features: int) -> "ColumnFormat":
        """Read back what :meth:`to_dict` wrote for a model of ``n_features``; AevbError if damaged."""
        names = values.get("names") if isinstance(values, dict) else None
        whole = values.get("whole") if isinstance(values, dict) else None
        if (
            not isinstance(names, list) or not isinstance(whole, list)
            or len(names) != n_features or len(whole) != n_features
            or not all(isinstance(n, str) for n in names) or not all(isinstance(w, bool) for w in whole)
        ):
            raise AevbError(f"its field 'columns' is not {n_features} names and whole-number flags")
        return cls(tuple(names), tuple(whole))
