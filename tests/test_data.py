"""Loaders read what users have, and preprocessing replays exactly."""

import numpy as np
import pytest
import torch
from PIL import Image

from aevb import datasets
from aevb.data.preprocess import Preprocessor


def test_digits_splits_are_disjoint_and_cover_the_set():
    everything = datasets.load("digits").values
    train, test = datasets.load("digits-train"), datasets.load("digits-test")
    assert train.image_shape == (8, 8)
    assert len(train.values) + len(test.values) == len(everything) == 1797
    rows = {tuple(r) for r in everything}
    assert {tuple(r) for r in train.values} | {tuple(r) for r in test.values} == rows


def test_csv_with_and_without_header(tmp_path):
    values = np.array([[1.5, -2.0, 3.0], [4.0, 5.25, -6e-3]])
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, values, delimiter=",")
    headed = tmp_path / "headed.csv"
    headed.write_text("a,b,c\n" + plain.read_text())
    for path in (plain, headed):
        np.testing.assert_array_equal(datasets.load(path).values, values)


def test_npz_and_image_stacks(tmp_path):
    stack = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4, 3))
    np.savez(tmp_path / "one.npz", images=stack)
    loaded = datasets.load(tmp_path / "one.npz")
    assert loaded.values.shape == (5, 36) and loaded.image_shape == (3, 4, 3)
    np.savez(tmp_path / "two.npz", a=stack, b=stack[:2])
    assert datasets.load(tmp_path / "two.npz", key="b").values.shape == (2, 36)


def test_image_folder_grayscale_and_rgb(tmp_path):
    rng = np.random.default_rng(0)
    gray = [rng.integers(0, 256, size=(6, 5), dtype=np.uint8) for _ in range(3)]
    for i, pixels in enumerate(gray):
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    loaded = datasets.load(tmp_path)
    assert loaded.image_shape == (6, 5)
    np.testing.assert_array_equal(loaded.values, np.stack(gray).reshape(3, -1))
    Image.fromarray(rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)).save(tmp_path / "9.png")
    assert datasets.load(tmp_path).image_shape == (6, 5, 3)  # mixed modes become RGB


@pytest.mark.parametrize(
    "values,kind,levels",
    [
        (np.array([[0.0, 1.0], [1.0, 1.0]]), "levels", 2),
        (np.array([[0.0, 16.0], [3.0, 7.0]]), "levels", 17),
        (np.array([[0.5, -1.0], [2.0, 3.0]]), "continuous", None),
    ],
)
def test_preprocessor_kinds(values, kind, levels):
    pre = Preprocessor.fit(values, "gaussian")
    assert (pre.kind, pre.n_levels) == (kind, levels)


def test_preprocessor_round_trip_and_jacobian():
    """to_model is the affine map (x + u - shift) / scale, whose log |det| is -sum log scale."""
    values = np.random.default_rng(1).normal(3.0, 5.0, size=(50, 4))
    pre = Preprocessor.fit(values, "gaussian")
    x = torch.as_tensor(values)
    y = pre.to_model(x)
    torch.testing.assert_close(pre.from_model(y), x)
    jacobian = torch.autograd.functional.jacobian(lambda row: pre.to_model(row[None])[0], x[0])
    assert pre.log_abs_det_jacobian() == pytest.approx(torch.linalg.slogdet(jacobian).logabsdet.item())
    assert pre.to_dict() == Preprocessor.from_dict(pre.to_dict()).to_dict()


def test_dequantized_levels_fill_their_cells():
    values = np.array([[0.0, 4.0], [2.0, 1.0]])
    pre = Preprocessor.fit(values, "gaussian")
    x = torch.as_tensor(values).repeat(500, 1)
    back = torch.as_tensor(pre.scale) * pre.to_model(x, torch.Generator().manual_seed(0)) + torch.as_tensor(pre.shift)
    offset = back - x
    assert offset.min() >= 0 and offset.max() < 1 and abs(offset.mean().item() - 0.5) < 0.02
    torch.testing.assert_close(pre.from_model(pre.to_model(x)), x)  # draws floor back to the level
