"""Crash safety: a run killed at random moments and resumed ends with the same weights,
bit for bit, as the run left alone; Ctrl-C leaves a resumable checkpoint.

These start real ``aevb`` processes (a SIGKILL cannot be simulated in-process).
Kill times are drawn from a seeded generator, so a failure replays; the log of
each trial is in the assertion message.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import aevb
from aevb.train import checkpoint
from aevb.train.checkpoint import CHECKPOINT_FILE

KILLS = 5
KILL_SEED = 20240611
# Level data (0..15) so that dequantization noise is drawn too; small batches so
# that an epoch has many steps and a time-based checkpoint lands mid-epoch.
# A KL warm-up and an annealed learning rate, so that both schedules have to resume at the right point.
FIT = ["--epochs", "12", "--patience", "100", "--hidden", "16", "--latent-dim", "2", "--kl-warmup", "5",
       "--learning-rate-schedule", "cosine",
       "--batch-size", "8", "--checkpoint-every", "0.05", "--quiet"]
# One thread: the same arithmetic in every process, and a light load on CI.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def aevb_process(*args) -> subprocess.Popen:
    code = "import sys; from aevb.cli import main; main(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def checkpoint_id(run: Path):
    """Changes whenever the checkpoint is replaced (a rename gives a new inode)."""
    try:
        stat = (run / CHECKPOINT_FILE).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def wait_for_new_checkpoint(process: subprocess.Popen, run: Path, before, timeout: float = 60) -> bool:
    """Wait until ``process`` has (re)written the checkpoint, i.e. training has begun."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint_id(run) not in (None, before):
            return True
        time.sleep(0.005)
    return False


def metrics_without_time(run: Path) -> list[list[str]]:
    with open(run / "metrics.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    seconds = rows[0].index("seconds")
    return [row[:seconds] + row[seconds + 1:] for row in rows]


def assert_same_weights(a: Path, b: Path) -> None:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].dtype == right[name].dtype
        # Compare bytes: float equality would call -0.0 and 0.0 the same.
        assert left[name].flatten().view(torch.uint8).equal(right[name].flatten().view(torch.uint8)), name


@pytest.fixture(scope="module")
def data_and_reference(tmp_path_factory):
    """Level data and the uninterrupted run: (data path, run folder, its training seconds)."""
    folder = tmp_path_factory.mktemp("resume")
    data = folder / "levels.npy"
    np.save(data, np.random.default_rng(0).integers(0, 16, size=(400, 8)).astype(np.float64))
    reference = folder / "reference"
    code, err = finish(aevb_process("fit", data, "--out", reference, *FIT))
    assert code == 0, err
    with open(reference / "metrics.csv", newline="") as handle:
        seconds = float(list(csv.DictReader(handle))[-1]["seconds"])
    return data, reference, seconds


def test_sigkill_at_random_moments_then_resume_gives_identical_weights(data_and_reference, tmp_path):
    data, reference, seconds = data_and_reference
    rng = random.Random(KILL_SEED)
    # Kill when the run has trained for these many seconds, spread over the whole run.
    targets = sorted(rng.uniform(0, 0.9 * seconds) for _ in range(KILLS))
    run = tmp_path / "killed"
    log = []
    process = aevb_process("fit", data, "--out", run, *FIT)
    kills, before = 0, None
    for target in targets:
        if not wait_for_new_checkpoint(process, run, before):
            log.append("finished before the kill")
            break
        trained = checkpoint.read(run)[0]["progress"]["seconds"]
        time.sleep(max(0.0, target - trained))
        if process.poll() is not None:
            log.append("finished before the kill")
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        before = checkpoint_id(run)
        log.append(f"kill {kills} at {target:.3f}s of training")
        process = aevb_process("fit", data, "--resume", run, *FIT)
    code, err = finish(process)
    assert code == 0, f"{log}: {err}"
    assert kills == KILLS, log
    assert not list(run.glob(".*.tmp")), "a killed writer's temporary file was not cleaned up"
    assert_same_weights(run, reference)
    assert metrics_without_time(run) == metrics_without_time(reference)
    print(f"kill/resume trials: {kills} ({'; '.join(log)})")


def test_sigint_saves_a_resumable_checkpoint(data_and_reference, tmp_path):
    data, reference, _ = data_and_reference
    run = tmp_path / "interrupted"
    process = aevb_process("fit", data, "--out", run, *FIT)
    assert wait_for_new_checkpoint(process, run, None)
    # The second checkpoint is written during training: interrupt right then.
    assert wait_for_new_checkpoint(process, run, checkpoint_id(run))
    process.send_signal(signal.SIGINT)
    code, err = finish(process)
    assert code == 128 + signal.SIGINT, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "SIGINT" in lines[0] and f"--resume {run}" in lines[0], err
    aevb.load(run).sample(2)  # the best model so far was saved and loads
    code, err = finish(aevb_process("fit", data, "--resume", run, *FIT))
    assert code == 0, err
    assert_same_weights(run, reference)
