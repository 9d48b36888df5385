"""A run folder has one writer at a time, and aevb never writes through a link or
over a non-file planted where its files go."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from cli_helpers import call
from test_bad_input import assert_usage_error

import aevb
from aevb.store.run_folder import locked, no_follow

FIT = ["--epochs", 1, "--hidden", 8, "--latent-dim", 2, "--quiet"]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40, 3)))
    return path


@pytest.mark.parametrize("name", ["metrics.csv", "config.json", "model.safetensors"])
def test_a_link_in_the_run_folder_is_refused_and_its_target_untouched(tmp_path, data, capsys, name):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(victim)
    assert_usage_error(capsys, ["fit", data, "--out", run, *FIT], name, "symbolic link")
    assert victim.read_text() == "precious\n"
    with pytest.raises(aevb.AevbError, match="symbolic link"):
        aevb.VAE(epochs=1, hidden=(8,), latent_dim=2).fit(aevb.datasets.load(data), run_dir=run)
    assert victim.read_text() == "precious\n"


def test_a_linked_checkpoint_is_not_followed(tmp_path, data):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.safetensors").symlink_to(victim)
    assert call(["fit", data, "--out", run, *FIT]) == 2
    assert victim.read_text() == "precious\n"


def test_dangling_link_and_folder_in_place_of_metrics(tmp_path, data, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").symlink_to(tmp_path / "nowhere")
    assert_usage_error(capsys, ["fit", data, "--out", run, *FIT], "metrics.csv", "symbolic link")
    assert not (tmp_path / "nowhere").exists()
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").mkdir()
    assert_usage_error(capsys, ["fit", data, "--out", run, *FIT], "metrics.csv", "a folder")


def test_no_follow_refuses_a_link(tmp_path):
    (tmp_path / "target").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        open(tmp_path / "link", "w", opener=no_follow)
    assert (tmp_path / "target").read_text() == "x"


def test_a_second_fit_into_a_held_folder_is_refused_naming_the_holder(tmp_path, data, capsys):
    run = tmp_path / "run"
    run.mkdir()
    with locked(run):
        message = assert_usage_error(capsys, ["fit", data, "--out", run, *FIT], "in use by another aevb process")
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
        assert not (run / "model.safetensors").exists()
    assert call(["fit", data, "--out", run, *FIT]) == 0  # released: the next fit goes ahead
    with locked(run):  # and the finished fit released it too
        pass
