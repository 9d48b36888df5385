"""Requests that cannot fit, seeds out of range and odd files end in one line naming the
problem, never in an allocator's traceback or a reader blocked forever."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cli_helpers import call, save_small_level_model
from test_bad_input import assert_usage_error

import aevb
from aevb.config import VAEConfig
from aevb.vae import memory

FIT = ["--epochs", 1, "--hidden", 8, "--latent-dim", 2, "--quiet"]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    save_small_level_model(folder, seed=0)
    return folder


@pytest.mark.parametrize(
    "options, named",
    [
        (["--latent-dim", 10**8], "--latent-dim"),
        (["--hidden", 10**9], "--hidden"),
        (["--mc-samples", 10**9], "--mc-samples"),
        (["--prior", "mog", "--prior-components", 10**9], "--prior-components"),
        (["--objective", "iwae", "--k", 10**9], "--k"),
        (["--latent-layers", 10**18], "--latent-layers"),
    ],
)
def test_sizes_that_cannot_fit_are_refused_naming_the_option(tmp_path, capsys, options, named, monkeypatch):
    monkeypatch.setattr(aevb.estimator, "train", lambda *a, **k: pytest.fail("training started"))
    assert_usage_error(capsys, ["fit", "digits", "--out", tmp_path / "run", "--epochs", 1, *options],
                       "would need about", f"lower {named} ")


def test_the_estimate_is_close_to_the_real_parameter_count():
    config = VAEConfig(latent_dim=8, hidden=(64, 32), posterior="iaf", prior="vamp", prior_components=10)
    model = aevb.VAE(**config.to_dict())._make_model(20, aevb.data.preprocess.Preprocessor.fit(
        np.random.default_rng(0).normal(size=(10, 20)), "gaussian"))
    weights = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    estimated_weights = (memory.training_bytes(config, 20) / memory.BYTES) / memory.COPIES
    assert weights / 2 < estimated_weights < 4 * weights


def test_the_limit_is_the_machine_s_memory(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memory, "memory_bytes", lambda: 2**30)  # a 1 GiB machine
    monkeypatch.setattr(aevb.estimator, "train", lambda *a, **k: pytest.fail("training started"))
    assert_usage_error(capsys, ["fit", "digits", "--out", tmp_path / "r", "--epochs", 1, "--hidden", 1000000],
                       "but the machine has 1 GB", "lower --hidden (now 1000000)")


def test_sample_and_impute_requests_that_cannot_fit(small_run, capsys):
    assert_usage_error(capsys, ["sample", small_run / "run", "-n", 10**14, "--out", small_run / "s.npy"],
                       "sampling 100000000000000 rows asks for about")
    assert not (small_run / "s.npy").exists()


@pytest.mark.parametrize("seed", [-1, 2**63, 10**30])
def test_seeds_outside_the_range_are_one_line(small_run, tmp_path, capsys, seed):
    assert_usage_error(capsys, ["fit", "digits", "--out", tmp_path / "r", f"--seed={seed}", *FIT], "seed")
    assert_usage_error(capsys, ["sample", small_run / "run", f"--seed={seed}", "--out", tmp_path / "s.npy"], "--seed")
    with pytest.raises(aevb.AevbError, match="seed must be a whole number from 0 to 2\\^63-1"):
        aevb.load(small_run / "run").sample(2, seed=seed)


def test_the_largest_seed_works_everywhere(small_run, tmp_path):
    top = 2**63 - 1
    model = aevb.load(small_run / "run")
    assert model.sample(2, seed=top).shape == (2, 4)
    rows = np.load(small_run / "rows.npy")
    assert np.isfinite(model.score_samples(rows, k=2, seed=top)).all()
    assert call(["score", small_run / "run", small_run / "rows.npy", "--k", 2, "--seed", top,
                 "--out", tmp_path / "s.npy", "--quiet"]) == 0


@pytest.mark.parametrize("where", ["file.npy", "file.csv", "file.parquet", "images/a.png", "shards/b.npy"])
def test_a_fifo_is_refused_not_waited_on(tmp_path, capsys, where):
    (tmp_path / "images").mkdir()
    (tmp_path / "shards").mkdir()
    np.save(tmp_path / "shards" / "a.npy", np.ones((3, 2)))
    os.mkfifo(tmp_path / where)
    source = tmp_path / where.split("/")[0] if "/" in where else tmp_path / where
    assert_usage_error(capsys, ["fit", source, "--out", tmp_path / "run", *FIT], "not a regular file")


def test_folders_and_links_where_files_belong(tmp_path, capsys):
    (tmp_path / "x.parquet").mkdir()
    assert_usage_error(capsys, ["fit", tmp_path / "x.parquet", "--out", tmp_path / "run", *FIT], "is a folder")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    assert_usage_error(capsys, ["fit", tmp_path / "a", "--out", tmp_path / "run", *FIT], "looping link")


def _damaged_copy(small_run, tmp_path, edit):
    import json
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(small_run / "run", folder)
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("field, value", [("model_type", []), ("training", "done"), ("training", {"best_epoch": "1"})])
def test_damaged_config_fields_are_named(small_run, tmp_path, field, value):
    folder = _damaged_copy(small_run, tmp_path, lambda c: c.__setitem__(field, value))
    with pytest.raises(aevb.AevbError, match=field):
        aevb.load(folder)


def test_a_saved_config_asking_for_endless_layers_is_refused_before_building(small_run, tmp_path):
    folder = _damaged_copy(small_run, tmp_path, lambda c: c["model"].__setitem__("latent_layers", 10**18))
    with pytest.raises(aevb.AevbError, match="would need about"):
        aevb.load(folder)


def test_the_estimate_counts_the_layers_of_a_hierarchy():
    config = VAEConfig(latent_dim=4, hidden=(32, 32), latent_layers=3)
    model = aevb.VAE(**config.to_dict())._make_model(20, aevb.data.preprocess.Preprocessor.fit(
        np.random.default_rng(0).normal(size=(10, 20)), "gaussian"))
    weights = sum(p.numel() for p in model.parameters())
    estimated_weights = (memory.training_bytes(config, 20) / memory.BYTES) / memory.COPIES
    assert weights / 2 < estimated_weights < 4 * weights


def test_non_finite_weights_are_refused(small_run, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = tmp_path / "model"
    shutil.copytree(small_run / "run", folder)
    state = load_file(folder / "model.safetensors")
    name = sorted(state)[0]
    state[name] = state[name].clone().fill_(float("nan"))
    save_file(state, folder / "model.safetensors")
    with pytest.raises(aevb.AevbError, match=f"weights {name} hold NaN"):
        aevb.load(folder)
