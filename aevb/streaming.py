"""Scoring any number of rows in bounded memory.

A ``.npy`` file is opened memory-mapped and read ``CHUNK_ROWS`` rows at a time;
each chunk is checked, scored and written before the next is read, so memory
does not grow with the number of rows. Chunk ``i`` draws its random numbers
from ``seed + i * SEED_STRIDE``: the first chunk (all rows of a file of up to
``CHUNK_ROWS`` rows) gets exactly the numbers of the in-memory
``row_scores(X, seed=seed)``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from .data import Dataset, _unreadable, validated
from .errors import AevbError

CHUNK_ROWS = 16384
SEED_STRIDE = 1_000_003


def open_rows(path: Path) -> np.ndarray:
    """The rows of a .npy file, memory-mapped (nothing is read yet), as (n, D)."""
    with _unreadable(path, "a numeric .npy array"):
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype.kind not in "biuf" or array.size == 0 or array.ndim not in (1, 2, 3, 4):
        raise AevbError(f"{path} holds no rows of numbers (dtype {array.dtype}, shape {array.shape})")
    return array.reshape(len(array), -1)


def chunks(rows: np.ndarray, name: str) -> Iterator[np.ndarray]:
    """Checked float64 chunks of ``CHUNK_ROWS`` rows of ``rows``."""
    for start in range(0, len(rows), CHUNK_ROWS):
        part = np.asarray(rows[start : start + CHUNK_ROWS])
        yield validated(Dataset(part), f"{name} (rows {start} to {start + len(part) - 1})").values


def scored_chunks(model, rows: np.ndarray, name: str, k: int, seed: int, proposal: str) -> Iterator[dict]:
    """``model.row_scores`` of each chunk of ``rows``, chunk by chunk."""
    for index, part in enumerate(chunks(rows, name)):
        yield model.row_scores(part, k=k, seed=seed + index * SEED_STRIDE, proposal=proposal)


def write_scores(parts: Iterator[dict], path: Path, n_rows: int) -> None:
    """Write the per-row score columns of each chunk as it comes, to .csv or .npy."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy"):
        raise AevbError(f"cannot write {path}: use a .npy or .csv file name")
    try:
        if suffix == ".csv":
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                for index, columns in enumerate(parts):
                    if index == 0:
                        writer.writerow(list(columns))
                    writer.writerows(np.column_stack(list(columns.values())).tolist())
            return
        out, start = None, 0
        for columns in parts:
            block = np.column_stack(list(columns.values()))
            if out is None:
                out = np.lib.format.open_memmap(path, mode="w+", dtype=block.dtype, shape=(n_rows, block.shape[1]))
            out[start : start + len(block)] = block
            start += len(block)
        out.flush()
    except OSError as error:
        raise AevbError(f"cannot write {path}: {error.strerror or error}") from None
