"""Property-based tests of hostile inputs: every loader and command ends either in a
correct result or in one line "aevb: error: ..." with exit status 2, never a traceback.

Examples are derandomized (the same cases on every run, so a failure replays);
the number of cases tried is printed in the test summary.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import call
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import aevb
from aevb.data import loaders as data

CASES: Counter = Counter()  # cases tried per test, printed by conftest.py
FAST = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(FAST, max_examples=25)  # cases that train or load a model
FIT = {
    "vae": ["--epochs", "1", "--hidden", "4", "--latent-dim", "1", "--batch-size", "64", "--quiet"],
    "ppca": ["--latent-dim", "1", "--quiet"],
    "fa": ["--latent-dim", "1", "--max-iter", "20", "--quiet"],
}


def load_or_error(path: Path, key: str | None = None):
    """data.load's answer: a Dataset that meets the loaders' promise, or an AevbError."""
    try:
        dataset = data.load(path, key)
    except aevb.AevbError as error:
        assert "\n" not in str(error), str(error)
        return None
    values = dataset.values
    assert values.dtype == np.float64 and values.ndim == 2 and values.size > 0
    assert np.isfinite(values).all()
    if dataset.image_shape is not None:
        assert int(np.prod(dataset.image_shape)) == values.shape[1]
    return dataset


def assert_cli(capsys, args) -> int:
    """Run ``aevb ARGS``: exit 0, or exit 2 with exactly one line 'aevb: error: ...'."""
    capsys.readouterr()
    code = call(args)
    err = capsys.readouterr().err
    if code != 0:
        assert code == 2, f"exit {code}: {err}"
        assert len(err.splitlines()) == 1 and err.startswith("aevb: error: "), err
    return code


# -- arrays of every kind, in every container ---------------------------------------------------

DTYPES = st.one_of(
    hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(),
)
ARRAYS = DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)))
HUGE = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3)),
                  elements=st.sampled_from([0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, 5e-324, 1.7e308, 3.0]))


def expected_rows(array: np.ndarray) -> np.ndarray | None:
    """What a loader must return for ``array``, or None where an error is right."""
    if array.dtype.kind not in "biuf" or array.size == 0:
        return None
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        return None
    if array.ndim in (0,) or array.ndim > 4 or (array.ndim == 4 and array.shape[-1] not in (1, 3, 4)):
        return None
    return values.reshape(len(values), -1) if array.ndim > 1 else values.reshape(-1, 1)


@FAST
@given(array=st.one_of(ARRAYS, HUGE), container=st.sampled_from([".npy", ".npz"]))
def test_any_array_file(array, container):
    CASES["array files (.npy/.npz, any dtype and shape)"] += 1
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"a{container}"
        if container == ".npy":
            np.save(path, array)
        else:
            np.savez(path, values=array)
        dataset = load_or_error(path)
    want = expected_rows(array)
    if want is None:
        assert dataset is None, f"{array.dtype} {array.shape} loaded"
    else:
        assert dataset is not None, f"{array.dtype} {array.shape} refused"
        np.testing.assert_array_equal(dataset.values, want)


def test_object_arrays_are_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pickled > " + str(tmp_path / "ran"),))

    np.save(tmp_path / "evil.npy", np.array([Boom()], dtype=object), allow_pickle=True)
    assert load_or_error(tmp_path / "evil.npy") is None
    assert not (tmp_path / "ran").exists()


# -- random and damaged bytes ------------------------------------------------------------------

def valid_file_bytes(suffix: str) -> bytes:
    buffer = io.BytesIO()
    values = np.arange(12.0).reshape(4, 3)
    if suffix == ".npy":
        np.save(buffer, values)
    elif suffix == ".npz":
        np.savez(buffer, values=values)
    elif suffix == ".csv":
        buffer.write(b"a,b,c\n" + b"\n".join(b"%g,%g,%g" % tuple(row) for row in values) + b"\n")
    else:
        Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4)).save(buffer, format="PNG")
    return buffer.getvalue()


@st.composite
def damaged(draw, suffix: str) -> bytes:
    """Random bytes, or a valid file truncated or with bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=400))
    original = bytearray(valid_file_bytes(suffix))
    if draw(st.booleans()):
        return bytes(original[: draw(st.integers(0, len(original)))])
    for _ in range(draw(st.integers(1, 8))):
        original[draw(st.integers(0, len(original) - 1))] = draw(st.integers(0, 255))
    return bytes(original)


@FAST
@given(st.sampled_from([".npy", ".npz", ".csv", ".png"]).flatmap(lambda s: st.tuples(st.just(s), damaged(s))))
def test_random_or_damaged_bytes(case):
    suffix, content = case
    CASES["random or damaged .npy/.npz/.csv/.png bytes"] += 1
    with tempfile.TemporaryDirectory() as folder:
        if suffix == ".png":
            path = Path(folder) / "images"
            path.mkdir()
            (path / "0.png").write_bytes(valid_file_bytes(".png"))
            (path / "1.png").write_bytes(content)
        else:
            path = Path(folder) / f"f{suffix}"
            path.write_bytes(content)
        load_or_error(path)


# -- tables --------------------------------------------------------------------------------------

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**400, 10**400).map(str),
    st.sampled_from(["", " ", "1e300", "-1e309", "nan", "inf", "0x10", "1_000", "١٢", "  2  ", '"3"', "a,b"]),
    st.text(max_size=4),
)


@FAST
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=4), max_size=6),
       encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_any_csv(rows, encoding):
    CASES["CSV tables (ragged, text, huge, odd encodings)"] += 1
    text = "\n".join(",".join(row) for row in rows)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(text.encode(encoding, errors="replace"))
        dataset = load_or_error(path)
    if dataset is not None and encoding == "utf-8":
        assert dataset.values.shape[0] <= len(rows)


# -- image folders --------------------------------------------------------------------------------

IMAGE = st.tuples(st.integers(1, 5), st.integers(1, 5), st.sampled_from(["L", "RGB", "RGBA", "1", "I;16", "P", "LA"]))


@FAST
@given(images=st.lists(IMAGE, min_size=1, max_size=4), suffix=st.sampled_from([".png", ".PNG", ".jpg"]))
def test_any_image_folder(images, suffix):
    CASES["image folders (mixed sizes and modes)"] += 1
    with tempfile.TemporaryDirectory() as folder:
        for i, (width, height, mode) in enumerate(images):
            image = Image.new(mode, (width, height))
            if suffix == ".jpg" and mode not in ("L", "RGB"):
                image = image.convert("RGB")
            image.save(Path(folder) / f"{i}{suffix}")
        dataset = load_or_error(Path(folder))
    sizes = {(w, h) for w, h, _ in images}
    assert (dataset is not None) == (len(sizes) == 1), images
    if dataset is not None:
        assert dataset.values.shape[0] == len(images)


# -- the command line -------------------------------------------------------------------------------

NAMES = st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b".."))


@SLOW
@given(array=st.one_of(HUGE, ARRAYS), name=NAMES, model=st.sampled_from(sorted(FIT)))
def test_fit_on_anything_under_any_name(capsys, array, name, model):
    """``aevb fit`` under a file and run-folder name of arbitrary bytes (non-UTF-8 included)."""
    CASES["aevb fit on arbitrary arrays and byte names"] += 1
    with tempfile.TemporaryDirectory() as folder:
        stem = os.fsdecode(name)
        path = Path(folder) / (stem + ".npy")
        np.save(path, array)
        run = Path(folder) / (stem + "-run")
        if assert_cli(capsys, ["fit", path, "--out", run, "--model", model, *FIT[model]]) == 0:
            model = aevb.load(run)
            assert np.isfinite(model.score_samples(np.load(path).reshape(len(array), -1), k=2)).all()
            assert assert_cli(capsys, ["sample", run, "-n", 3, "--out", run / "s.npy"]) == 0


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_model")
    rows = np.random.default_rng(0).normal(size=(30, 3))
    aevb.VAE(epochs=1, hidden=(4,), latent_dim=1).fit(rows).save(folder / "model")
    np.save(folder / "rows.npy", rows)
    return folder


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def damaged_config(draw, original: dict) -> bytes:
    """config.json with one field (at any depth) replaced by arbitrary JSON, or damaged bytes."""
    if draw(st.booleans()):
        text = bytearray(json.dumps(original).encode())
        for _ in range(draw(st.integers(1, 4))):
            text[draw(st.integers(0, len(text) - 1))] = draw(st.integers(0, 255))
        return bytes(text)
    config = json.loads(json.dumps(original))
    node = config
    while isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
            node[key] = draw(JSON_VALUES)
            break
        node = node[key] if isinstance(node[key], dict) else {}
    return json.dumps(config, allow_nan=True).encode()


@SLOW
@given(data=st.data(), which=st.sampled_from(["config.json", "model.safetensors"]))
def test_damaged_model_folder(capsys, model_folder, data, which):
    CASES["damaged config.json / model.safetensors"] += 1
    source = model_folder / "model"
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "model"
        model.mkdir()
        for name in ("config.json", "model.safetensors"):
            (model / name).write_bytes((source / name).read_bytes())
        if which == "config.json":
            content = data.draw(damaged_config(json.loads((source / which).read_text())))
        else:
            content = bytearray((source / which).read_bytes())
            for _ in range(data.draw(st.integers(1, 6))):
                content[data.draw(st.integers(0, min(len(content) - 1, 400)))] = data.draw(st.integers(0, 255))
        (model / which).write_bytes(bytes(content))
        for command in (["sample", model, "-n", 2, "--out", Path(folder) / "s.npy"],
                        ["score", model, model_folder / "rows.npy", "--k", 2, "--out", Path(folder) / "s.csv"]):
            assert_cli(capsys, command)

