"""Damaged checkpoints, damaged config.json and odd files end in one AevbError line that names
the file and the damaged field (``aevb: error: ... is damaged: position -3 is outside 0..53``,
exit 2): never a traceback, a crash, a hang, or a run that carries on from garbage.

Each case was seen to fail before the fields were checked where they are read: an
IndexError or TypeError from the loop, a segmentation fault in Adam's step, a
RecursionError from json, NaN scores, or silently wrong samples.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import call
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

import aevb
from aevb.data import loaders as datasets
from aevb.report.page import read_evaluation, read_metrics
from aevb.store.fields import DamagedField, nesting_depth, parse_json
from aevb.train import checkpoint
from aevb.train.checkpoint import CHECKPOINT_FILE, saved_config

TRAIN_ROWS = 54  # 60 rows less the validation tenth
FIT = {"epochs": 2, "hidden": (4,), "latent_dim": 1, "batch_size": 16}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run folder with its checkpoint, and its rows."""
    folder = tmp_path_factory.mktemp("damaged_run")
    rows = np.random.default_rng(0).normal(size=(60, 3))
    np.save(folder / "rows.npy", rows)
    aevb.VAE(**FIT).fit(rows, run_dir=folder / "run", progress=False)
    return folder / "run", rows


def damaged_run(source: Path, target: Path, meta=None, tensors=None) -> Path:
    """A copy of run folder ``source`` whose checkpoint has its metadata and tensors edited."""
    shutil.copytree(source, target)
    path = target / CHECKPOINT_FILE
    blob = path.read_bytes()
    header = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])
    values, entries = json.loads(header["__metadata__"]["aevb"]), load_tensors(blob)
    if meta:
        meta(values)
    if tensors:
        tensors(entries)
    path.write_bytes(save_tensors(entries, metadata={"aevb": json.dumps(values, allow_nan=True)}))
    return target


def resume(folder: Path, rows: np.ndarray):
    return aevb.VAE(**{**saved_config(folder), "epochs": 3}).fit(rows, run_dir=folder, resume=True, progress=False)


def progress(**fields):
    return lambda meta: meta["progress"].update(fields)


def mid_epoch(edit):
    """``edit`` of the tensors of a checkpoint written 8 rows into an epoch."""
    return {"meta": progress(position=8), "tensors": edit}


def replace(name, value):
    return lambda tensors: tensors.__setitem__(name, value(tensors[name]))


CHECKPOINTS = {
    "negative position": ({"meta": progress(position=-3)}, f"position -3 is outside 0..{TRAIN_ROWS - 1}"),
    "position past the data": ({"meta": progress(position=TRAIN_ROWS)}, f"position {TRAIN_ROWS} is outside"),
    "order out of range": (mid_epoch(replace("order", lambda t: t + 1000)), "order is not an ordering of the 54"),
    "order of floats": (mid_epoch(replace("order", lambda t: t.double())), "order holds torch.float64"),
    "order too short": (mid_epoch(replace("order", lambda t: t[:5])), "order is not an ordering"),
    "order repeating a row": (mid_epoch(replace("order", lambda t: t * 0)), "order is not an ordering"),
    "sums of the wrong size": (mid_epoch(replace("sums", lambda t: torch.zeros(7, dtype=torch.float64))),
                               "sums has shape (7,), not (3,)"),
    "epoch as a string": ({"meta": progress(epoch="2")}, "epoch is '2', not a whole number"),
    "negative epoch": ({"meta": progress(epoch=-1)}, "epoch -1 is outside"),
    "step as a string": ({"meta": progress(step="x")}, "step is 'x'"),
    "negative step": ({"meta": progress(step=-1)}, "step -1 is outside"),
    "history not a list": ({"meta": progress(history="x")}, "history is 'x', not a list"),
    "history of numbers": ({"meta": progress(history=[1, 2])}, "history[0] is 1"),
    "history without metrics": ({"meta": progress(history=[{}, {}])}, "history[0] lacks the field epoch"),
    "history a row short": ({"meta": lambda m: m["progress"]["history"].pop()}, "history has 1 entries, not 2"),
    "best_bound as a string": ({"meta": progress(best_bound="x")}, "best_bound is 'x', not a number"),
    "NaN model weights": ({"tensors": lambda t: t["model/encoder.0.0.weight"].fill_(math.nan)},
                          "model/encoder.0.0.weight holds NaN"),
    "infinite best weights": ({"tensors": lambda t: t["best/decoder.0.0.bias"].fill_(math.inf)},
                              "best/decoder.0.0.bias holds NaN or infinite"),
    "weights of the wrong shape": ({"tensors": replace("model/encoder.0.0.weight", lambda t: torch.zeros(5, 3))},
                                   "model/encoder.0.0.weight has shape (5, 3), not (4, 3)"),
    "weights of integers": ({"tensors": replace("best/encoder.0.0.weight", lambda t: t.long())},
                            "best/encoder.0.0.weight holds torch.int64"),
    "Adam's moment NaN": ({"tensors": lambda t: t["optimizer/0/exp_avg"].fill_(math.nan)}, "optimizer/0/exp_avg holds NaN"),
    "a stray optimizer entry": ({"tensors": lambda t: t.__setitem__("optimizer/99/exp_avg", torch.zeros(3))},
                                "unexpected tensor optimizer/99/exp_avg"),
}


@pytest.mark.parametrize("case", list(CHECKPOINTS))
def test_a_damaged_checkpoint_names_its_field(run, tmp_path, case):
    folder, rows = run
    edits, fragment = CHECKPOINTS[case]
    damaged = damaged_run(folder, tmp_path / "run", **edits)
    with pytest.raises(aevb.AevbError) as caught:
        resume(damaged, rows)
    message = str(caught.value)
    assert "\n" not in message and "checkpoint.safetensors is damaged" in message and fragment in message, message


def test_adam_moments_of_the_wrong_shape_are_refused_not_run(run, tmp_path):
    """Fused Adam on moments of the wrong shape crashed the process (SIGSEGV): in a process of its own."""
    folder, _ = run
    damaged = damaged_run(folder, tmp_path / "run", tensors=replace("optimizer/0/exp_avg", lambda t: torch.zeros(7)))
    result = subprocess.run(
        [sys.executable, "-m", "aevb", "fit", folder.parent / "rows.npy", "--resume", damaged, "--epochs", "3", "--quiet"],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.count("\n") == 1 and "optimizer/0/exp_avg has shape (7,), not (4, 3)" in result.stderr


def test_an_undamaged_checkpoint_still_resumes(run, tmp_path):
    folder, rows = run
    shutil.copytree(folder, tmp_path / "run")
    model = resume(tmp_path / "run", rows)
    assert len(model.history_) == 3


def test_checkpoint_metadata_nested_too_deep(run, tmp_path):
    folder, rows = run
    damaged = damaged_run(folder, tmp_path / "run", meta=lambda m: m.__setitem__("x", 0))
    path = damaged / CHECKPOINT_FILE
    blob = path.read_bytes()
    text = json.loads(blob[8 : 8 + int.from_bytes(blob[:8], "little")])["__metadata__"]["aevb"]
    deep = text.replace('"x": 0', '"x": ' + "[" * 100_000 + "]" * 100_000)
    path.write_bytes(save_tensors(load_tensors(blob), metadata={"aevb": deep}))
    with pytest.raises(aevb.AevbError, match="nests 100001 levels deep"):
        resume(damaged, rows)


# -- config.json and model.safetensors of a saved model ------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny saved models of each kind of preprocessing, and the data each scores."""
    folder = tmp_path_factory.mktemp("damaged_models")
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(40, 3))
    aevb.VAE(epochs=1, hidden=(4,), latent_dim=1).fit(rows).save(folder / "array")
    table = pd.DataFrame({
        "h": rng.normal(170, 10, 40).round(1), "g": rng.choice(["a", "b", "c"], 40),
        "b": rng.choice(["yes", "no"], 40), "n": rng.integers(0, 100, 40),
    })
    table.loc[3, "h"] = np.nan
    aevb.TabularVAE(epochs=1, hidden=(4,), latent_dim=2).fit(table).save(folder / "table")
    images = rng.integers(0, 256, size=(20, 4, 4)).astype(np.uint8)
    np.save(folder / "images.npy", images)
    aevb.VAE(epochs=1, hidden=(4,), latent_dim=1).fit(datasets.load(folder / "images.npy")).save(folder / "image")
    return folder, {"array": rows, "table": table, "image": images.reshape(20, -1).astype(np.float64)}


def column(index, **fields):
    return lambda config: config["preprocessor"]["columns"][index].update(fields)


def field(name, value):
    return lambda config: config.__setitem__(name, value)


def preprocessor(**fields):
    return lambda config: config["preprocessor"].update(fields)


def weights(name, value):
    return lambda state: state.__setitem__(name, value(state[name]))


DEEP = "[" * 100_000 + "]" * 100_000
CONFIGS = {
    "nested 100,000 levels deep": ("array", {"text": lambda t: t[:-1] + ', "x": ' + DEEP + "}"}, "nests 100001 levels deep"),
    "an integer of 5,000 digits": ("array", {"text": lambda t: t.replace('"n_features": 3', '"n_features": ' + "7" * 5000)},
                                   "an integer of 5000 digits"),
    "a scale of 1e-300": ("array", {"config": preprocessor(scale=[1e-300, 1.0, 1.0])}, "preprocessor.scale[0] 1e-300 is outside"),
    "a shift of 1e300": ("array", {"config": preprocessor(shift=[1e300, 0.0, 0.0])}, "preprocessor.shift[0] 1e+300 is outside"),
    "a binary model that standardizes": ("array", {"config": preprocessor(kind="binary")}, "has a shift or scale"),
    "a likelihood the preprocessor does not have": ("array", {"config": field("likelihood", "bernoulli")},
                                                    "likelihood 'bernoulli' differs"),
    "weights of float64": ("array", {"weights": weights("encoder.0.0.weight", lambda t: t.double())},
                           "encoder.0.0.weight hold torch.float64, not torch.float32"),
    "weights of integers": ("array", {"weights": weights("encoder.0.0.weight", lambda t: t.long())}, "hold torch.int64"),
    "a bad column dtype": ("table", {"config": column(0, dtype="zzz")}, "column 'h' dtype is 'zzz'"),
    "a date dtype on categories": ("table", {"config": column(1, dtype="datetime64[ns]")}, "column 'g' dtype is 'datetime64[ns]'"),
    "a boolean column with one label": ("table", {"config": column(2, categories=["no"])},
                                        "column 'b' of kind boolean (object) has the labels ['no']"),
    "categories that are not labels": ("table", {"config": column(1, categories=[[1], {"a": 1}, None])},
                                       "column 'g' of kind categorical has the labels"),
    "a repeated category": ("table", {"config": column(1, categories=["a", "a", "c"])}, "repeats a label"),
    "decimals as a string": ("table", {"config": column(0, decimals="x")}, "column 'h' decimals is 'x'"),
    "bounds the wrong way round": ("table", {"config": column(0, lower=500.0, upper=100.0)}, "lower bound 500 above"),
    "an integer column's bound of NaN": ("table", {"config": column(3, lower=math.nan)}, "column 'n' lower is nan"),
    "an integer column's fractional offset": ("table", {"config": column(3, offset=1.5)}, "offset 1.5, not a whole number"),
    "latent moments of another size": ("table", {"config": preprocessor(latent={"mean": [0.0] * 3, "covariance": np.eye(3).tolist()})},
                                       "preprocessor.latent has 3 dimensions, not latent_dim 2"),
    "a negative image shape": ("image", {"config": field("image_shape", [-4, -4])}, "image_shape[0] -4 is outside 1..16"),
    "a zero image side": ("image", {"config": field("image_shape", [0, 4])}, "image_shape[0] 0 is outside"),
    "an image with 16 channels": ("image", {"config": field("image_shape", [1, 1, 16])}, "has 16 channels"),
}


def damaged_model(source: Path, target: Path, config=None, text=None, weights=None) -> Path:
    shutil.copytree(source, target)
    if config or text:
        values = json.loads((target / "config.json").read_text())
        if config:
            config(values)
        content = json.dumps(values, allow_nan=True)
        (target / "config.json").write_text(text(content) if text else content)
    if weights:
        state = load_tensors((target / "model.safetensors").read_bytes())
        weights(state)
        (target / "model.safetensors").write_bytes(save_tensors(state))
    return target


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_damaged_model_folder_names_its_field(models, tmp_path, case):
    folder, data = models
    kind, edits, fragment = CONFIGS[case]
    model = damaged_model(folder / kind, tmp_path / "model", **edits)
    with pytest.raises(aevb.AevbError) as caught:
        loaded = aevb.load(model)  # what every command does first; then use it, as a command would
        loaded.sample(3)
        loaded.score_samples(data[kind])
    message = str(caught.value)
    assert "\n" not in message and "is damaged" in message and fragment in message, message


def test_the_command_line_says_one_line(models, tmp_path, capsys):
    folder, _ = models
    model = damaged_model(folder / "array", tmp_path / "model", text=lambda t: t[:-1] + ', "x": ' + DEEP + "}")
    assert call(["sample", model, "-n", 2, "--out", tmp_path / "s.npy"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("aevb: error: ") and "config.json is damaged" in err, err


def test_an_unfinished_run_with_a_deep_config_is_unfinished(run, tmp_path):
    folder, _ = run
    shutil.copytree(folder, tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text(DEEP)
    assert checkpoint.unfinished_run(tmp_path / "run")


def test_brackets_inside_strings_do_not_count_as_nesting():
    name = "[{" * 200 + '\\"' + "]}" * 3
    assert nesting_depth(json.dumps({"columns": [{"name": name}]}).encode()) == 3
    assert parse_json(json.dumps({"name": name}))["name"] == name
    with pytest.raises(DamagedField, match="integer of 401 digits"):
        parse_json("[" + "1" * 401 + "]")


# -- odd files ----------------------------------------------------------------------------------

def npz_with(path: Path, name: str, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(name, content)
    return path


@pytest.mark.parametrize("name, content", [("x.npy", b"garbage, not an array\n" * 4), ("x.txt", b"hello")])
def test_an_npz_member_that_is_not_a_npy(tmp_path, name, content):
    with pytest.raises(aevb.AevbError, match=r"is not a \.npy array"):
        datasets.load(npz_with(tmp_path / "x.npz", name, content))


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_a_folder_named_like_a_data_file(tmp_path, suffix):
    (tmp_path / f"x{suffix}").mkdir()
    with pytest.raises(aevb.AevbError, match=f"is a folder, not a \\{suffix} file"):
        datasets.load(tmp_path / f"x{suffix}")


@pytest.mark.parametrize("kind", ["folder", "dangling link", "looping link"])
def test_metrics_csv_that_is_not_a_file(tmp_path, kind):
    path = tmp_path / "metrics.csv"
    if kind == "folder":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere")
    else:
        path.symlink_to(tmp_path / "other.csv")
        (tmp_path / "other.csv").symlink_to(path)
    with pytest.raises(aevb.AevbError, match="metrics.csv"):
        read_metrics(path)


def test_a_metrics_csv_with_an_oversized_field(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch\n" + "1" * 200_000 + "\n")
    with pytest.raises(aevb.AevbError, match="cannot read .*metrics.csv as metrics"):
        read_metrics(tmp_path / "metrics.csv")


def test_a_damaged_evaluation_json(tmp_path):
    (tmp_path / "evaluation.json").write_text(DEEP)
    with pytest.raises(aevb.AevbError, match="evaluation.json is damaged: it nests"):
        read_evaluation(tmp_path / "evaluation.json")
    (tmp_path / "evaluation.json").write_text("[1, 2]")
    with pytest.raises(aevb.AevbError, match="not an object"):
        read_evaluation(tmp_path / "evaluation.json")
