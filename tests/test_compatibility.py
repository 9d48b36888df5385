"""Files written by an earlier aevb (tests/fixtures/layout_v1, made by its make.py with the code
from before the generic training loop) still load, score and resume, to the same figures."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import aevb
from aevb.train import checkpoint

FIXTURES = Path(__file__).parent / "fixtures" / "layout_v1"
OPTIONS = dict(latent_dim=2, hidden=(6,), batch_size=8, patience=100, seed=3)


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return np.load(FIXTURES / "rows.npy")


def test_an_old_model_folder_loads_and_scores_the_same(expected, rows):
    model = aevb.load(FIXTURES / "model")
    assert type(model).__name__ == "VAE" and model.config.latent_dim == 2
    # The ELBO draws one z per row from the seed: the same draws give the same figures.
    np.testing.assert_allclose(model.elbo_samples(rows, seed=0)["elbo"], expected["elbo"], rtol=1e-6, atol=1e-6)
    # The k-sample estimate may draw its z in another order; it must agree to its Monte-Carlo error.
    score = model.score_samples(rows, k=50, seed=0)
    assert abs(score.mean() - np.mean(expected["score_k50"])) < 0.05
    assert np.abs(score - expected["score_k50"]).max() < 0.5


def test_an_old_checkpoint_resumes_bit_for_bit(expected, rows, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run", run)
    model = aevb.VAE(epochs=4, **OPTIONS).fit(rows, run_dir=run, resume=True)
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in model.history_]
    assert history == expected["resumed_history"]
    weights = {k: v.double().flatten().tolist() for k, v in model.model_.state_dict().items()}
    assert weights == expected["resumed_weights"]
    with open(run / "metrics.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["epoch", "seconds", "train_elbo", "train_reconstruction", "train_kl",
                      "val_elbo", "val_reconstruction", "val_kl"]
    # The checkpoint is written back in today's format, the best bound under its generic name.
    meta, _ = checkpoint.read(run)
    assert meta["format_version"] == checkpoint.FORMAT_VERSION
    assert meta["progress"]["best_bound"] == max(row["val_elbo"] for row in model.history_)
    assert "best_elbo" not in meta["progress"]


def test_an_old_checkpoint_resumes_to_what_an_unbroken_run_reaches(rows, tmp_path):
    shutil.copytree(FIXTURES / "run", tmp_path / "run")
    resumed = aevb.VAE(epochs=4, **OPTIONS).fit(rows, run_dir=tmp_path / "run", resume=True)
    unbroken = aevb.VAE(epochs=4, **OPTIONS).fit(rows)
    for name, tensor in unbroken.model_.state_dict().items():
        assert torch.equal(tensor, resumed.model_.state_dict()[name]), name
