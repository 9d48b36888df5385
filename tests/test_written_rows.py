"""Rows written back look like the data they came from, and any number of them fits in memory.

- Samples and reconstructions written to CSV carry the training file's header (x0, x1, ...
  for a file without one) and write its whole-number columns as integers.
- ``score`` and ``encode`` on a folder of images name each row's file.
- ``sample`` and ``encode`` write a chunk at a time: the file equals the one-shot result
  for the same seed, and the peak memory of the process does not grow with the rows.
"""

import csv
import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from cli_helpers import call
from PIL import Image

import aevb
from aevb.data.columns import ColumnFormat
from aevb.scale import streaming

TINY = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "-q"]


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def wine_like(path, header: bool):
    """60 rows: a real-valued column and a column of whole numbers (written without a point)."""
    rng = np.random.default_rng(0)
    real, count = rng.normal(13.0, 0.8, 60), rng.integers(70, 160, 60)
    lines = (["alcohol,magnesium"] if header else []) + [f"{r:.2f},{c}" for r, c in zip(real, count)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("header", [True, False])
def test_sampled_csv_has_the_header_and_integer_columns_of_the_training_csv(tmp_path, header):
    wine_like(tmp_path / "wine.csv", header)
    assert call(["fit", tmp_path / "wine.csv", "--out", tmp_path / "run", *TINY]) == 0
    assert call(["sample", tmp_path / "run", "-n", "40", "--out", tmp_path / "s.csv"]) == 0
    rows = read_csv(tmp_path / "s.csv")
    assert rows[0] == (["alcohol", "magnesium"] if header else ["x0", "x1"])
    assert len(rows) == 41
    assert all(row[1].lstrip("-").isdigit() for row in rows[1:])  # integers, as in the file
    assert any("." in row[0] for row in rows[1:])  # the real column stays real
    # The same rows as the Python API draws, the integers rounded.
    drawn = aevb.load(tmp_path / "run").sample(40, seed=0)
    written = np.array(rows[1:], dtype=np.float64)
    np.testing.assert_allclose(written[:, 0], drawn[:, 0], rtol=1e-15)
    np.testing.assert_array_equal(written[:, 1], np.rint(drawn[:, 1]))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["columns"]
    assert saved["whole"] == [False, True]


def test_reconstructions_in_csv_keep_the_header(tmp_path):
    wine_like(tmp_path / "wine.csv", header=True)
    assert call(["fit", tmp_path / "wine.csv", "--out", tmp_path / "run", *TINY]) == 0
    assert call(["reconstruct", tmp_path / "run", tmp_path / "wine.csv", "--out", tmp_path / "r.csv"]) == 0
    rows = read_csv(tmp_path / "r.csv")
    assert rows[0] == ["alcohol", "magnesium"] and len(rows) == 61


def test_column_format_of_a_frame_and_a_damaged_field():
    import pandas as pd

    frame = pd.DataFrame({"a": [1.5, 2.0], "n": [1, 2]})
    assert ColumnFormat.of(frame, 2) == ColumnFormat(("a", "n"), (False, True))
    assert ColumnFormat.of(np.zeros((2, 3), dtype=np.int32), 3).whole == (True, True, True)
    with pytest.raises(aevb.AevbError, match="columns"):
        ColumnFormat.from_dict({"names": ["a"], "whole": [True]}, 2)


def test_a_damaged_columns_field_is_one_line(tmp_path, capsys):
    wine_like(tmp_path / "wine.csv", header=True)
    assert call(["fit", tmp_path / "wine.csv", "--out", tmp_path / "run", *TINY]) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["columns"] = {"names": ["a"], "whole": "yes"}
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert call(["sample", tmp_path / "run", "--out", tmp_path / "s.csv"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aevb: error:") and "'columns'" in err and err.count("\n") == 1


def image_folder(folder, names):
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (4, 4), dtype=np.uint8)).save(folder / name)


def test_score_and_encode_of_an_image_folder_name_each_row(tmp_path, capsys):
    names = ["b.png", "a.png", "c.png", "d.png"]
    image_folder(tmp_path / "images", names)
    assert call(["fit", tmp_path / "images", "--out", tmp_path / "run", *TINY]) == 0
    for command in (["score", "--k", "2"], ["encode"]):
        out = tmp_path / f"{command[0]}.csv"
        assert call([command[0], tmp_path / "run", tmp_path / "images", "--out", out, *command[1:]]) == 0
        rows = read_csv(out)
        assert rows[0][0] == "file" and [row[0] for row in rows[1:]] == sorted(names)
        npy = tmp_path / f"{command[0]}.npy"
        capsys.readouterr()
        assert call([command[0], tmp_path / "run", tmp_path / "images", "--out", npy, *command[1:]]) == 0
        listed = npy.with_suffix(".names.txt")
        assert listed.read_text().split("\n") == [*sorted(names), ""]
        assert str(listed) in capsys.readouterr().out
        values = np.load(npy)
        np.testing.assert_allclose(values, np.array([row[1:] for row in rows[1:]], dtype=np.float64), rtol=1e-12)


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 7)


@pytest.fixture
def model_dir(tmp_path):
    rows = np.random.default_rng(2).normal(size=(200, 3))
    aevb.VAE(epochs=1, hidden=(8,), latent_dim=2).fit(rows).save(tmp_path / "run")
    np.save(tmp_path / "rows.npy", rows)
    return tmp_path / "run"


def test_a_sample_past_the_free_disk_is_refused_before_drawing(tmp_path, model_dir, capsys, monkeypatch):
    from collections import namedtuple

    from aevb.vae import memory

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(memory.shutil, "disk_usage", lambda path: usage(10**6, 10**6 - 1000, 1000))
    capsys.readouterr()
    assert call(["sample", model_dir, "-n", "100", "--out", tmp_path / "s.npy"]) == 2  # 100 x 3 x 8 > 1000 bytes
    err = capsys.readouterr().err
    assert err.startswith("aevb: error: sampling 100 rows asks for about 2 KB of disk") and "it has 1 KB free" in err
    assert not (tmp_path / "s.npy").exists()
    monkeypatch.undo()
    assert call(["sample", model_dir, "-n", "100", "--out", tmp_path / "s.npy"]) == 0


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_chunked_sample_file_equals_the_one_shot_sample(tmp_path, model_dir, small_chunks, suffix):
    out = tmp_path / f"s{suffix}"
    assert call(["sample", model_dir, "-n", "45", "--seed", "3", "--out", out]) == 0
    model = aevb.load(model_dir)
    whole = model.sample(45, seed=3)
    written = np.load(out) if suffix == ".npy" else np.array(read_csv(out)[1:], dtype=np.float64)
    np.testing.assert_array_equal(written, whole)
    # each chunk of 7 rows has the draws of its own seed, whoever draws it
    np.testing.assert_array_equal(whole[7:14], model.sample(7, seed=streaming.chunk_seed(3, 1)))
    assert call(["sample", model_dir, "-n", "45", "--seed", "3", "--mean", "--out", out]) == 0
    written = np.load(out) if suffix == ".npy" else np.array(read_csv(out)[1:], dtype=np.float64)
    np.testing.assert_array_equal(written, model.sample(45, seed=3, mean=True))


def test_chunked_encode_file_equals_transform(tmp_path, model_dir, small_chunks):
    out = tmp_path / "z.npy"
    assert call(["encode", model_dir, tmp_path / "rows.npy", "--out", out]) == 0
    expected = aevb.load(model_dir).transform(np.load(tmp_path / "rows.npy"))
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-5, atol=1e-6)  # float32 matmuls of other batch sizes


def test_chunked_table_sample_equals_the_one_shot_sample(tmp_path, small_chunks):
    import pandas as pd

    frame = pd.DataFrame({"size": np.r_[np.linspace(1, 3, 39), np.nan], "colour": ["red", "blue"] * 20})
    aevb.TabularVAE(epochs=1, hidden=(8,), latent_dim=2).fit(frame).save(tmp_path / "run")
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"s{suffix}"
        assert call(["sample", tmp_path / "run", "-n", "30", "--out", out]) == 0
        written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        expected = aevb.load(tmp_path / "run").sample(30, seed=0)
        assert list(written["colour"]) == list(expected["colour"])
        np.testing.assert_allclose(written["size"], expected["size"])


PEAK = """
import json, resource, sys
from aevb.cli import run
small, large = json.loads(sys.argv[1])
assert run(small) == 0  # a small one first: imports, model, buffers
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert run(large) == 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
"""


def test_sampling_memory_does_not_grow_with_the_rows(tmp_path):
    """400,000 rows of 40 features are 128 MB in float64 (a one-shot draw holds several such
    copies); drawn and written a chunk at a time, the process's peak grows by less than 40 MB."""
    rows = np.random.default_rng(0).normal(size=(50, 40))
    aevb.VAE(epochs=1, hidden=(8,), latent_dim=2).fit(rows).save(tmp_path / "run")
    small, large = ([str(tmp_path / "run"), "-n", n, "--out", str(tmp_path / "s.npy")] for n in ("1000", "400000"))
    done = subprocess.run([sys.executable, "-c", PEAK, json.dumps([["sample", *small], ["sample", *large]])],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    grown = int(done.stdout.split()[-1])
    assert np.load(tmp_path / "s.npy", mmap_mode="r").shape == (400_000, 40)
    assert grown < 40e6, f"grew by {grown / 1e6:.0f} MB"


def test_encoding_memory_does_not_grow_with_the_rows(tmp_path):
    """400,000 memory-mapped rows of 40 float32 features: a one-shot encode reads them into
    arrays (their float64 copy alone is 128 MB); chunk by chunk, the peak of the arrays held
    (tracemalloc) grows by less than 40 MB."""
    aevb.VAE(epochs=1, hidden=(8,), latent_dim=2).fit(np.random.default_rng(0).normal(size=(50, 40))).save(tmp_path / "run")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "small.npy", rng.normal(size=(1000, 40)).astype(np.float32))
    large = np.lib.format.open_memmap(tmp_path / "large.npy", mode="w+", dtype=np.float32, shape=(400_000, 40))
    for start in range(0, len(large), 50_000):
        large[start : start + 50_000] = rng.normal(size=(50_000, 40))
    large.flush()
    del large
    tracemalloc.start()
    try:
        assert call(["encode", tmp_path / "run", tmp_path / "small.npy", "--out", tmp_path / "z.npy"]) == 0
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        assert call(["encode", tmp_path / "run", tmp_path / "large.npy", "--out", tmp_path / "z.npy"]) == 0
        grown = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert np.load(tmp_path / "z.npy", mmap_mode="r").shape == (400_000, 2)
    assert grown < 40e6, f"grew by {grown / 1e6:.0f} MB"
