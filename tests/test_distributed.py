"""Data-parallel training under torchrun (2 CPU processes, gloo on localhost).

- Equivalence: two ranks (DistributedDataParallel over gloo) with global batch B end
  with the weights of one process with batch B over the same data, to float rounding:
  DDP averages per-block gradients where one process sums the whole batch at once,
  which reorders float32 additions. Stated tolerance: 1e-5 on every weight after
  3 epochs (observed up to ~1e-7).
- A rank killed with SIGKILL takes the job down, non-zero, within a bounded time,
  and the last checkpoint resumes at the same world size to the weights of the run
  never interrupted, bit for bit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from aevb.scale.distributed import SINGLE, Group, RankFailed

# Level data (dequantization noise) of 180 training rows, and a KL warm-up.
FIT = ["--hidden", "16", "--latent-dim", "2", "--kl-warmup", "2", "--quiet", "--device", "cpu"]
BATCH = ["--batch-size", "25"]
WEIGHT_TOLERANCE = 1e-5
# A dead rank must end the job within this many seconds (torchrun notices an exited
# worker within a second; the gloo timeout bounds the worst case).
FAILURE_DEADLINE = 60
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def torchrun(*args, nproc: int = 2, **kwargs) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "aevb", *map(str, args)]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def one_process(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aevb", *map(str, args)], env=ENV, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def levels(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("distributed") / "levels.npy"
    rng = np.random.default_rng(3)
    z = rng.normal(size=(200, 1))
    np.save(path, np.clip(np.round(4 + 3 * z @ rng.normal(size=(1, 5)) + rng.normal(size=(200, 5))), 0, 15))
    return path


def max_weight_difference(a: Path, b: Path) -> float:
    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert left.keys() == right.keys()
    return max(float((left[name] - right[name]).abs().max()) for name in left)


# 25: the last global batch, 5 rows, splits 2 + 3. 179: every batch of 179 splits 89 + 90
# and the last, 1 row, leaves rank 0 with nothing to compute.
@pytest.mark.parametrize("batch", [25, 179])
def test_two_ranks_reach_the_weights_of_one_process(levels, tmp_path, batch):
    single = one_process("fit", levels, "--out", tmp_path / "one", "--epochs", 3, *FIT, "--batch-size", batch)
    assert single.returncode == 0, single.stderr
    job = torchrun("fit", levels, "--out", tmp_path / "two", "--epochs", 3, *FIT, "--batch-size", batch)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    difference = max_weight_difference(tmp_path / "one", tmp_path / "two")
    assert difference < WEIGHT_TOLERANCE
    # Not trivially equal: a different global batch gives different weights.
    other = one_process("fit", levels, "--out", tmp_path / "other", "--epochs", 3, *FIT, "--batch-size", batch - 1)
    assert other.returncode == 0, other.stderr
    assert max_weight_difference(tmp_path / "one", tmp_path / "other") > 100 * WEIGHT_TOLERANCE
    one_metrics = (tmp_path / "one" / "metrics.csv").read_text().splitlines()
    two_metrics = (tmp_path / "two" / "metrics.csv").read_text().splitlines()
    assert len(one_metrics) == len(two_metrics) == 4
    for a, b in zip(one_metrics[1:], two_metrics[1:]):
        values_a, values_b = np.array(a.split(","), float), np.array(b.split(","), float)
        np.testing.assert_allclose(np.delete(values_a, 1), np.delete(values_b, 1), rtol=1e-5)
    assert not (tmp_path / "two" / ".aevb-write-check").exists()


def workers(parent: int) -> dict[int, int]:
    """LOCAL_RANK -> pid of the aevb processes under ``parent``."""
    found = {}
    pending = [parent]
    while pending:
        pid = pending.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            pending.append(child)
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            for entry in environ:
                if entry.startswith(b"LOCAL_RANK="):
                    found[int(entry.split(b"=")[1])] = child
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc")
def test_a_killed_rank_ends_the_job_and_the_checkpoint_resumes(levels, tmp_path):
    run, epochs = tmp_path / "run", 40
    args = ["--epochs", epochs, "--patience", 100, "--checkpoint-every", 0.05, *FIT, *BATCH]
    job = torchrun("fit", levels, "--out", run, *args)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        metrics = run / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.02)
    ranks = workers(job.pid)
    assert job.poll() is None and 1 in ranks, "the job ended before a rank could be killed"
    os.kill(ranks[1], signal.SIGKILL)
    killed = time.monotonic()
    _, err = job.communicate(timeout=FAILURE_DEADLINE)
    took = time.monotonic() - killed
    assert job.returncode != 0
    assert took < FAILURE_DEADLINE
    assert "SIGKILL" in err or "Signal 9" in err, err[-2000:]
    assert not (run / "model.safetensors").exists() or len((run / "metrics.csv").read_text().splitlines()) <= epochs
    resumed = torchrun("fit", levels, "--resume", run, *args)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    whole = torchrun("fit", levels, "--out", tmp_path / "whole", *args)
    _, err = whole.communicate(timeout=120)
    assert whole.returncode == 0, err
    assert max_weight_difference(run, tmp_path / "whole") == 0.0


def test_two_ranks_on_the_chunked_path_reach_the_weights_of_one_process(levels, tmp_path):
    """Reading the memory map in shuffled chunks (forced by a tiny --in-memory-mib), every rank
    reads the same chunks in the same order."""
    chunked = ["--epochs", 2, *FIT, *BATCH, "--in-memory-mib", 0.0001]
    single = one_process("fit", levels, "--out", tmp_path / "one", *chunked)
    assert single.returncode == 0, single.stderr
    job = torchrun("fit", levels, "--out", tmp_path / "two", *chunked)
    _, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    assert max_weight_difference(tmp_path / "one", tmp_path / "two") < WEIGHT_TOLERANCE
    in_memory = one_process("fit", levels, "--out", tmp_path / "memory", "--epochs", 2, *FIT, *BATCH)
    assert in_memory.returncode == 0, in_memory.stderr
    assert max_weight_difference(tmp_path / "one", tmp_path / "memory") > 100 * WEIGHT_TOLERANCE  # another order


def test_a_one_process_checkpoint_resumes_on_two_ranks(levels, tmp_path):
    """The steps do not depend on the number of ranks, so neither does --resume."""
    args = [*FIT, *BATCH, "--patience", 100]
    first = one_process("fit", levels, "--out", tmp_path / "run", "--epochs", 2, *args)
    assert first.returncode == 0, first.stderr
    resumed = torchrun("fit", levels, "--resume", tmp_path / "run", "--epochs", 4, *args)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    whole = one_process("fit", levels, "--out", tmp_path / "whole", "--epochs", 4, *args)
    assert whole.returncode == 0, whole.stderr
    assert max_weight_difference(tmp_path / "run", tmp_path / "whole") < WEIGHT_TOLERANCE


def test_a_failed_collective_becomes_one_clear_error():
    """What a rank says when its peer dies mid-step (gloo raises) or stops answering (timeout)."""
    group = Group(rank=1, world_size=2)
    with pytest.raises(RankFailed, match=r"^rank 1 of 2 lost contact .*Connection closed by peer\); .*--resume$"):
        with group.collective():
            raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer\n(more)")
    with pytest.raises(RuntimeError, match="not a collective"), SINGLE.collective():
        raise RuntimeError("not a collective")  # a group of one passes errors through


def _running(job: subprocess.Popen, run: Path, lines: int = 3) -> bool:
    """Wait until the job's metrics.csv has ``lines`` lines; is the job still running then?"""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and job.poll() is None:
        metrics = run / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= lines:
            break
        time.sleep(0.02)
    return job.poll() is None


def _stop(job: subprocess.Popen) -> None:
    if job.poll() is None:
        job.send_signal(signal.SIGINT)
        try:
            job.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            job.kill()
            job.communicate()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the ranks through /proc")
def test_a_killed_rank_leaves_its_peer_one_line_not_a_gloo_traceback(levels, tmp_path):
    """The VAE's prior has buffers, which DDP broadcasts before each forward: a peer dying
    there (or in the backward's all-reduce) is the one-line RankFailed, whatever the step."""
    run = tmp_path / "run"
    job = torchrun("fit", levels, "--out", run, "--epochs", 400, "--patience", 400, *FIT, *BATCH)
    try:
        assert _running(job, run), "the job ended before a rank could be killed"
        os.kill(workers(job.pid)[1], signal.SIGKILL)
        _, err = job.communicate(timeout=FAILURE_DEADLINE)
    finally:
        _stop(job)
    assert job.returncode != 0
    # torchrun prints a traceback of its own (ChildFailedError); no frame of a worker's code may show
    assert "torch/nn/parallel/distributed.py" not in err and "/aevb/" not in err, err[-3000:]
    assert "aevb: error: rank 0 of 2 lost contact with another rank" in err or "exitcode  : -15" in err, err[-3000:]


def test_a_second_job_on_a_running_folder_is_refused_in_one_line(levels, tmp_path):
    """Rank 0 holds the run folder's lock; a second torchrun fit --out on it is refused, naming
    the holder, while the first runs, and the first finishes unharmed."""
    run = tmp_path / "run"
    first = torchrun("fit", levels, "--out", run, "--epochs", 400, "--patience", 400, *FIT, *BATCH)
    try:
        assert _running(first, run), "the first job ended too soon"
        holder = (run / ".aevb.lock").read_text()
        second = torchrun("fit", levels, "--out", run, "--epochs", 2, *FIT, *BATCH)
        _, err = second.communicate(timeout=120)
        assert second.returncode != 0
        refusals = [line for line in err.splitlines() if "aevb: error:" in line]
        assert refusals and all("in use by another aevb process" in line for line in refusals), err[-3000:]
        assert holder.strip() in refusals[0]
        assert first.poll() is None  # untouched
    finally:
        _stop(first)
    assert (run / "model.safetensors").exists()  # the first saved its best model on the interrupt
