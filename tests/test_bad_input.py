"""Every bad input ends in exit status 2 and one line "aevb: error: ..." that names the problem."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from cli_helpers import call
from PIL import Image

import aevb
from aevb.cli import main

N_FEATURES = 6



def assert_usage_error(capsys, args, *fragments: str) -> str:
    """Run ``aevb ARGS``; check status 2 and a one-line message containing every fragment."""
    capsys.readouterr()
    code = call(args)
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    message = lines[0]
    assert message.startswith("aevb: error: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def fit_args(source, out, *extra):
    return ["fit", source, "--out", out, "--epochs", 1, "--hidden", 8, "--latent-dim", 2, "--quiet", *extra]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A tiny fitted model on 60 x 6 continuous rows: (data path, model folder)."""
    folder = tmp_path_factory.mktemp("fitted")
    data_path = folder / "x.npy"
    np.save(data_path, np.random.default_rng(0).normal(size=(60, N_FEATURES)))
    model = folder / "model"
    try:
        main([str(a) for a in fit_args(data_path, model)])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    return data_path, model


@pytest.fixture
def good_data(fitted):
    return fitted[0]


# -- data files ------------------------------------------------------------------------------


def test_missing_file(tmp_path, capsys):
    assert_usage_error(capsys, fit_args(tmp_path / "absent_data.npy", tmp_path / "m"), "absent_data.npy")
    assert not (tmp_path / "m").exists()


def test_unsupported_suffix(tmp_path, capsys):
    path = tmp_path / "table.txt"
    path.write_text("1,2\n3,4\n")
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "table.txt", ".txt")


@pytest.mark.parametrize("shape", [(0, N_FEATURES), (5, 0)], ids=["no-rows", "no-columns"])
def test_empty_array(tmp_path, capsys, shape):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape))
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "empty.npy", str(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_value_names_row_and_column(tmp_path, capsys, bad):
    values = np.random.default_rng(0).normal(size=(10, 3))
    values[4, 2] = bad
    path = tmp_path / "holes.npy"
    np.save(path, values)
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "holes.npy", "row 4", "column 2")


def test_csv_non_numeric_column_is_named(tmp_path, capsys):
    path = tmp_path / "table.csv"
    path.write_text("height,weight,colour\n1.5,60,7\n1.7,72,blue\n")
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "table.csv", "colour", "blue")


def test_ragged_csv(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("1,2,3\n4,5,6\n7,8\n")
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "ragged.csv", "line 3")


@pytest.mark.parametrize("text", ["", "\n\n"], ids=["zero-bytes", "blank-lines"])
def test_empty_csv(tmp_path, capsys, text):
    path = tmp_path / "nothing.csv"
    path.write_text(text)
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "nothing.csv")


def test_csv_with_only_a_header(tmp_path, capsys):
    path = tmp_path / "header_only.csv"
    path.write_text("a,b,c\n")
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "header_only.csv")


def test_object_npy(tmp_path, capsys):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1.0, "a"], [None, 2]], dtype=object), allow_pickle=True)
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "objects.npy")


@pytest.mark.parametrize(
    "array, dtype_text",
    [(np.array([["a", "b"], ["c", "d"]]), "<U1"), (np.ones((4, 2)) + 1j, "complex128")],
    ids=["strings", "complex"],
)
def test_non_real_dtype_is_named(tmp_path, capsys, array, dtype_text):
    path = tmp_path / "odd.npy"
    np.save(path, array)
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "odd.npy", dtype_text)


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_random_bytes_as_array_file(tmp_path, capsys, suffix):
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), f"noise{suffix}")


def test_truncated_npy(tmp_path, capsys):
    path = tmp_path / "cut.npy"
    np.save(path, np.ones((50, N_FEATURES)))
    path.write_bytes(path.read_bytes()[:200])
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "cut.npy")


def test_zero_byte_npy(tmp_path, capsys):
    path = tmp_path / "zero.npy"
    path.write_bytes(b"")
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "zero.npy")


def test_random_bytes_png_in_image_folder(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "fine.png")
    (folder / "broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    assert_usage_error(capsys, fit_args(folder, tmp_path / "m"), "broken.png")


def test_folder_without_images(tmp_path, capsys):
    folder = tmp_path / "no_pictures"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert_usage_error(capsys, fit_args(folder, tmp_path / "m"), "no_pictures")


def test_images_of_mixed_sizes_name_both_files(tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "small.png")
    Image.fromarray(np.zeros((6, 4), np.uint8)).save(folder / "tall.png")
    assert_usage_error(capsys, fit_args(folder, tmp_path / "m"), "small.png", "tall.png")


def test_npz_with_two_arrays_needs_key(tmp_path, capsys):
    path = tmp_path / "pair.npz"
    np.savez(path, first=np.ones((5, 2)), second=np.zeros((5, 2)))
    assert_usage_error(capsys, fit_args(path, tmp_path / "m"), "pair.npz", "--key", "first", "second")


def test_npz_with_wrong_key(tmp_path, capsys):
    path = tmp_path / "pair.npz"
    np.savez(path, first=np.ones((5, 2)), second=np.zeros((5, 2)))
    assert_usage_error(capsys, fit_args(path, tmp_path / "m", "--key", "third"), "pair.npz", "third", "first")


def test_bernoulli_on_non_binary_data(good_data, tmp_path, capsys):
    assert_usage_error(capsys, fit_args(good_data, tmp_path / "m", "--likelihood", "bernoulli"), "bernoulli")
    assert not (tmp_path / "m" / "config.json").exists()


@pytest.mark.parametrize("command", ["score", "evaluate", "encode"])
def test_data_narrower_than_model(fitted, tmp_path, capsys, command):
    _, model = fitted
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((5, 4)))
    extra = {"score": ["--out", tmp_path / "s.csv"], "evaluate": ["--k", 2], "encode": ["--out", tmp_path / "z.npy"]}
    message = assert_usage_error(capsys, [command, model, narrow, *extra[command]], "column")
    assert re.search(r"\b4\b", message) and re.search(rf"\b{N_FEATURES}\b", message), message


# -- options -----------------------------------------------------------------------------------


BAD_FIT_OPTIONS = [
    (["--latent-dim", "0"], ["latent", "0"]),
    (["--latent-dim", "-3"], ["latent", "-3"]),
    (["--hidden", "16,abc"], ["16,abc"]),
    (["--hidden", "0"], ["hidden"]),
    (["--validation-fraction", "1.5"], ["validation", "1.5"]),
    (["--likelihood", "nonsense"], ["likelihood", "nonsense"]),
    (["--epochs", "0"], ["epochs"]),
    (["--learning-rate", "nan"], ["learning", "nan"]),
]


@pytest.mark.parametrize("options, fragments", BAD_FIT_OPTIONS, ids=[" ".join(o) for o, _ in BAD_FIT_OPTIONS])
def test_bad_fit_option(good_data, tmp_path, capsys, options, fragments):
    # fit_args sets --latent-dim 2 first; a later option of the same name wins.
    assert_usage_error(capsys, fit_args(good_data, tmp_path / "m", *options), *fragments)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_k_zero(fitted, tmp_path, capsys):
    data_path, model = fitted
    assert_usage_error(capsys, ["score", model, data_path, "--k", 0, "--out", tmp_path / "s.csv"], "--k")
    assert_usage_error(capsys, ["evaluate", model, data_path, "--k", 0], "--k")
    assert not (tmp_path / "s.csv").exists()


def test_n_zero(fitted, tmp_path, capsys):
    _, model = fitted
    assert_usage_error(capsys, ["sample", model, "-n", 0, "--out", tmp_path / "s.npy"], "-n")
    assert not (tmp_path / "s.npy").exists()


def test_sample_without_destination(fitted, capsys):
    _, model = fitted
    assert_usage_error(capsys, ["sample", model], "--out", "--png")


def test_sample_to_unsupported_suffix(fitted, tmp_path, capsys):
    _, model = fitted
    assert_usage_error(capsys, ["sample", model, "-n", 2, "--out", tmp_path / "rows.txt"], "rows.txt")


# -- model folders ------------------------------------------------------------------------------

MODEL_COMMANDS = {
    "sample": lambda model, data, tmp: ["sample", model, "-n", 2, "--out", tmp / "s.npy"],
    "encode": lambda model, data, tmp: ["encode", model, data, "--out", tmp / "z.npy"],
    "score": lambda model, data, tmp: ["score", model, data, "--k", 2, "--out", tmp / "s.csv"],
    "evaluate": lambda model, data, tmp: ["evaluate", model, data, "--k", 2],
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_model_folder_that_does_not_exist(good_data, tmp_path, capsys, command):
    model = tmp_path / "no_such_model"
    assert_usage_error(capsys, MODEL_COMMANDS[command](model, good_data, tmp_path), "no_such_model")


def test_folder_that_is_not_a_model(good_data, tmp_path, capsys):
    model = tmp_path / "just_a_folder"
    model.mkdir()
    assert_usage_error(capsys, MODEL_COMMANDS["sample"](model, good_data, tmp_path), "just_a_folder")


@pytest.fixture
def model_copy(fitted, tmp_path):
    copy = tmp_path / "copied_model"
    shutil.copytree(fitted[1], copy)
    return copy


@pytest.mark.parametrize("damaged", ["config.json", "model.safetensors"])
@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_truncated_model_file(good_data, model_copy, tmp_path, capsys, command, damaged):
    path = model_copy / damaged
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_usage_error(capsys, MODEL_COMMANDS[command](model_copy, good_data, tmp_path), damaged)


def test_future_format_version(good_data, model_copy, tmp_path, capsys):
    config_path = model_copy / "config.json"
    config = json.loads(config_path.read_text())
    config["format_version"] = 999
    config_path.write_text(json.dumps(config))
    assert_usage_error(capsys, MODEL_COMMANDS["sample"](model_copy, good_data, tmp_path), "999")


def test_config_that_is_not_an_aevb_config(good_data, model_copy, tmp_path, capsys):
    (model_copy / "config.json").write_text('{"hello": "world"}\n')
    assert_usage_error(capsys, MODEL_COMMANDS["sample"](model_copy, good_data, tmp_path), "config.json")


def test_config_with_wrong_width_for_weights(good_data, model_copy, tmp_path, capsys):
    config_path = model_copy / "config.json"
    config = json.loads(config_path.read_text())
    config["n_features"] = N_FEATURES + 1
    config["preprocessor"]["shift"].append(0.0)
    config["preprocessor"]["scale"].append(1.0)
    config_path.write_text(json.dumps(config))
    assert_usage_error(capsys, MODEL_COMMANDS["sample"](model_copy, good_data, tmp_path), "model.safetensors")


# -- from Python ------------------------------------------------------------------------------------


def test_python_bad_option_raises_aevb_error():
    model = aevb.VAE(latent_dim=0)  # scikit-learn's contract: stored as given, checked by fit
    with pytest.raises(aevb.AevbError, match="latent_dim") as caught:
        model.fit(np.ones((10, 2)))
    assert isinstance(caught.value, ValueError)


def test_python_sample_before_fit_raises_aevb_error():
    with pytest.raises(aevb.AevbError, match="fit"):
        aevb.VAE().sample(3)


def test_python_fit_on_nan_raises_aevb_error():
    values = np.ones((10, 2))
    values[3, 1] = np.nan
    with pytest.raises(aevb.AevbError, match="row 3, column 1"):
        aevb.VAE(epochs=1, hidden=(4,), latent_dim=1).fit(values)
