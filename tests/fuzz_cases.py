"""Hostile cases of the loaders, preprocessing, seeds, sizes, odd files and output writes:
each runner takes plain parameters and returns "success" or "clean error" (an AevbError
of one line), and raises on anything else. tests/test_fuzz_findings.py draws the
parameters with hypothesis; benchmarks/fuzz.py draws 10,000+ of them and counts outcomes.
"""

from __future__ import annotations

import os
import signal
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from aevb.config import VAEConfig
from aevb.core.noise import check_seed
from aevb.data import loaders
from aevb.data.preprocess import Preprocessor
from aevb.errors import AevbError, AevbWarning
from aevb.scale import streaming
from aevb.vae import memory

HANG_SECONDS = 10


class Hang(Exception):
    pass


@contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Raise Hang if the block runs longer than ``seconds`` (a reader blocked on a FIFO)."""
    def alarm(signum, frame):
        raise Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def clean(run) -> str:
    """'success' or 'clean error' for run(); anything else propagates."""
    try:
        with no_hang():
            run()
    except AevbError as error:
        assert "\n" not in str(error), str(error)
        return "clean error"
    return "success"


def csv_case(values: np.ndarray, separator: str, bom: bool, header: bool) -> str:
    """A numeric CSV in any separator, with or without BOM and header, reads back exactly."""
    lines = [separator.join(f"c{j}" for j in range(values.shape[1]))] if header else []
    lines += [separator.join(repr(float(v)) for v in row) for row in values]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.csv"
        path.write_bytes(("\ufeff" if bom else "").encode() + "\n".join(lines).encode() + b"\n")
        read = loaders.load(path).values
    np.testing.assert_array_equal(read, values)
    return "success"


def precision_case(offset: float, spread: float, n: int, seed: int) -> str:
    """Standardizing rows of ``offset + spread * N(0, 1)`` keeps float64 precision."""
    x = offset + spread * np.random.default_rng(seed).standard_normal((n, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AevbWarning)  # offsets past float64's resolution are constant
        pre = Preprocessor.fit(x, "gaussian")
    y = pre.to_model(torch.as_tensor(x, dtype=pre.row_dtype)).float().double().numpy()
    std = x.std(0)
    if (std <= 1e-12 * np.abs(x.mean(0))).any() or n < 2:
        return "success"  # a constant column: nothing to standardize
    np.testing.assert_allclose(y, (x - x.mean(0)) / std, atol=1e-4)
    return "success"


def seed_case(seed) -> str:
    return clean(lambda: check_seed(seed))


def size_case(options: dict, n_features: int) -> str:
    """Any size options: the estimate answers (refusing or not) without allocating."""
    def run():
        config = VAEConfig(**options)
        memory.check_fits(config, n_features)
    return clean(run)


def odd_file_case(kind: str, suffix: str) -> str:
    """Data given as a FIFO, folder, dangling or looping link, or an empty file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder":
            path.mkdir()
        elif kind == "dangling":
            path.symlink_to(Path(folder) / "nowhere")
        elif kind == "loop":
            path.symlink_to(Path(folder) / f"y{suffix}")
            (Path(folder) / f"y{suffix}").symlink_to(path)
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "fifo_in_folder":
            path.mkdir()
            os.mkfifo(path / "a.png")
        return clean(lambda: loaders.load(path))


def output_case(suffix: str, n_blocks: int, fail_at: int | None) -> str:
    """An interrupted score write leaves the earlier output whole."""
    def blocks():
        for i in range(n_blocks):
            if i == fail_at:
                raise AevbError("bad rows")
            yield {"log_likelihood": np.full(3, -1.0 - i)}

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / f"s{suffix}"
        out.write_bytes(b"earlier")
        outcome = clean(lambda: streaming.write_scores(blocks(), out, 3 * n_blocks))
        if outcome == "clean error":
            assert out.read_bytes() == b"earlier"
        assert not [p for p in Path(folder).iterdir() if ".partial" in p.name]
    return outcome


def written_rows_case(values: np.ndarray, whole: tuple[bool, ...], header: bool) -> str:
    """A numeric CSV whose ``whole`` columns are written as integers: rows written back
    (:func:`streaming.write_blocks`, as ``aevb sample`` writes them) carry its header and
    read back as the rows with those columns rounded (a column past 2^63 stays float)."""
    cells = [[str(int(np.rint(v))) if w and abs(v) < 2.0**63 else repr(float(v)) for v, w in zip(row, whole)]
             for row in values]
    names = [f"c{j}" for j in range(values.shape[1])]
    with tempfile.TemporaryDirectory() as folder:
        source, out = Path(folder) / "x.csv", Path(folder) / "s.csv"
        source.write_text("\n".join(([",".join(names)] if header else []) + [",".join(row) for row in cells]) + "\n")
        data = loaders.load(source)
        columns = data.column_format
        assert columns.names == tuple(names if header else [f"x{j}" for j in range(values.shape[1])])
        assert all(columns.whole[j] or not whole[j] or abs(values[:, j]).max() >= 2.0**63 for j in range(len(whole)))
        streaming.write_blocks(iter([(list(columns.names), data.values)]), out, len(values), columns=columns)
        lines = out.read_text().splitlines()
        assert lines[0].split(",") == list(columns.names)
        np.testing.assert_array_equal(loaders.load(out).values, data.values)
        for line in lines[1:]:
            for cell, is_whole in zip(line.split(","), columns.whole):
                assert ("." not in cell and "e" not in cell) or not is_whole, line
    return "success"
