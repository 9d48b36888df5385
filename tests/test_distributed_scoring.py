"""`aevb score` and `aevb evaluate` under torchrun (2 gloo ranks) give one process's numbers.

Chunk i draws from seed + i * SEED_STRIDE whoever computes it, rank 0 writes the
scores in row order, and the chunks' statistics are combined in chunk order, so the
results equal one process's exactly, not merely to rounding. Chunks of 64 rows
(300 rows: 5 chunks, split 3 + 2) make the split show at test size.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import save_small_level_model
from test_distributed import ENV

import aevb

RUN = "import sys\nfrom aevb.scale import streaming\nstreaming.CHUNK_ROWS = 64\nfrom aevb.cli import main\nmain(sys.argv[1:])\n"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed_scoring")
    save_small_level_model(folder, seed=1)
    (folder / "run.py").write_text(RUN)
    return folder


def aevb_run(folder, *args, nproc: int) -> None:
    launcher = [sys.executable] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    done = subprocess.run([*launcher, str(folder / "run.py"), *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_two_ranks_write_the_scores_of_one_process(fitted, suffix):
    for nproc in (1, 2):
        aevb_run(fitted, "score", fitted / "run", fitted / "rows.npy", "--out", fitted / f"s{nproc}{suffix}",
                 "--k", 5, "--seed", 4, nproc=nproc)
    if suffix == ".npy":
        one, two = np.load(fitted / f"s1{suffix}"), np.load(fitted / f"s2{suffix}")
    else:
        one, two = ((fitted / f"s{n}{suffix}").read_text() for n in (1, 2))
        assert one.count("\n") == 301
    assert np.all(one == two)
    if suffix == ".npy":
        assert one.shape == (300, 6) and len(np.unique(one[:, 0])) == 300


def test_two_ranks_evaluate_to_the_figures_of_one_process(fitted):
    for nproc in (1, 2):
        aevb_run(fitted, "evaluate", fitted / "run", fitted / "rows.npy", "--k", 5, "--json", fitted / f"e{nproc}.json",
                 nproc=nproc)
    one, two = (json.loads((fitted / f"e{n}.json").read_text()) for n in (1, 2))
    assert one == two
    assert one["n_rows"] == 300
    model = aevb.load(fitted / "run")
    rows = np.load(fitted / "rows.npy")
    per_chunk = [model.score_samples(rows[s : s + 64], k=5, seed=i * 1_000_003) for i, s in enumerate(range(0, 300, 64))]
    assert one["log_likelihood"] == pytest.approx(np.concatenate(per_chunk).mean(), rel=1e-12)
