"""Command outputs are written whole or not at all: an earlier file survives a failed,
killed or out-of-space write, unwritten rows never read as log p = 0, and bad rows are
named by their index in the file."""

import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import call, save_small_level_model

from aevb.errors import AevbError
from aevb.scale import streaming
from aevb.store.atomic import write_output
from aevb.store.load import load


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def _blocks(n_blocks, fail_after=None):
    for i in range(n_blocks):
        if i == fail_after:
            raise KeyboardInterrupt  # what a kill in the middle looks like to the writer
        yield {"log_px": np.full(10, -1.0 - i), "elbo": np.full(10, -2.0 - i)}


@pytest.mark.parametrize("name", ["scores.npy", "scores.csv"])
def test_interrupted_scores_leave_the_earlier_file(tmp_path, name):
    out = tmp_path / name
    streaming.write_scores(_blocks(3), out, 30)
    before = out.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        streaming.write_scores(_blocks(3, fail_after=2), out, 30)
    assert out.read_bytes() == before
    assert _leftovers(tmp_path) == []
    if name.endswith(".npy"):
        assert np.load(out).shape == (30, 2) and (np.load(out) != 0).all()


def test_a_fresh_interrupted_score_leaves_no_file(tmp_path):
    out = tmp_path / "scores.npy"
    with pytest.raises(KeyboardInterrupt):
        streaming.write_scores(_blocks(3, fail_after=1), out, 30)
    assert not out.exists()  # a pre-sized file would hold 20 rows of zeros


def test_nan_is_named_by_its_row_in_the_file(tmp_path, monkeypatch):
    rows = save_small_level_model(tmp_path, seed=0)
    rows[250, 1] = np.nan
    np.save(tmp_path / "bad.npy", rows)
    out = tmp_path / "scores.npy"
    np.save(out, np.ones((3, 3)))
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 100)
    with pytest.raises(AevbError, match=r"row 250, column 1"):
        streaming.score_file(
            load(tmp_path / "run"), streaming.open_rows(tmp_path / "bad.npy"),
            "bad.npy", out, 2, 0, "posterior",
        )
    np.testing.assert_array_equal(np.load(out), np.ones((3, 3)))
    assert _leftovers(tmp_path) == []


def test_write_output_turns_os_errors_into_one_line(tmp_path):
    with pytest.raises(AevbError, match=r"^cannot write .*missing.*out\.csv: "):
        write_output(tmp_path / "missing" / "out.csv", lambda temp: None)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full file system answers write() with an error


def test_a_full_disk_is_one_line_and_keeps_the_earlier_scores(tmp_path):
    save_small_level_model(tmp_path, seed=0)
    big = np.random.default_rng(1).integers(0, 8, size=(3000, 4)).astype(np.float64)
    np.save(tmp_path / "big.npy", big)
    out = tmp_path / "scores.npy"
    np.save(out, np.ones((2, 2)))
    done = subprocess.run(
        [sys.executable, "-m", "aevb", "score", str(tmp_path / "run"), str(tmp_path / "big.npy"),
         "--out", str(out), "--k", "2"],
        capture_output=True, text=True, preexec_fn=_limit_file_size, env={**os.environ}, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("aevb: error: cannot write"), done.stderr
    np.testing.assert_array_equal(np.load(out), np.ones((2, 2)))
    assert _leftovers(tmp_path) == []


def test_encode_and_sample_replace_their_outputs_whole(tmp_path):
    save_small_level_model(tmp_path, seed=0)
    out = tmp_path / "drawn.csv"
    assert call(["sample", tmp_path / "run", "-n", "5", "--out", out]) == 0
    assert len(out.read_text().splitlines()) == 6  # a header row, then the rows
    assert call(["encode", tmp_path / "run", tmp_path / "rows.npy", "--out", tmp_path / "codes.npy"]) == 0
    assert np.load(tmp_path / "codes.npy").shape == (300, 2)
    assert _leftovers(tmp_path) == []
