"""Reading and writing tables (.csv, .parquet), and when a file takes the table path.

A .parquet file is always a table. A .csv file is a table when any cell is
empty (or NA/NaN) or any column holds only words (categories, yes/no); a
CSV of numbers only keeps the numeric-array path, and a column that mixes
numbers with a few words stays an error there, naming the cell, because it is
more often a typo than a category. ``aevb fit --table`` (or any of
--categorical/--continuous/--boolean/--ignore) takes the table path for any CSV.
"""

from __future__ import annotations

from pathlib import Path

from ..data.loaders import sniff_delimiter
from ..errors import AevbError, check_regular_file, first_line
from ..store.atomic import write_output

TABLE_SUFFIXES = (".csv", ".parquet")


def read_table(source):
    """A DataFrame from a .csv or .parquet file (a DataFrame is returned as it is, a 2-D array
    becomes columns named 0, 1, ...). A CSV column of whole numbers with holes is read as
    nullable integers (Int64), so integers past 2^53 keep every digit."""
    import numpy as np
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    if not isinstance(source, (str, Path)):
        try:
            array = np.asarray(source)
        except (ValueError, TypeError) as error:
            raise AevbError(f"a table must be a DataFrame, a .csv/.parquet file or a 2-D array ({error})") from None
        if array.ndim != 2 or array.dtype.kind not in "biufOUS" or array.size == 0:
            raise AevbError(f"a table must be a DataFrame, a .csv/.parquet file or a 2-D array, got {type(source).__name__} of shape {array.shape}")
        return pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
    path = Path(source)
    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise AevbError(f"unsupported table file {path}: use .csv or .parquet")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, sep=sniff_delimiter(path), encoding="utf-8-sig")
        else:
            frame = pd.read_parquet(path)
    except Exception as error:  # pandas and pyarrow raise many types for a bad file
        raise AevbError(f"cannot read {path} as a table ({first_line(error)})") from None
    if frame.empty:
        raise AevbError(f"{path} holds no rows")
    frame.columns = [str(c) for c in frame.columns]
    if suffix == ".csv":
        _whole_numbers_with_holes(path, frame)
    return frame


def _whole_numbers_with_holes(path: Path, frame) -> None:
    """Re-read, as Int64, the float columns with holes whose every cell is written as a whole number
    (pandas turns such a column into float64, which rounds integers past 2^53)."""
    import pandas as pd

    holey = [name for name in frame.columns if frame[name].dtype == "float64" and frame[name].isna().any()]
    if not holey:
        return
    text = pd.read_csv(path, dtype=str, usecols=lambda name: str(name) in holey)
    text.columns = [str(c) for c in text.columns]
    for name in holey:
        cells = text[name]
        observed = cells.dropna().str.strip()
        if len(observed) == 0 or not observed.str.fullmatch(r"[+-]?\d+").all():
            continue
        values = [None if pd.isna(v) else int(v) for v in cells]
        if all(v is None or -(2**63) <= v < 2**63 for v in values):
            frame[name] = pd.array(values, dtype="Int64")


def is_table_file(source) -> bool:
    """Whether ``source`` should take the table path without being asked (see the module note)."""
    path = Path(str(source))
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return True
    if suffix != ".csv" or not path.is_file():
        return False
    import csv

    import pandas as pd

    try:
        delimiter = sniff_delimiter(path)
        with open(path, newline="", encoding="utf-8-sig") as handle:
            widths = {len(row) for row in csv.reader(handle, delimiter=delimiter) if row}
        frame = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig")
    except Exception:
        return False  # the numeric reader reports what is wrong
    if len(widths) != 1:
        return False  # ragged: the numeric reader names the line
    if frame.empty:
        return False
    for name in frame.columns:
        column = frame[name]
        if column.isna().any() or pd.api.types.is_bool_dtype(column):
            return True
        if not pd.api.types.is_numeric_dtype(column) and pd.to_numeric(column, errors="coerce").isna().all():
            return True
    return False


def write_table(frame, path: Path) -> None:
    """Write a DataFrame as .csv or .parquet, chosen by the file name, whole or not at all
    (:func:`aevb.store.atomic.write_output`)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise AevbError(f"cannot write {path}: use a .csv or .parquet file name")
    if suffix == ".csv":
        write_output(path, lambda temp: frame.to_csv(temp, index=False))
    else:
        write_output(path, lambda temp: frame.to_parquet(temp, index=False))


def write_table_chunks(frames, path: Path) -> None:
    """Write DataFrames of the same columns one after another as one table, each as it comes
    (so memory holds one at a time), whole or not at all, as :func:`write_table`."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise AevbError(f"cannot write {path}: use a .csv or .parquet file name")

    def write(temp: str) -> None:
        if suffix == ".csv":
            with open(temp, "w", newline="") as handle:
                for number, frame in enumerate(frames):
                    frame.to_csv(handle, index=False, header=number == 0)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for frame in frames:
                part = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(temp, part.schema)
                writer.write_table(part.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()

    write_output(path, write)
