"""The run folder: problems writing it show before training; a damaged, foreign or
mismatched checkpoint is a one-line error; interrupted writes never leave a half file."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal

import numpy as np
import pytest
from cli_helpers import call
from safetensors.torch import load_file, save_file
from test_bad_input import assert_usage_error

import aevb
import aevb.vae.family
from aevb.store import atomic
from aevb.train import checkpoint

FIT = ["--epochs", 2, "--hidden", 8, "--latent-dim", 2, "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """(data path, run folder) of a finished two-epoch run."""
    folder = tmp_path_factory.mktemp("run_folder")
    data = folder / "x.npy"
    np.save(data, np.random.default_rng(0).normal(size=(40, 3)))
    run = folder / "run"
    aevb.VAE(epochs=2, hidden=(8,), latent_dim=2).fit(aevb.datasets.load(data), run_dir=run).save(run)
    return data, run


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: errors must come before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(aevb.estimator, "train", refuse)


def test_run_folder_under_a_file_is_reported_before_training(finished_run, tmp_path, capsys, no_training):
    (tmp_path / "plain_file").write_text("not a folder")
    out = tmp_path / "plain_file" / "run"
    assert_usage_error(capsys, ["fit", finished_run[0], "--out", out, *FIT], "plain_file", "cannot write")


def test_full_disk_is_reported_before_training(finished_run, tmp_path, capsys, monkeypatch, no_training):
    real_write_bytes = type(tmp_path).write_bytes

    def full_disk(self, data):
        if self.name == ".aevb-write-check":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_bytes(self, data)

    monkeypatch.setattr(type(tmp_path), "write_bytes", full_disk)
    assert_usage_error(capsys, ["fit", finished_run[0], "--out", tmp_path / "run", *FIT], "No space left")


def test_failed_checkpoint_write_keeps_the_previous_one(finished_run, tmp_path, monkeypatch):
    _, run = finished_run
    before = (run / checkpoint.CHECKPOINT_FILE).read_bytes()

    real_write_bytes = type(run).write_bytes

    def crash(self, data):
        if not self.name.startswith(f".{checkpoint.CHECKPOINT_FILE}."):
            return real_write_bytes(self, data)
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(type(run), "write_bytes", crash)
    with pytest.raises(aevb.AevbError, match="No space left"):
        aevb.VAE(epochs=2, hidden=(8,), latent_dim=2).fit(aevb.datasets.load(finished_run[0]), run_dir=run, resume=True)
    assert (run / checkpoint.CHECKPOINT_FILE).read_bytes() == before
    assert not list(run.glob(".*.tmp"))


def test_replace_atomically_leaves_old_or_new(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        atomic.replace_atomically(target, lambda p: (open(p, "w").write("partial"), (_ for _ in ()).throw(KeyboardInterrupt)))
    assert target.read_text() == "old" and not list(tmp_path.glob(".*.tmp"))
    atomic.replace_atomically(target, lambda p: open(p, "w").write("new"))
    assert target.read_text() == "new"


# -- resuming ------------------------------------------------------------------------------------


def test_resume_without_checkpoint(finished_run, tmp_path, capsys):
    assert_usage_error(capsys, ["fit", finished_run[0], "--resume", tmp_path, "--quiet"], "no checkpoint", "--resume")


def test_resume_on_other_data(finished_run, tmp_path, capsys, no_training):
    data, run = finished_run
    other = tmp_path / "other.npy"
    np.save(other, np.load(data) + 1.0)
    assert_usage_error(capsys, ["fit", other, "--resume", run, "--quiet"], "data differs")


def test_resume_with_another_architecture(finished_run, capsys, no_training):
    data, run = finished_run
    assert_usage_error(capsys, ["fit", data, "--resume", run, "--latent-dim", 5, "--quiet"], "--latent-dim", "5")


def test_resume_of_a_finished_run_saves_the_same_model(finished_run, tmp_path, capsys):
    data, run = finished_run
    before = load_file(run / "model.safetensors")
    code = assert_ok(["fit", data, "--resume", run, "--quiet"], capsys)
    after = load_file(run / "model.safetensors")
    assert code == 0 and all(before[name].equal(after[name]) for name in before)


@pytest.mark.parametrize("how", ["killed before any model was saved", "killed after an earlier run finished",
                                 "interrupted"])
def test_fit_out_refuses_to_overwrite_an_unfinished_run(finished_run, tmp_path, capsys, no_training, how):
    data, run = finished_run
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    if how == "killed before any model was saved":
        (folder / "model.safetensors").unlink()
        (folder / "config.json").unlink()
    elif how == "killed after an earlier run finished":
        later = (folder / "model.safetensors").stat().st_mtime + 5
        os.utime(folder / "checkpoint.safetensors", (later, later))
    else:
        config = json.loads((folder / "config.json").read_text())
        config["training"]["stopped_because"] = "interrupted"
        (folder / "config.json").write_text(json.dumps(config))
    kept = (folder / "checkpoint.safetensors").read_bytes()
    assert_usage_error(capsys, ["fit", data, "--out", folder, *FIT], "unfinished run", f"--resume {folder}")
    assert (folder / "checkpoint.safetensors").read_bytes() == kept


def test_fit_out_over_a_finished_run_starts_over(finished_run, tmp_path, capsys):
    data, run = finished_run
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    assert_ok(["fit", data, "--out", folder, *FIT, "--latent-dim", 3], capsys)
    assert aevb.load(folder).config.latent_dim == 3


def assert_ok(args, capsys):
    code = call(args)
    assert code == 0, capsys.readouterr().err
    return code


@pytest.mark.parametrize("damage", ["truncated", "random-bytes", "not-a-checkpoint", "future-format", "wrong-shapes"])
def test_damaged_checkpoint_is_a_one_line_error(finished_run, tmp_path, capsys, damage):
    data, run = finished_run
    path = tmp_path / checkpoint.CHECKPOINT_FILE
    original = (run / checkpoint.CHECKPOINT_FILE).read_bytes()
    if damage == "truncated":
        path.write_bytes(original[: len(original) // 2])
    elif damage == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif damage == "not-a-checkpoint":
        save_file({"x": load_file(run / "model.safetensors")["prior.loc"]}, path)
    else:
        meta, tensors = checkpoint.read(run)
        if damage == "future-format":
            meta["format_version"] = 99
        else:
            tensors = {name: t[:1] if t.ndim else t for name, t in tensors.items()}
        save_file(tensors, path, metadata={"aevb": json.dumps(meta)})
    assert_usage_error(capsys, ["fit", data, "--resume", tmp_path, "--quiet"], str(path))


def test_sigterm_between_steps_writes_a_checkpoint_and_exits_143(finished_run, tmp_path, capsys, monkeypatch):
    """In-process: the signal arrives during a step; the step finishes, then the loop stops."""
    real, steps = aevb.vae.family.training_objective, []

    def training_objective(model, x, *args):
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(model, x, *args)

    monkeypatch.setattr(aevb.vae.family, "training_objective", training_objective)
    run = tmp_path / "run"
    code = call(["fit", finished_run[0], "--out", run, "--batch-size", 8, *FIT])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err and f"--resume {run}" in err and len(err.splitlines()) == 1, err
    meta, _ = checkpoint.read(run)
    assert (meta["progress"]["epoch"], meta["progress"]["step"]) == (0, 3)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler was not put back"


def test_model_and_checkpoint_are_read_without_unpickling(finished_run, monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    data, run = finished_run
    aevb.load(run)
    checkpoint.read(run)
