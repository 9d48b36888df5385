"""Training on rows larger than memory: a memory-mapped array read a chunk at a time.

When the float32 copy of the training rows would exceed ``in_memory_mib``,
:meth:`aevb.VAE.fit` leaves a memory-mapped .npy where it is and trains from
:class:`ChunkedRows`. The file is cut into contiguous chunks of
:func:`chunk_rows` rows; each epoch visits the chunks in a permutation drawn
from the training generator, and the training rows of each chunk in a
permutation seeded by (seed, epoch, chunk). That is a *block shuffle*, not a
full shuffle: a batch holds rows of one chunk only (the last batch of a chunk
may be smaller), so rows far apart in the file never share a batch. Shuffle a
file whose rows are sorted (by class, by time) before training on it.

A checkpoint's ``position`` (training rows stepped on this epoch) with the
epoch's chunk order names the chunk and the offset in it, and the row
permutation inside a chunk is recomputed from its seed, so a resumed run
continues exactly. Validation rows are read chunk by chunk too.
"""

from __future__ import annotations

import numpy as np
import torch

# A chunk holds at most this many rows and, past the batch size, at most CHUNK_MIB of float32.
MAX_CHUNK_ROWS = 65536
CHUNK_MIB = 64


def chunk_rows(n_features: int, batch_size: int) -> int:
    """Rows per chunk for rows of ``n_features`` values and batches of ``batch_size``."""
    return max(batch_size, min(MAX_CHUNK_ROWS, CHUNK_MIB * 2**20 // (4 * n_features)))


def too_large(n_rows: int, n_features: int, in_memory_mib: float, bytes_per_value: int = 4) -> bool:
    """Would a copy of these rows (float32 unless told) exceed ``in_memory_mib``?"""
    return n_rows * n_features * bytes_per_value > in_memory_mib * 2**20


class ChunkedRows:
    """The rows of ``values`` (n, D) where ``selected`` (n,) is True, read ``size`` file rows at a time."""

    def __init__(
        self, values: np.ndarray, selected: np.ndarray, size: int, seed: int, dtype: torch.dtype = torch.float32
    ):
        self.values, self.selected, self.size, self.seed = values, selected, size, seed
        self.dtype = np.float64 if dtype == torch.float64 else np.float32
        self.n_chunks = -(-len(values) // size)
        self.counts = np.add.reduceat(selected, np.arange(0, len(values), size), dtype=np.int64)
        self._cached: tuple | None = None

    def __len__(self) -> int:
        return int(self.counts.sum())

    def chunk(self, index: int) -> torch.Tensor:
        """The selected rows of chunk ``index``, in file order, as float32 (float64 if told)."""
        start = index * self.size
        part = np.asarray(self.values[start : start + self.size])[self.selected[start : start + self.size]]
        return torch.from_numpy(part.astype(self.dtype))

    def chunks(self):
        """The selected rows of every chunk, in file order."""
        for index in range(self.n_chunks):
            if self.counts[index]:
                yield self.chunk(index)

    def shuffled_chunk(self, epoch: int, index: int) -> torch.Tensor:
        """Chunk ``index``'s rows in the permutation of epoch ``epoch`` (0-based)."""
        if self._cached is None or self._cached[:2] != (epoch, index):
            seed = int(np.random.SeedSequence([self.seed % 2**63, epoch, index]).generate_state(1)[0])
            rows = self.chunk(index)
            self._cached = (epoch, index, rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))])
        return self._cached[2]

    def batch(self, order: torch.Tensor, epoch: int, position: int, batch_size: int) -> torch.Tensor:
        """The next batch of epoch ``epoch`` after ``position`` rows, chunks visited in ``order``:
        up to ``batch_size`` rows, all from one chunk."""
        ends = np.cumsum(self.counts[order.numpy()])
        k = int(np.searchsorted(ends, position, side="right"))
        offset = position - (int(ends[k - 1]) if k else 0)
        return self.shuffled_chunk(epoch, int(order[k]))[offset : offset + batch_size]
