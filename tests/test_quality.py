"""Synthetic-data quality: each score against a value worked out by hand, the learners against
cases whose answer is known, the command on a table and on an array model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aevb import PPCA
from aevb.cli import run as run_cli
from aevb.quality.assess import assess
from aevb.quality.learning import detection_auc, train_synthetic_test_real
from aevb.quality.metrics import contingency_similarity, correlation_similarity, ks_complement, tv_complement


def test_ks_complement_by_hand():
    real = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    assert ks_complement(real, pd.Series([1.0, 2.0, 3.0, 4.0])) == 1.0
    # CDFs differ most on [4, 5): 1 - 0.5
    assert ks_complement(real, pd.Series([3.0, 4.0, 5.0, 6.0])) == pytest.approx(0.5, abs=1e-12)
    assert ks_complement(real, pd.Series([10.0, 11.0])) == 0.0


def test_tv_complement_by_hand():
    real = pd.Series(["a", "a", "b", "b", None])
    assert tv_complement(real, pd.Series(["a", "a", "a", "b"])) == pytest.approx(0.75, abs=1e-12)
    assert tv_complement(real, pd.Series(["c"])) == 0.0
    assert tv_complement(pd.Series([True, False]), pd.Series([False, True])) == 1.0


def test_correlation_similarity_by_hand():
    x = np.arange(10.0)
    up, down = pd.DataFrame({"a": x, "b": 2 * x}), pd.DataFrame({"a": x, "b": -x})
    assert correlation_similarity(up, up) == pytest.approx(1.0)
    assert correlation_similarity(up, down) == pytest.approx(0.0)


def test_contingency_similarity_by_hand():
    real = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["p", "q", "p", "q"]})
    synthetic = pd.DataFrame({"a": ["x", "x", "x", "y"], "b": ["p", "p", "q", "q"]})
    # joint frequencies: real 1/4 each; synthetic xp 1/2, xq 1/4, yq 1/4 -> TV = (1/4 + 0 + 1/4 + 0) / 2
    assert contingency_similarity(real, synthetic, (False, False)) == pytest.approx(0.75, abs=1e-12)
    # a numeric column is binned over the real range: all synthetic values fall in the top bin
    numbers = pd.DataFrame({"a": ["x"] * 4, "n": [0.0, 1.0, 2.0, 10.0]})
    high = pd.DataFrame({"a": ["x"] * 4, "n": [10.0, 11.0, 50.0, 10.0]})
    assert contingency_similarity(numbers, high, (False, True)) == pytest.approx(0.25, abs=1e-12)


def _frame(n, rng):
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": x + 0.3 * rng.normal(size=n), "c": np.where(x > 0, "hi", "lo")})


def test_detection_auc_is_half_for_one_distribution_and_one_for_two():
    rng = np.random.default_rng(0)
    same = detection_auc(_frame(400, rng), _frame(400, rng), {"c"})
    apart = _frame(400, rng)
    apart["x"] += 5.0
    assert abs(same - 0.5) < 0.08
    assert detection_auc(_frame(400, rng), apart, {"c"}) > 0.99


def test_train_synthetic_test_real_sees_a_broken_target():
    rng = np.random.default_rng(1)
    real = _frame(500, rng)
    broken = _frame(500, rng)
    broken["c"] = rng.permutation(broken["c"].to_numpy())  # the link from x to c is gone
    figures = train_synthetic_test_real(real, broken, "c", {"c"})
    assert figures["measure"] == "accuracy" and figures["train_real"] > 0.9
    assert figures["train_synthetic"] < 0.7
    numeric = train_synthetic_test_real(real, _frame(500, rng), "y", {"c"})
    assert numeric["measure"] == "r2" and numeric["train_synthetic"] > 0.8


def test_assess_averages_its_parts():
    rng = np.random.default_rng(2)
    figures = assess(_frame(200, rng), _frame(200, rng), {"x": "continuous", "y": "continuous", "c": "categorical"}, "c")
    assert figures["column_shapes"] == pytest.approx(np.mean([c["score"] for c in figures["columns"]]))
    assert [p["metric"] for p in figures["pairs"]] == ["CorrelationSimilarity", "ContingencySimilarity", "ContingencySimilarity"]
    assert figures["column_pair_trends"] == pytest.approx(np.mean([p["score"] for p in figures["pairs"]]))


def test_quality_command_on_a_table_and_an_array_model(tmp_path, capsys):
    rng = np.random.default_rng(3)
    real = _frame(150, rng)
    real.loc[::9, "y"] = np.nan
    real.to_csv(tmp_path / "real.csv", index=False)
    _frame(150, rng).to_csv(tmp_path / "other.csv", index=False)
    fit = ["fit", str(tmp_path / "real.csv"), "--out", str(tmp_path / "t"), "--table", "--epochs", "3",
           "--hidden", "16", "--latent-dim", "2", "--quiet"]
    assert run_cli(fit) == 0
    out = tmp_path / "q.json"
    assert run_cli(["quality", str(tmp_path / "t"), str(tmp_path / "real.csv"), "--target", "c", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["synthetic_rows"] == 150 and {c["column"] for c in figures["columns"]} == {"x", "y", "c"}
    assert "\\n" not in capsys.readouterr().out
    given = ["quality", str(tmp_path / "t"), str(tmp_path / "real.csv"), "--synthetic", str(tmp_path / "other.csv"),
             "--json", str(out)]
    assert run_cli(given) == 0
    assert json.loads(out.read_text())["detection_auc"] < 0.75  # the same distribution, other draws
    numbers = rng.normal(size=(120, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    np.savetxt(tmp_path / "numbers.csv", numbers, delimiter=",")
    PPCA(latent_dim=2).fit(numbers).save(tmp_path / "p")
    assert run_cli(["quality", str(tmp_path / "p"), str(tmp_path / "numbers.csv"), "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert [c["metric"] for c in figures["columns"]] == ["KSComplement"] * 3 and figures["column_shapes"] > 0.8


def test_column_metrics_agree_with_sdmetrics():
    sdmetrics = pytest.importorskip("sdmetrics.single_column")
    pairs = pytest.importorskip("sdmetrics.column_pairs")
    rng = np.random.default_rng(4)
    real, synthetic = _frame(300, rng), _frame(250, rng)
    real.loc[::11, "x"] = np.nan
    assert ks_complement(real["x"], synthetic["x"]) == pytest.approx(sdmetrics.KSComplement.compute(real["x"], synthetic["x"]), abs=1e-6)
    assert tv_complement(real["c"], synthetic["c"]) == pytest.approx(sdmetrics.TVComplement.compute(real["c"], synthetic["c"]), abs=1e-6)
    ours = correlation_similarity(real[["x", "y"]], synthetic[["x", "y"]])
    assert ours == pytest.approx(pairs.CorrelationSimilarity.compute(real[["x", "y"]], synthetic[["x", "y"]]), abs=1e-6)
    both = real.assign(d=np.where(real["y"] > 0, "p", "q")), synthetic.assign(d=np.where(synthetic["y"] > 0, "p", "q"))
    ours = contingency_similarity(both[0][["c", "d"]], both[1][["c", "d"]], (False, False))
    assert ours == pytest.approx(pairs.ContingencySimilarity.compute(both[0][["c", "d"]], both[1][["c", "d"]]), abs=1e-6)
