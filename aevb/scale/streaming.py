"""Scoring, evaluating, encoding and sampling any number of rows in bounded memory, on one
process or several.

A ``.npy`` file (or a folder of .npy shards, :mod:`aevb.shards`) is opened
memory-mapped and read ``CHUNK_ROWS`` rows at a time; each chunk is checked,
scored or encoded and written (or summarised, for ``evaluate``) before the next is
read, so memory does not grow with the number of rows. ``sample`` draws and writes
``CHUNK_ROWS`` rows at a time the same way.

The seed rule: chunk ``i`` (rows ``i * CHUNK_ROWS`` onwards) draws its random
numbers from ``chunk_seed(seed, i) = seed + i * SEED_STRIDE``, whoever computes
it. So the first chunk (all rows of a file of up to ``CHUNK_ROWS`` rows) gets
exactly the numbers of the in-memory ``row_scores(X, seed=seed)``, and the
results do not depend on the number of processes. Under ``torchrun`` each rank
takes a contiguous block of chunks (:func:`my_chunks`); for ``score``, rank 0
writes its block, then receives and writes the others' in order (they spool
theirs to a temporary file meanwhile); for ``evaluate``, the chunks'
statistics are all-reduced and combined in chunk order on every rank.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist

from ..core import forecast, progress
from ..core.evaluation import width
from ..core.noise import SEED_STRIDE
from ..data.chunks import CHUNK_ROWS
from ..data.columns import ColumnFormat
from ..data.shards import Shards, shard_files
from ..errors import AevbError, unreadable
from ..store.atomic import write_output
from ..tables.io import write_table_chunks
from ..vae.memory import check_disk
from .distributed import SINGLE, Group


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index``'s random numbers."""
    return seed + index * SEED_STRIDE


def readable_lazily(path: Path) -> bool:
    """Is ``path`` a .npy file or a folder of .npy shards (read by :func:`open_rows`)?"""
    if path.is_dir():
        return shard_files(path) is not None
    return path.suffix.lower() == ".npy" and path.is_file()


def open_rows(path: Path) -> np.ndarray | Shards:
    """The rows of a .npy file or folder of .npy shards, memory-mapped (nothing is read yet), as (n, D)."""
    if path.is_dir():
        return Shards(shard_files(path) or [])
    with unreadable(path, "a numeric .npy array"):
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.dtype.kind not in "biuf" or array.size == 0 or array.ndim not in (1, 2, 3, 4):
        raise AevbError(f"{path} holds no rows of numbers (dtype {array.dtype}, shape {array.shape})")
    return array.reshape(len(array), -1)


def n_chunks(n_rows: int) -> int:
    return -(-n_rows // CHUNK_ROWS)


def my_chunks(n_rows: int, group: Group = SINGLE) -> range:
    """The indices of this rank's contiguous block of chunks (rank 0's is never empty)."""
    count = n_chunks(n_rows)
    start, stop = (-(-count * r // group.world_size) for r in (group.rank, group.rank + 1))
    return range(start, stop)


def chunk_rows(n_rows: int, index: int) -> int:
    return min(CHUNK_ROWS, n_rows - index * CHUNK_ROWS)


def chunks(model, rows: np.ndarray, name: str, indices: range | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """(index, rows checked once by ``model.checked_rows``) of the chunks ``indices`` (all by
    default) of ``rows``."""
    for index in range(n_chunks(len(rows))) if indices is None else indices:
        start = index * CHUNK_ROWS
        part = rows[start : start + CHUNK_ROWS]
        yield index, model.checked_rows(part, f"{name} (rows {start} to {start + len(part) - 1})", first_row=start)


def scored_chunks(model, rows: np.ndarray, name: str, k: int, seed: int, proposal: str,
                  group: Group = SINGLE) -> Iterator[dict]:
    """``model.row_scores`` of each chunk of this rank's block of ``rows``, chunk by chunk."""
    for index, part in chunks(model, rows, name, my_chunks(len(rows), group)):
        yield model.scores(part, k, chunk_seed(seed, index), proposal)


# Rows x draws below which scoring is not timed; the rows and draws of the piece that is.
PROBE_WORK = 10**6
PROBE_ROWS, PROBE_DRAWS = 16, 64


def forecast_scoring(model, rows: np.ndarray, name: str, k: int, seed: int, proposal: str,
                     group: Group = SINGLE, option: str = "--k") -> None:
    """Warn (:mod:`aevb.core.forecast`) when scoring ``rows`` with ``k`` draws each would take
    hours: time ``model.scores`` of ``PROBE_ROWS`` rows with ``PROBE_DRAWS`` draws and scale by
    rows x draws (shared among the ranks)."""
    if len(rows) * k <= PROBE_WORK:
        return
    m, draws = min(len(rows), PROBE_ROWS), min(k, PROBE_DRAWS)
    part = model.checked_rows(rows[:m], name)
    with progress.showing(False):
        seconds = forecast.timed(lambda: model.scores(part, draws, seed, proposal))
    if group.is_main:
        forecast.warn_if_long(
            seconds * (len(rows) / m) * (k / draws) / group.world_size, f"scoring {len(rows)} rows",
            f"{draws} draws for each of {m} rows took {seconds:.3g} s", f"lower {option} (now {k})",
        )


def evaluate_rows(model, rows: np.ndarray, name: str, k: int, seed: int, proposal: str,
                  group: Group = SINGLE) -> dict:
    """``model.evaluate`` of ``rows``, chunk by chunk, the chunks shared out among the ranks."""
    table = torch.zeros(n_chunks(len(rows)), width(model.model_.latent_dim), dtype=torch.float64)
    with _bar(rows, group, "evaluating"):
        for index, part in chunks(model, rows, name, my_chunks(len(rows), group)):
            table[index] = torch.from_numpy(model.chunk_statistics(part, k, chunk_seed(seed, index), proposal))
    group.all_reduce(table)  # each row is non-zero on one rank only: the sum is exact
    return model.evaluation_figures(table.numpy(), k, proposal)


def score_file(model, rows: np.ndarray, name: str, out: Path, k: int, seed: int, proposal: str,
               group: Group = SINGLE, row_names: tuple[str, ...] | None = None) -> Path | None:
    """Score ``rows`` and write the per-row columns to ``out`` (rank 0 writes all of them);
    returns the file of ``row_names`` beside a .npy (:func:`write_blocks`)."""
    parts = scored_chunks(model, rows, name, k, seed, proposal, group)
    with _bar(rows, group, "scoring"):
        if group.is_main:
            return write_scores(_with_the_other_ranks(parts, len(rows), group), out, len(rows), row_names)
        _send_to_main(parts, group)
    return None


def encode_file(model, rows: np.ndarray, name: str, out: Path, row_names: tuple[str, ...] | None = None) -> Path | None:
    """Write the latent means of ``rows`` (:meth:`codes`) to ``out``, a chunk at a time."""
    def blocks():
        with progress.rows(len(rows), "encoding") as bar:
            for _, part in chunks(model, rows, name):
                codes = model.codes(part)
                bar.update(len(codes))
                yield [f"z{i}" for i in range(codes.shape[1])], codes

    return write_blocks(blocks(), out, len(rows), row_names=row_names)


def sample_file(model, n: int, out: Path, seed: int, mean: bool, **options) -> None:
    """Write ``model.sample(n, seed, mean, **options)`` to ``out`` a chunk at a time
    (:meth:`sample_chunks`): a .npy/.csv of rows, with the training file's header and
    whole-number columns, or for a table model a .csv/.parquet table."""
    def parts():
        with progress.rows(n, "sampling") as bar:
            for part in model.sample_chunks(n, seed=seed, mean=mean, **options):
                bar.update(len(part))
                yield part

    width = len(model.schema_.columns) if hasattr(model, "schema_") else model.n_features_in_
    check_disk(out, 8 * n * width, f"sampling {n} rows")  # at least 8 bytes a value, in any format
    if hasattr(model, "schema_"):
        write_table_chunks(parts(), out)
        return
    write_model_rows(model, parts(), out, n)


def write_model_rows(model, parts: Iterator[np.ndarray], path: Path, n_rows: int) -> None:
    """Write arrays of rows in a model's units (:func:`write_blocks`): a .csv with the training
    data's header and its whole-number columns as integers (``model.columns_``), or a .npy."""
    columns = getattr(model, "columns_", None) or ColumnFormat.plain(model.n_features_in_)
    write_blocks(((list(columns.names), part) for part in parts), path, n_rows, columns=columns)


def _bar(rows: np.ndarray, group: Group, desc: str):
    """One progress bar over this rank's rows (shown on rank 0 only), which each chunk's
    importance sampling advances."""
    mine = sum(chunk_rows(len(rows), index) for index in my_chunks(len(rows), group))
    return progress.rows(mine, desc, show=None if group.is_main else False)


def _send_to_main(parts: Iterator[dict], group: Group) -> None:
    """Spool this rank's blocks to a temporary file while computing, then send them to rank 0."""
    with tempfile.TemporaryFile() as spool:
        shapes = []
        for columns in parts:
            block = np.column_stack(list(columns.values()))
            shapes.append(block.shape)
            spool.write(np.ascontiguousarray(block, dtype=np.float64).tobytes())
        spool.seek(0)
        for shape in shapes:
            block = np.fromfile(spool, dtype=np.float64, count=shape[0] * shape[1]).reshape(shape)
            with group.collective():
                dist.send(torch.from_numpy(block), 0)


def _with_the_other_ranks(parts: Iterator[dict], n_rows: int, group: Group) -> Iterator[dict]:
    """Rank 0's own blocks, then those of ranks 1, 2, ... as they arrive, in row order."""
    names = None
    for columns in parts:
        names = list(columns)
        yield columns
    for rank in range(1, group.world_size):
        for index in my_chunks(n_rows, Group(rank, group.world_size)):
            block = torch.empty(chunk_rows(n_rows, index), len(names), dtype=torch.float64)
            with group.collective():
                dist.recv(block, rank)
            yield dict(zip(names, block.numpy().T))


def write_scores(parts: Iterator[dict], path: Path, n_rows: int, row_names: tuple[str, ...] | None = None) -> Path | None:
    """Write the per-row score columns of each chunk as it comes (:func:`write_blocks`)."""
    blocks = ((list(columns), np.column_stack(list(columns.values()))) for columns in parts)
    return write_blocks(blocks, path, n_rows, row_names=row_names)


def write_blocks(blocks: Iterator[tuple[list[str], np.ndarray]], path: Path, n_rows: int,
                 columns: ColumnFormat | None = None, row_names: tuple[str, ...] | None = None) -> Path | None:
    """Write blocks of rows (names of the columns, rows (b, C)) as they come, to .csv (a header
    row, then the rows; ``columns`` says which to write as integers) or .npy, through a
    temporary file renamed over ``path`` when all ``n_rows`` rows are in (:func:`write_output`).

    With ``row_names`` (the image file of each row), a .csv starts each row with it in a
    column ``file``; a .npy gets them one a line in the file beside it that this returns
    (``scores.npy``: ``scores.names.txt``).

    The .npy is written sequentially, never through a memory map of a pre-sized file: a
    full disk is then an error on write(), not a SIGBUS, and no unwritten row reads 0."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".npy"):
        raise AevbError(f"cannot write {path}: use a .npy or .csv file name")
    write_output(path, lambda temp: _write_blocks(blocks, Path(temp), n_rows, suffix, columns, row_names))
    if row_names is None or suffix != ".npy":
        return None
    names_path = path.with_suffix(NAMES_SUFFIX)
    write_output(names_path, lambda temp: Path(temp).write_text("".join(f"{n}\n" for n in row_names)))
    return names_path


NAMES_SUFFIX = ".names.txt"


def _write_blocks(blocks: Iterator[tuple[list[str], np.ndarray]], path: Path, n_rows: int, suffix: str,
                  columns: ColumnFormat | None, row_names: tuple[str, ...] | None) -> None:
    written = 0
    with open(path, "w" if suffix == ".csv" else "wb", **({"newline": ""} if suffix == ".csv" else {})) as handle:
        writer = csv.writer(handle) if suffix == ".csv" else None
        for names, block in blocks:
            if writer is not None:
                layout = columns or ColumnFormat(tuple(names), (False,) * len(names))
                cells = layout.cells(block)
                if row_names is not None:
                    cells = [[name, *row] for name, row in zip(row_names[written : written + len(block)], cells)]
                if written == 0:
                    writer.writerow((["file"] if row_names is not None else []) + list(layout.names))
                writer.writerows(cells)
            else:
                if written == 0:
                    header = {"descr": np.lib.format.dtype_to_descr(block.dtype), "fortran_order": False,
                              "shape": (n_rows, block.shape[1])}
                    np.lib.format.write_array_header_1_0(handle, header)
                handle.write(np.ascontiguousarray(block).tobytes())
            written += len(block)
    if written != n_rows:
        raise AevbError(f"cannot write {path}: got {written} rows of {n_rows}")
