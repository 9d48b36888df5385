"""The diffusion model's U-Net epsilon network (``--net unet``): the exact base denoiser at the
start, locality, the commands, save/load, and which network ``--net auto`` picks.

Random draws follow from the seed the conftest fixture sets.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import torch
from cli_helpers import call
from click.testing import CliRunner

import aevb
from aevb import Diffusion, cli, datasets
from aevb.core.family import DataDescription
from aevb.data.preprocess import Preprocessor
from aevb.diffusion.bound import negative_bound
from aevb.diffusion.config import UNET_MIN_SIDE, DiffusionConfig
from aevb.diffusion.family import DiffusionFamily, resolved_net
from aevb.diffusion.network import EpsilonMLP
from aevb.diffusion.unet import EpsilonUNet, resolutions
from aevb.errors import AevbError


def built(rows: np.ndarray, image_shape, net: str, **options):
    """A fresh float64 DiffusionModel of ``net`` for these rows, and the rows in model space."""
    pre = Preprocessor.fit(rows, "auto")
    family = DiffusionFamily(DiffusionConfig(net=net, conv_width=8, hidden=(16,), **options), pre)
    model = family.build(DataDescription(rows.shape[1], image_shape, pre.likelihood)).double()
    return model, pre.to_model(torch.as_tensor(rows)).double()


@pytest.mark.parametrize(
    "kind, image_shape",
    [("levels", (8, 8)), ("levels", (17, 16)), ("continuous", (5, 7, 3))],  # one and two halvings, odd sides
)
def test_at_the_start_the_unet_is_the_base_denoiser_and_the_bound_is_the_mlps(kind, image_shape):
    rng = np.random.default_rng(0)
    shape = (12, int(np.prod(image_shape)))
    rows = rng.integers(0, 17, size=shape).astype(float) if kind == "levels" else rng.normal(size=shape)
    unet, y = built(rows, image_shape, "unet")
    mlp, _ = built(rows, image_shape, "mlp")
    assert isinstance(unet.denoiser, EpsilonUNet) and isinstance(mlp.denoiser, EpsilonMLP)
    unet.schedule.load_state_dict(mlp.schedule.state_dict())  # the schedule's shape starts at random
    z, gamma = torch.randn(len(y), y.shape[1], dtype=torch.float64), torch.linspace(-10, 10, len(y), dtype=torch.float64)
    assert torch.equal(unet.epsilon(z, gamma), unet.denoiser.base(z, gamma))
    assert torch.equal(unet.epsilon(z, gamma), mlp.epsilon(z, gamma))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        expected = negative_bound(mlp, y, t_samples=3).bound
    torch.manual_seed(1)
    assert torch.allclose(negative_bound(unet, y, t_samples=3).bound, expected, rtol=0, atol=1e-6)
    # once the output layer is not zero the U-Net adds something of the right shape, per pixel
    torch.nn.init.normal_(unet.denoiser.out.weight)
    residual = unet.denoiser.residual(z, gamma)
    assert residual.shape == z.shape and bool((residual != 0).all())


def test_an_output_pixel_sees_only_its_receptive_field_and_its_own_row():
    """64x64 pixels, two halvings: the receptive field reaches ~30 pixels, so moving the
    top-left pixel changes the outputs near it and leaves the far corner's exactly alone."""
    side = 64
    net = EpsilonUNet((side, side), 4, torch.full((side * side,), 0.3), octaves=2).double()
    assert resolutions((side, side)) == 2
    torch.nn.init.normal_(net.out.weight)
    z = torch.randn(2, side * side, dtype=torch.float64)
    gamma = torch.tensor([-3.0, 2.0], dtype=torch.float64)
    moved = z.clone()
    moved[0, 0] += 1.5  # pixel (0, 0) of the first row
    before, after = net(z, gamma).reshape(2, side, side), net(moved, gamma).reshape(2, side, side)
    assert before[0, 1, 1] != after[0, 1, 1] and before[0, 3, 0] != after[0, 3, 0]
    assert torch.equal(before[0, side // 2 + 8 :, side // 2 + 8 :], after[0, side // 2 + 8 :, side // 2 + 8 :])
    assert torch.equal(before[1], after[1])  # the other row of the batch


def test_fit_score_evaluate_and_sample_digits_with_the_commands_as_from_python(tmp_path, capsys):
    run = tmp_path / "run"
    options = ["--net", "unet", "--conv-width", "8", "--epochs", "2", "--sample-steps", "4", "--quiet"]
    assert call(["fit", "digits", "--model", "diffusion", "--out", run, *options]) == 0
    assert json.loads((run / "config.json").read_text())["model"]["net"] == "unet"
    model = aevb.load(run)
    assert isinstance(model.model_.denoiser, EpsilonUNet) and model.image_shape_ == (8, 8)
    test = datasets.load("digits-test").values[:40]
    np.save(tmp_path / "test.npy", test)

    assert call(["score", run, tmp_path / "test.npy", "--out", tmp_path / "s.csv", "--t-samples", "2", "--quiet"]) == 0
    with open(tmp_path / "s.csv") as handle:
        header, *rows = list(csv.reader(handle))
    expected = model.row_scores(test, k=2)
    assert header == list(expected)
    np.testing.assert_allclose(np.array(rows, dtype=float), np.column_stack(list(expected.values())), rtol=1e-9)

    capsys.readouterr()
    assert call(["evaluate", run, tmp_path / "test.npy", "--t-samples", "2"]) == 0
    printed = re.search(r"variational bound on log p\(x\)\s+(\S+)\s+(\S+)", capsys.readouterr().out)
    figures = model.evaluate(test, k=2)
    assert float(printed[1]) == pytest.approx(figures["bound"], abs=1e-3)
    assert float(printed[2]) == pytest.approx(figures["bits_per_dim"], abs=1e-4)

    assert call(["sample", run, "-n", "5", "--seed", "3", "--out", tmp_path / "x.npy", "--quiet"]) == 0
    drawn = np.load(tmp_path / "x.npy")
    np.testing.assert_array_equal(drawn, model.sample(5, seed=3))
    assert drawn.shape == (5, 64) and np.all(drawn == np.round(drawn)) and 0 <= drawn.min() and drawn.max() <= 16


def test_save_and_load_give_identical_scores(tmp_path):
    digits = datasets.load("digits")
    data = type(digits)(digits.values[:150], digits.image_shape)
    model = Diffusion(net="unet", conv_width=8, epochs=1, sample_steps=4).fit(data)
    model.save(tmp_path / "model")
    loaded = aevb.load(tmp_path / "model")
    assert isinstance(loaded.model_.denoiser, EpsilonUNet)
    np.testing.assert_array_equal(loaded.score_samples(data.values[:30], t_samples=3, seed=5),
                                  model.score_samples(data.values[:30], t_samples=3, seed=5))


def test_a_model_saved_before_net_existed_loads_with_its_mlp(tmp_path):
    digits = datasets.load("digits")
    model = Diffusion(net="mlp", hidden=(16,), epochs=1).fit(type(digits)(digits.values[:100], digits.image_shape))
    model.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    del config["model"]["net"], config["model"]["conv_width"]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    loaded = aevb.load(tmp_path / "model")  # auto would be the U-Net for these 8x8 images
    assert loaded.config.net == "mlp" and isinstance(loaded.model_.denoiser, EpsilonMLP)
    np.testing.assert_array_equal(loaded.score_samples(digits.values[:20], t_samples=2),
                                  model.score_samples(digits.values[:20], t_samples=2))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "diffusion", "--net", "unet"], "--net unet needs images"),
        (["--model", "diffusion", "--net", "conv"], "net must be one of auto, mlp, unet, got 'conv'"),
        (["--model", "vae", "--net", "unet"], "net must be one of auto, mlp, conv, got 'unet'"),
    ],
)
def test_a_net_that_does_not_fit_the_data_or_the_model_is_a_one_line_error(tmp_path, capsys, args, message):
    np.save(tmp_path / "rows.npy", np.random.default_rng(0).normal(size=(60, 4)))
    assert call(["fit", tmp_path / "rows.npy", "--out", tmp_path / "run", "--epochs", "1", "--quiet", *args]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("aevb: error:") and message in error and "\n" not in error
    with pytest.raises(AevbError, match="needs images"):
        Diffusion(net="unet", epochs=1).fit(np.zeros((20, 4)))


def test_auto_picks_the_unet_for_images_from_the_documented_side():
    auto = DiffusionConfig()
    assert auto.net == "auto"
    assert resolved_net(auto, None) == "mlp"
    assert resolved_net(auto, (UNET_MIN_SIDE - 1, 64)) == "mlp"
    assert resolved_net(auto, (UNET_MIN_SIDE, UNET_MIN_SIDE, 3)) == "unet"
    assert resolved_net(DiffusionConfig(net="mlp"), (32, 32)) == "mlp"
    assert resolved_net(DiffusionConfig(net="unet"), (8, 8)) == "unet"
    assert f"auto (unet for images of {UNET_MIN_SIDE}x{UNET_MIN_SIDE} pixels or more" in " ".join(
        CliRunner().invoke(cli.cli, ["fit", "--model", "diffusion", "--help"], terminal_width=400).output.split()
    )
