"""A folder of .npy shards read as one memory-mapped array of rows.

``aevb fit shards/`` (and ``score``, ``evaluate``, ``encode``) takes a folder
whose files are all ``.npy`` arrays of shape (rows, D), with the same D and
dtype, in name order, as the rows of the one file made by concatenating them.
:class:`Shards` keeps each shard memory-mapped and reads only the rows asked
for: row ranges (``rows[start:stop]``, across shard boundaries), single rows
and integer arrays of row indices, which is all that the streaming
(:mod:`aevb.streaming`), chunked-training (:mod:`aevb.chunked`) and statistics
code reads. :func:`is_lazy` tells such arrays (a memory map or shards) from
arrays in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AevbError, check_regular_file, unreadable


def is_lazy(values) -> bool:
    """Are ``values`` read from disk on demand (a memory map or :class:`Shards`), not held in memory?"""
    return isinstance(values, (np.memmap, Shards))


def shard_files(folder: Path) -> list[Path] | None:
    """The .npy files of ``folder`` in name order, or None when it holds none (a folder of
    images); a folder mixing .npy with other files is an AevbError naming one of them."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    arrays = [p for p in files if p.suffix.lower() == ".npy"]
    if not arrays:
        return None
    for path in arrays:
        check_regular_file(path)  # a FIFO named x.npy would block the reader forever
    other = next((p for p in files if p.suffix.lower() != ".npy"), None)
    if other is not None:
        raise AevbError(f"{folder} mixes .npy shards with other files ({other.name}); keep only the .npy shards there")
    return arrays


class Shards:
    """Read-only rows (n, D) of .npy ``files`` (each (n_i, D), one dtype), memory-mapped."""

    ndim = 2

    def __init__(self, files: list[Path]):
        self.files = list(files)
        self.parts = []
        for path in self.files:
            with unreadable(path, "a numeric .npy array"):
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            if array.dtype.kind not in "biuf" or array.ndim != 2:
                raise AevbError(
                    f"{path} is not a 2-D array of numbers (dtype {array.dtype}, shape {array.shape}); "
                    "each .npy shard must be (rows, features)"
                )
            first = self.parts[0] if self.parts else array
            if array.shape[1] != first.shape[1]:
                raise AevbError(f"{path} has {array.shape[1]} columns, but {self.files[0].name} has {first.shape[1]}")
            if array.dtype != first.dtype:
                raise AevbError(f"{path} holds {array.dtype}, but {self.files[0].name} holds {first.dtype}")
            self.parts.append(array)
        self.dtype = self.parts[0].dtype
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])  # row where each shard begins; the last is n
        self.shape = (int(self.starts[-1]), int(self.parts[0].shape[1]))
        if self.size == 0:
            raise AevbError(f"{self.files[0].parent} holds no data (shards of shape {self.shape})")

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Shards({len(self.files)} files, shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        whole = self[0 : len(self)]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # rows, then columns: a[rows, cols]
            rows, *rest = key
            return self[rows][(slice(None), *rest)] if not np.isscalar(rows) else self[rows][tuple(rest)]
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._range(start, max(start, stop))
        if isinstance(key, (int, np.integer)):
            index = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= index < len(self):
                raise IndexError(f"row {key} is out of range for {len(self)} rows")
            shard = int(np.searchsorted(self.starts, index, side="right")) - 1
            return np.asarray(self.parts[shard][index - self.starts[shard]])
        return self._take(np.asarray(key))

    def _range(self, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1, one array (read from each shard they span)."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces = []
        for shard in range(max(first, 0), len(self.parts)):
            begin = int(self.starts[shard])
            if begin >= stop:
                break
            pieces.append(self.parts[shard][max(start - begin, 0) : stop - begin])
        if len(pieces) == 1:
            return np.asarray(pieces[0])
        if not pieces:
            return np.empty((0, self.shape[1]), dtype=self.dtype)
        return np.concatenate(pieces)

    def _take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (a boolean mask or integer array), in that order."""
        if index.dtype == bool:
            index = np.flatnonzero(index)
        if index.dtype.kind not in "iu":
            raise IndexError(f"cannot index rows with {index.dtype} values")
        index = np.where(index < 0, index + len(self), index).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"row indices out of range for {len(self)} rows")
        flat = index.ravel()
        out = np.empty((len(flat), self.shape[1]), dtype=self.dtype)
        shard_of = np.searchsorted(self.starts, flat, side="right") - 1
        for shard in np.unique(shard_of):
            where = shard_of == shard
            out[where] = self.parts[shard][flat[where] - self.starts[shard]]
        return out.reshape(*index.shape, self.shape[1])
