"""End-to-end tests of the ``aevb`` command.

Commands run in-process through ``aevb.cli.main`` (fast); one test starts a
real subprocess to check what a user's shell sees on an error.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import call
from PIL import Image

from aevb.cli import main

N_ROWS, N_FEATURES, LATENT = 200, 6, 2
EPOCHS = 3
FIT_OPTIONS = ["--epochs", str(EPOCHS), "--hidden", "16", "--latent-dim", str(LATENT), "--quiet"]
SCORE_COLUMNS = ["log_likelihood", "elbo", "reconstruction", "kl", "bits_per_dim", "effective_sample_size"]



def run_ok(args, capsys=None) -> str:
    code = call(args)
    out = capsys.readouterr() if capsys is not None else None
    assert code == 0, f"aevb {' '.join(map(str, args))} exited {code}: {out.err if out else ''}"
    return out.out if out else ""


def read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], np.array(rows[1:], dtype=np.float64)


def make_rows(seed: int = 0) -> np.ndarray:
    """Correlated Gaussian rows: a 2-D latent structure plus noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N_ROWS, 2))
    return z @ rng.normal(size=(2, N_FEATURES)) + 0.3 * rng.normal(size=(N_ROWS, N_FEATURES)) + 5.0


@pytest.fixture(scope="module")
def rows_model(tmp_path_factory):
    """A model fitted on 200 x 6 continuous rows; returns (data path, model folder, data)."""
    folder = tmp_path_factory.mktemp("rows")
    values = make_rows()
    data_path = folder / "x.npy"
    np.save(data_path, values)
    model = folder / "model"
    run_ok(["fit", data_path, "--out", model, *FIT_OPTIONS])
    return data_path, model, values


@pytest.fixture(scope="module")
def image_model(tmp_path_factory):
    """A model fitted on a folder of 20 random 4x4 grayscale PNGs."""
    folder = tmp_path_factory.mktemp("images")
    images = folder / "pngs"
    images.mkdir()
    rng = np.random.default_rng(1)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, size=(4, 4), dtype=np.uint8)).save(images / f"im{i:02d}.png")
    model = folder / "model"
    run_ok(["fit", images, "--out", model, *FIT_OPTIONS])
    return images, model


def binary_rows(seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prototypes = rng.random((2, N_FEATURES)) < 0.5
    which = rng.integers(0, 2, N_ROWS)
    flips = rng.random((N_ROWS, N_FEATURES)) < 0.1
    return (prototypes[which] ^ flips).astype(np.float64)


# -- fit ----------------------------------------------------------------------------


def test_fit_writes_model_files_and_one_metrics_row_per_epoch(rows_model):
    _, model, _ = rows_model
    assert (model / "model.safetensors").stat().st_size > 0
    config = json.loads((model / "config.json").read_text())
    assert config["n_features"] == N_FEATURES
    assert config["model"]["latent_dim"] == LATENT
    assert config["model"]["hidden"] == [16]
    assert config["likelihood"] == "gaussian"
    assert config["image_shape"] is None

    header, metrics = read_csv(model / "metrics.csv")
    assert header[0] == "epoch"
    for column in ["train_elbo", "train_reconstruction", "train_kl", "val_elbo", "val_reconstruction", "val_kl"]:
        assert column in header
    assert metrics.shape == (EPOCHS, len(header))
    assert metrics[:, 0].tolist() == list(range(1, EPOCHS + 1))
    assert np.isfinite(metrics).all()
    assert config["training"]["epochs_run"] == EPOCHS


def test_fit_is_reproducible_with_the_same_seed(rows_model, tmp_path):
    data_path, model, _ = rows_model
    again = tmp_path / "again"
    run_ok(["fit", data_path, "--out", again, *FIT_OPTIONS])
    assert (again / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()


# -- sample ---------------------------------------------------------------------------


def test_sample_npy_has_requested_shape(rows_model, tmp_path):
    _, model, values = rows_model
    out = tmp_path / "s.npy"
    run_ok(["sample", model, "-n", 5, "--out", out])
    rows = np.load(out)
    assert rows.shape == (5, N_FEATURES)
    assert np.isfinite(rows).all()
    # Samples are in the user's units, near the data (mean 5), not in standardized units.
    assert abs(rows.mean() - values.mean()) < 3 * values.std()


def test_sample_is_seeded(rows_model, tmp_path):
    _, model, _ = rows_model
    paths = [tmp_path / name for name in ("a.npy", "b.npy", "c.npy")]
    run_ok(["sample", model, "-n", 4, "--seed", 3, "--out", paths[0]])
    run_ok(["sample", model, "-n", 4, "--seed", 3, "--out", paths[1]])
    run_ok(["sample", model, "-n", 4, "--seed", 4, "--out", paths[2]])
    a, b, c = (np.load(p) for p in paths)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_png_of_image_model_is_a_valid_png(image_model, tmp_path):
    _, model = image_model
    config = json.loads((model / "config.json").read_text())
    assert config["image_shape"] == [4, 4]
    png = tmp_path / "grid.png"
    run_ok(["sample", model, "-n", 4, "--png", png])
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        assert image.width == image.height  # 4 tiles: a 2 x 2 grid
        assert image.width >= 2 * 4
        pixels = np.asarray(image)
    assert len(np.unique(pixels)) > 2  # the tiles hold varied grey levels, not just padding


def test_sample_of_image_model_stays_on_pixel_levels(image_model, tmp_path):
    _, model = image_model
    out = tmp_path / "px.npy"
    run_ok(["sample", model, "-n", 10, "--out", out])
    rows = np.load(out)
    assert rows.shape == (10, 16)
    np.testing.assert_array_equal(rows, np.round(rows))
    assert rows.min() >= 0 and rows.max() <= 255


def test_sample_png_of_row_model_fails_with_usage_error(rows_model, tmp_path, capsys):
    _, model, _ = rows_model
    png = tmp_path / "grid.png"
    assert call(["sample", model, "--png", png, "--out", tmp_path / "rows.npy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aevb: error:") and err.count("\n") == 1
    assert "image" in err
    assert not (tmp_path / "rows.npy").exists()  # refused before any row was drawn or written
    assert not png.exists()


# -- encode -----------------------------------------------------------------------------


def test_encode_writes_one_latent_row_per_data_row(rows_model, tmp_path):
    data_path, model, _ = rows_model
    out_npy, out_csv = tmp_path / "z.npy", tmp_path / "z.csv"
    run_ok(["encode", model, data_path, "--out", out_npy])
    run_ok(["encode", model, data_path, "--out", out_csv])
    latents = np.load(out_npy)
    assert latents.shape == (N_ROWS, LATENT)
    assert np.isfinite(latents).all()
    header, table = read_csv(out_csv)
    assert header == [f"z{i}" for i in range(LATENT)]
    np.testing.assert_allclose(table, latents, rtol=1e-12)


# -- score and evaluate --------------------------------------------------------------------


def test_score_writes_one_row_per_data_row(rows_model, tmp_path):
    data_path, model, _ = rows_model
    out = tmp_path / "scores.csv"
    run_ok(["score", model, data_path, "--k", 50, "--out", out])
    header, table = read_csv(out)
    assert header == SCORE_COLUMNS
    assert table.shape == (N_ROWS, len(SCORE_COLUMNS))
    assert np.isfinite(table).all()
    ll, elbo, rec, kl, bpd, ess = table.T
    assert elbo.mean() <= ll.mean()
    assert (ess >= 1 - 1e-6).all() and (ess <= 50 + 1e-6).all()
    np.testing.assert_allclose(elbo, rec - kl, rtol=1e-6, atol=1e-9)
    assert (kl >= 0).all()
    np.testing.assert_allclose(bpd, -ll / (N_FEATURES * math.log(2)), rtol=1e-12)


def evaluate_json(model, data_path, path, *extra) -> dict:
    run_ok(["evaluate", model, data_path, "--json", path, *extra])
    return json.loads(Path(path).read_text())


def test_evaluate_json_figures_are_consistent(rows_model, tmp_path, capsys):
    data_path, model, _ = rows_model
    figures = evaluate_json(model, data_path, tmp_path / "e.json", "--k", 20)
    printed = capsys.readouterr().out
    for key in ["elbo", "reconstruction", "kl", "log_likelihood", "bits_per_dim", "k", "n_rows"]:
        assert key in figures
    assert figures["k"] == 20
    assert figures["n_rows"] == N_ROWS
    assert figures["elbo"] == pytest.approx(figures["reconstruction"] - figures["kl"], rel=1e-6)
    assert figures["bits_per_dim"] == pytest.approx(
        -figures["log_likelihood"] / (N_FEATURES * math.log(2)), rel=1e-12
    )
    assert figures["elbo"] <= figures["log_likelihood"]
    assert f"{figures['log_likelihood']:.3f}" in printed  # the table shows the same figure


def test_evaluate_agrees_with_score(rows_model, tmp_path):
    data_path, model, _ = rows_model
    figures = evaluate_json(model, data_path, tmp_path / "e.json", "--k", 20, "--seed", 5)
    run_ok(["score", model, data_path, "--k", 20, "--seed", 5, "--out", tmp_path / "s.csv"])
    _, table = read_csv(tmp_path / "s.csv")
    assert figures["log_likelihood"] == pytest.approx(table[:, 0].mean(), rel=1e-9)
    assert figures["elbo"] == pytest.approx(table[:, 1].mean(), rel=1e-9)


def test_evaluate_of_saved_model_is_reproducible(rows_model, tmp_path):
    data_path, model, _ = rows_model
    first = evaluate_json(model, data_path, tmp_path / "1.json", "--k", 10)
    second = evaluate_json(model, data_path, tmp_path / "2.json", "--k", 10)
    other_seed = evaluate_json(model, data_path, tmp_path / "3.json", "--k", 10, "--seed", 1)
    assert first == second
    assert other_seed["log_likelihood"] != first["log_likelihood"]


def test_evaluate_json_is_strict_json_for_one_row(rows_model, tmp_path):
    _, model, values = rows_model
    one = tmp_path / "one.npy"
    np.save(one, values[:1])
    run_ok(["evaluate", model, one, "--k", 5, "--json", tmp_path / "e.json"])

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads((tmp_path / "e.json").read_text(), parse_constant=reject)


# -- binary data -------------------------------------------------------------------------


def test_binary_data_gets_a_bernoulli_decoder_by_default(tmp_path):
    np.save(tmp_path / "b.npy", binary_rows())
    run_ok(["fit", tmp_path / "b.npy", "--out", tmp_path / "m", "--epochs", 1, "--hidden", 8, "--quiet"])
    assert json.loads((tmp_path / "m" / "config.json").read_text())["likelihood"] == "bernoulli"


def test_bernoulli_log_likelihood_is_a_log_probability(tmp_path):
    data_path = tmp_path / "b.npy"
    np.save(data_path, binary_rows())
    model = tmp_path / "m"
    # 40 epochs, not FIT_OPTIONS' 3: after 3 the fit is still about as good as coin flips.
    run_ok(["fit", data_path, "--out", model, "--likelihood", "bernoulli", *FIT_OPTIONS, "--epochs", 40])
    assert json.loads((model / "config.json").read_text())["likelihood"] == "bernoulli"
    run_ok(["score", model, data_path, "--k", 20, "--out", tmp_path / "s.csv"])
    _, table = read_csv(tmp_path / "s.csv")
    assert table.shape == (N_ROWS, len(SCORE_COLUMNS))
    assert (table[:, 0] <= 0).all()
    assert (table[:, 1] <= 0).all()
    # A fitted model beats coin flips on this structured data: log 2 nats per feature.
    assert table[:, 0].mean() > -N_FEATURES * math.log(2)
    run_ok(["sample", model, "-n", 20, "--out", tmp_path / "b_s.npy"])
    assert set(np.unique(np.load(tmp_path / "b_s.npy"))) <= {0.0, 1.0}


# -- the real command ---------------------------------------------------------------------


def test_subprocess_error_is_one_line_with_status_2(tmp_path):
    missing = tmp_path / "no_such_data.npy"
    result = subprocess.run(
        [sys.executable, "-m", "aevb.cli", "fit", str(missing), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aevb: error:")
    assert "no_such_data.npy" in lines[0]
    assert not (tmp_path / "m").exists()
