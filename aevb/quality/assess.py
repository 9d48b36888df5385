"""All the quality figures of synthetic rows against real ones, in one dict."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import AevbError
from .learning import detection_auc, train_synthetic_test_real
from .metrics import (
    contingency_similarity,
    correlation_similarity,
    ks_complement,
    tv_complement,
)

NUMERIC_KINDS = ("continuous", "integer")


def assess(real: pd.DataFrame, synthetic: pd.DataFrame, kinds: dict[str, str], target: str | None = None,
           seed: int = 0) -> dict:
    """Figures for the columns named in ``kinds`` (name -> continuous, integer, categorical or
    boolean): ``columns`` (a shape score each), ``pairs`` (a trend score per pair), their means
    ``column_shapes`` and ``column_pair_trends``, ``detection_auc`` and, with a ``target``
    column, ``train_synthetic_test_real``."""
    names = list(kinds)
    missing = [n for n in names if n not in synthetic.columns]
    if missing:
        raise AevbError(f"the synthetic rows lack the column {missing[0]!r} of the real ones")
    if target is not None and target not in kinds:
        raise AevbError(f"--target {target!r} is not a modelled column; choose one of: {', '.join(names)}")
    numeric = {n: kinds[n] in NUMERIC_KINDS for n in names}
    columns = [
        {"column": n, "metric": "KSComplement" if numeric[n] else "TVComplement",
         "score": (ks_complement if numeric[n] else tv_complement)(real[n], synthetic[n])}
        for n in names
    ]
    pairs = []
    for a, b in combinations(names, 2):
        if numeric[a] and numeric[b]:
            score, metric = correlation_similarity(real[[a, b]], synthetic[[a, b]]), "CorrelationSimilarity"
        else:
            score = contingency_similarity(real[[a, b]], synthetic[[a, b]], (numeric[a], numeric[b]))
            metric = "ContingencySimilarity"
        pairs.append({"columns": f"{a} / {b}", "metric": metric, "score": score})
    categorical = {n for n in names if not numeric[n]}
    figures = {
        "real_rows": len(real), "synthetic_rows": len(synthetic),
        "column_shapes": float(np.nanmean([c["score"] for c in columns])),
        "column_pair_trends": float(np.nanmean([p["score"] for p in pairs])) if pairs else None,
        "detection_auc": detection_auc(real[names], synthetic[names], categorical, seed),
        "columns": columns, "pairs": pairs,
    }
    if target is not None:
        figures["train_synthetic_test_real"] = train_synthetic_test_real(real[names], synthetic[names], target, categorical, seed)
    return figures


def model_frames(model, real_source, synthetic_source=None, seed: int = 0):
    """(real, synthetic, kinds) for a fitted model: the real rows of ``real_source``, the synthetic
    rows of ``synthetic_source`` or, without one, as many rows sampled from the model; a numeric
    array's columns are named x0, x1, ... and taken as continuous."""
    if hasattr(model, "schema_"):
        real = model.read_data(real_source)
        kinds = {c.name: c.kind for c in model.schema_.columns}
        synthetic = model.read_data(synthetic_source) if synthetic_source is not None else model.sample(len(real), seed=seed)
        return real, synthetic, kinds
    real = np.asarray(model.read_data(real_source).values)
    synthetic = (np.asarray(model.read_data(synthetic_source).values) if synthetic_source is not None
                 else model.sample(len(real), seed=seed))
    if synthetic.shape[1] != real.shape[1]:
        raise AevbError(f"the synthetic rows have {synthetic.shape[1]} columns, the real ones {real.shape[1]}")
    names = [f"x{j}" for j in range(real.shape[1])]
    return pd.DataFrame(real, columns=names), pd.DataFrame(synthetic, columns=names), dict.fromkeys(names, "continuous")


def format_quality(figures: dict) -> str:
    """The figures as lines of text: the summary, then each column and pair."""
    lines = [
        f"real rows {figures['real_rows']}, synthetic rows {figures['synthetic_rows']}",
        f"column shapes (KS/TV complement, 1 is best): {figures['column_shapes']:.4f}",
    ]
    if figures["column_pair_trends"] is not None:
        lines.append(f"column pair trends (correlation/contingency similarity, 1 is best): {figures['column_pair_trends']:.4f}")
    lines.append(f"real-vs-synthetic classifier AUC (0.5 is best): {figures['detection_auc']:.4f}")
    if "train_synthetic_test_real" in figures:
        t = figures["train_synthetic_test_real"]
        lines.append(f"{t['measure']} on held-out real rows predicting {t['target']}: "
                     f"trained on synthetic {t['train_synthetic']:.4f}, on real {t['train_real']:.4f}")
    lines.append("column  metric  score")
    lines += [f"{c['column']}  {c['metric']}  {c['score']:.4f}" for c in figures["columns"]]
    return "\n".join(lines)
