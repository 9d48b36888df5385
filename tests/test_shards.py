"""A folder of .npy shards is read like the one .npy of their rows: memory-mapped,
scored, evaluated and trained on in chunks, with the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_helpers import call, save_small_level_model

import aevb
from aevb.data import loaders as data
from aevb.data.shards import Shards, is_lazy
from aevb.errors import AevbError
from aevb.scale import chunked, streaming

SIZES = (70, 1, 100, 129)  # 300 rows, shard boundaries that chunks cross


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    rows = save_small_level_model(folder, seed=1)
    (folder / "shards").mkdir()
    for i, part in enumerate(np.split(rows, np.cumsum(SIZES)[:-1])):
        np.save(folder / "shards" / f"part-{i:02d}.npy", part)
    return folder, rows


def test_shards_read_like_the_concatenated_array(fitted):
    folder, rows = fitted
    shards = Shards(sorted((folder / "shards").glob("*.npy")))
    assert is_lazy(shards) and len(shards) == 300 and shards.shape == (300, 4) and shards.ndim == 2
    for start, stop in [(0, 300), (60, 75), (70, 71), (69, 172), (250, 400), (5, 5)]:
        np.testing.assert_array_equal(shards[start:stop], rows[start:stop])
    index = np.random.default_rng(0).permutation(300)[:50]
    np.testing.assert_array_equal(shards[index], rows[index])
    np.testing.assert_array_equal(shards[-1], rows[-1])
    np.testing.assert_array_equal(np.asarray(shards), rows)
    loaded = data.load(folder / "shards", memory_map=True).values
    assert isinstance(loaded, Shards)
    np.testing.assert_array_equal(data.load(folder / "shards").values, rows)  # in memory otherwise


@pytest.mark.parametrize("chunk_rows", [64, streaming.CHUNK_ROWS])
def test_scores_and_evaluation_over_shards_equal_the_single_file(fitted, monkeypatch, chunk_rows):
    folder, _ = fitted
    monkeypatch.setattr(streaming, "CHUNK_ROWS", chunk_rows)
    for source in ("rows.npy", "shards"):
        assert call(["score", folder / "run", folder / source, "--out", folder / f"{source}.s.npy", "--k", 5]) == 0
        assert call(["evaluate", folder / "run", folder / source, "--k", 5, "--json", folder / f"{source}.json"]) == 0
        assert call(["encode", folder / "run", folder / source, "--out", folder / f"{source}.z.npy"]) == 0
    np.testing.assert_array_equal(np.load(folder / "shards.s.npy"), np.load(folder / "rows.npy.s.npy"))
    assert json.loads((folder / "shards.json").read_text()) == json.loads((folder / "rows.npy.json").read_text())
    np.testing.assert_array_equal(np.load(folder / "shards.z.npy"), np.load(folder / "rows.npy.z.npy"))


def test_chunked_fit_on_shards_gives_the_weights_of_the_single_file(fitted, monkeypatch, tmp_path):
    folder, _ = fitted
    monkeypatch.setattr(chunked, "MAX_CHUNK_ROWS", 64)
    seen = []
    original = chunked.ChunkedRows.chunk
    monkeypatch.setattr(chunked.ChunkedRows, "chunk", lambda self, i: seen.append(i) or original(self, i))
    options = ["--epochs", 2, "--hidden", 8, "--latent-dim", 2, "--batch-size", 16, "--in-memory-mib", 0.001, "-q"]
    assert call(["fit", folder / "rows.npy", "--out", tmp_path / "file", *options]) == 0
    assert call(["fit", folder / "shards", "--out", tmp_path / "shards", *options]) == 0
    assert seen  # the chunked path
    left, right = aevb.load(tmp_path / "file"), aevb.load(tmp_path / "shards")
    for (name, a), b in zip(left.model_.state_dict().items(), right.model_.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_shard_of_another_width_is_named(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((5, 3)))
    np.save(tmp_path / "b.npy", np.zeros((5, 4)))
    with pytest.raises(AevbError, match=r"b\.npy has 4 columns, but a\.npy has 3"):
        data.load(tmp_path, memory_map=True)
    np.save(tmp_path / "b.npy", np.zeros((5, 3), dtype=np.float32))
    with pytest.raises(AevbError, match=r"b\.npy holds float32, but a\.npy holds float64"):
        data.load(tmp_path)
    (tmp_path / "b.npy").unlink()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(AevbError, match=r"notes\.txt"):
        data.load(tmp_path)
    with pytest.raises(AevbError, match=r"notes\.txt"):
        streaming.readable_lazily(tmp_path)
