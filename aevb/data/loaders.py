"""Loading data: arrays, tables, image folders and built-in datasets.

Every loader returns a :class:`Dataset` whose ``values`` are a finite float64
array of shape (n_rows, n_features); anything else is an :class:`AevbError`
that names the problem.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AevbError, check_regular_file, unreadable
from .chunks import CHUNK_ROWS
from .columns import ColumnFormat
from .shards import Shards, is_lazy, shard_files

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
# Suffixes of data files, which a folder of shards or images does not normally have.
FILE_SUFFIXES = {".npy", ".npz", ".csv", ".parquet"}
# Pillow's modes of one channel deeper than 8 bits (16-bit PNGs read as "I;16" or "I").
DEEP_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass
class Dataset:
    """Rows to model; ``image_shape`` is (H, W) or (H, W, C) when each row is a flattened image;
    ``column_format``, the names and whole-number columns of the file (None: not known); ``row_names``,
    the file each row came from (an image folder's)."""

    values: np.ndarray
    image_shape: tuple[int, ...] | None = None
    column_format: ColumnFormat | None = None
    row_names: tuple[str, ...] | None = None


def _digits(part: str) -> Dataset:
    from sklearn.datasets import load_digits

    values = load_digits().data.astype(np.float64)  # (1797, 64), levels 0..16
    if part != "all":
        order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(values))
        n_test = int(round(DIGITS_TEST_FRACTION * len(values)))
        rows = order[:n_test] if part == "test" else order[n_test:]
        values = values[np.sort(rows)]
    return Dataset(values, (8, 8))


BUILTIN = {
    "digits": lambda: _digits("all"),
    "digits-train": lambda: _digits("train"),
    "digits-test": lambda: _digits("test"),
}


def load(source: str | Path, key: str | None = None, memory_map: bool = False, holes: bool = False) -> Dataset:
    """Read ``source``: a built-in name, a .npy/.npz/.csv file, a folder of images or a
    folder of .npy shards (2-D, same width and dtype; their rows in name order).

    ``memory_map=True`` leaves a float32 or float64 .npy (or folder of them) memory-mapped,
    read-only (another dtype is read as one float64 copy): for training, which reads it in chunks.
    ``holes=True`` lets NaN through, for a model that treats it as a missing value."""
    name = str(source)
    if name in BUILTIN:
        return validated(BUILTIN[name](), name, holes=holes)
    path = Path(source)
    if path.is_symlink() and not path.exists():
        check_regular_file(path)  # names the broken or looping link
    if not path.exists():
        builtins = ", ".join(BUILTIN)
        raise AevbError(f"no such file or folder: {name} (built-in datasets: {builtins})")
    if path.is_dir():
        files = shard_files(path)
        if files is not None:
            return validated(_load_shards(files, memory_map), name, holes=holes)
        return validated(_load_image_folder(path), name, holes=holes)
    check_regular_file(path)
    suffix = path.suffix.lower()
    readers = {".npy": lambda p: _load_npy(p, memory_map), ".npz": lambda p: _load_npz(p, key), ".csv": _load_csv}
    if suffix not in readers:
        raise AevbError(
            f"unsupported file type {suffix or '(none)'} for {name}: use .npy, .npz, .csv or a folder of images"
        )
    return validated(readers[suffix](path), name, holes=holes)


def _from_array(array: np.ndarray, name: str) -> Dataset:
    if array.dtype.kind not in "biuf":
        raise AevbError(f"{name} holds {array.dtype} values; aevb needs real numbers")
    if array.size == 0:
        raise AevbError(f"{name} holds no data (shape {array.shape})")
    if array.ndim in (1, 2):
        array = array.reshape(len(array), -1)
        return Dataset(array, column_format=ColumnFormat.of(array, array.shape[1]))
    if array.ndim in (3, 4) and (array.ndim == 3 or array.shape[-1] in (1, 3, 4)):
        return Dataset(array.reshape(len(array), -1), tuple(array.shape[1:]))
    raise AevbError(f"{name} has shape {array.shape}; expected (rows, features) or a stack of images")


def _load_npy(path: Path, memory_map: bool = False) -> Dataset:
    with unreadable(path, "a numeric .npy array"):
        array = np.load(path, mmap_mode="r" if memory_map else None, allow_pickle=False)
    return _from_array(array, str(path))


def _load_shards(files: list[Path], memory_map: bool = False) -> Dataset:
    rows = Shards(files)
    if memory_map and rows.dtype in (np.float32, np.float64):
        return Dataset(rows)
    return Dataset(np.asarray(rows))


def _load_npz(path: Path, key: str | None) -> Dataset:
    with unreadable(path, "a numeric .npz archive"):
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if not keys:
                raise AevbError(f"{path} holds no arrays")
            if key is None:
                if len(keys) != 1:
                    raise AevbError(f"{path} holds arrays {keys}; choose one with --key")
                key = keys[0]
            if key not in keys:
                raise AevbError(f"{path} has no array named {key!r}; it holds {keys}")
            array = archive[key]
    if not isinstance(array, np.ndarray):
        # numpy hands back the raw bytes of a member that is not a .npy file
        raise AevbError(f"{path}[{key}] is not a .npy array (a .npz holds only .npy files)")
    return _from_array(array, f"{path}[{key}]")


def _parse_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


# Candidate separators, in order of preference: a file of one column has none of them.
DELIMITERS = (",", ";", "\t", "|")
SNIFF_LINES = 50


def sniff_delimiter(path: Path) -> str:
    """The separator of the CSV file ``path``: the first of DELIMITERS that splits every one
    of its first lines into the same number (> 1) of fields; "," when none does (one column)."""
    with unreadable(path, "a CSV table"):
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = [line for _, line in zip(range(SNIFF_LINES), handle) if line.strip()]
    for delimiter in DELIMITERS:
        widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(widths) == 1 and widths.pop() > 1:
            return delimiter
    return ","


def _load_csv(path: Path) -> Dataset:
    delimiter = sniff_delimiter(path)
    with unreadable(path, "a CSV table"):
        # utf-8-sig: a byte-order mark would otherwise make the first number a word, and
        # the first row of a headerless file a header.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    if not rows:
        raise AevbError(f"{path} is empty")
    header = None
    if any(_parse_float(cell) is None for cell in rows[0]):
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0]) if rows else 0
    values = np.empty((len(rows), width))
    for i, row in enumerate(rows):
        line = i + (2 if header else 1)
        if len(row) != width:
            raise AevbError(f"{path} line {line} has {len(row)} fields, expected {width}")
        for j, cell in enumerate(row):
            number = _parse_float(cell)
            if number is None:
                column = repr(header[j]) if header else f"{j + 1}"
                other = next((d for d in DELIMITERS if d != delimiter and d in cell), None)
                hint = f"; is the file separated by {other!r}? make every line have the same fields" if other else ""
                raise AevbError(f"{path} column {column} is not numeric (line {line}: {cell!r}){hint}")
            values[i, j] = number
    return Dataset(values, column_format=ColumnFormat.of_csv(header, rows) if rows else None)


def _load_image_folder(folder: Path) -> Dataset:
    from PIL import Image

    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()) and folder.suffix.lower() in FILE_SUFFIXES:
        raise AevbError(f"{folder} is a folder, not a {folder.suffix} file (and holds no .npy shards or images)")
    files = image_files(folder)
    images = []
    for path in files:
        check_regular_file(path)
        with unreadable(path, "an image"):
            with Image.open(path) as image:
                if image.mode in DEEP_MODES:
                    image.load()  # kept at its depth: an 8-bit conversion clips 16-bit pixels to 255
                    images.append(image.copy())
                else:
                    images.append(image.convert("L" if image.mode in ("1", "L", "LA") else "RGB"))
    deep = [im.mode in DEEP_MODES for im in images]
    if any(deep) and not all(deep):
        raise AevbError(
            f"{folder} mixes images deeper than 8 bits ({files[deep.index(True)].name}) with 8-bit ones "
            f"({files[deep.index(False)].name}); convert them to one depth"
        )
    if len({im.mode for im in images}) > 1 and not all(deep):
        images = [im.convert("RGB") for im in images]
    sizes = [im.size for im in images]
    odd = next((i for i, size in enumerate(sizes) if size != sizes[0]), None)
    if odd is not None:
        (w0, h0), (w1, h1) = sizes[0], sizes[odd]
        raise AevbError(
            f"images in {folder} differ in size: {files[0].name} is {w0}x{h0}, {files[odd].name} is {w1}x{h1}"
        )
    array = np.stack([np.asarray(im, dtype=np.float64) for im in images])
    return Dataset(array.reshape(len(array), -1), tuple(array.shape[1:]), row_names=tuple(p.name for p in files))


def image_files(folder: Path) -> list[Path]:
    """The images of ``folder`` in the order of their rows: sorted by name."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AevbError(f"{folder} holds no .png or .jpg images")
    return files


def row_names(source) -> tuple[str, ...] | None:
    """The file name of each row of ``source`` when it is a folder of images (else None)."""
    path = Path(str(source))
    if str(source) in BUILTIN or not path.is_dir() or shard_files(path) is not None:
        return None
    return tuple(p.name for p in image_files(path))


def validated(data: Dataset, name: str, first_row: int = 0, holes: bool = False) -> Dataset:
    """Check that the rows are non-empty and finite (or NaN, a hole, with ``holes``); return
    them as float64 (a float32 memory map is returned as it is). Rows are named counting from
    ``first_row`` (the index in its file of a chunk's first row)."""
    bad_values = np.isinf if holes else (lambda part: ~np.isfinite(part))
    values = data.values
    if values.size == 0:
        raise AevbError(f"{name} holds no data (shape {values.shape})")
    if is_lazy(values) and values.dtype in (np.float32, np.float64):
        # A float memory map stays one, in its own dtype (readers convert each chunk to
        # float64, exactly), and is checked a chunk at a time: nothing grows with the rows.
        bad_count, first = 0, None
        for start in range(0, len(values), CHUNK_ROWS):
            bad = bad_values(values[start : start + CHUNK_ROWS])
            if bad.any():
                bad_count += int(bad.sum())
                if first is None:
                    row, column = np.argwhere(bad)[0]
                    first = (start + row, column)
    else:
        values = np.asarray(values).astype(np.float64, copy=not is_lazy(values))
        bad = bad_values(values)
        bad_count = int(bad.sum())
        first = tuple(np.argwhere(bad)[0]) if bad_count else None
    if bad_count:
        row, column = first
        raise AevbError(
            f"{name} has {bad_count} NaN or infinite value(s), "
            f"the first at row {first_row + row}, column {column} (counting from 0)"
            + (
                "; for data with holes use a table (aevb.TabularVAE, or a .csv with empty cells)"
                if np.isnan(values[row, column]) else ""
            )
        )
    return dataclasses.replace(data, values=values)
