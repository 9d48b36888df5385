"""What a learner makes of synthetic rows: can it tell them from real ones, and does a model
trained on them predict real data as well as one trained on real rows?

Both use scikit-learn's histogram gradient boosting, which takes holes as they are and
category columns natively.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split

FOLDS = 5
TEST_FRACTION = 0.3


def features(frames: list[pd.DataFrame], categorical: set[str]) -> list[pd.DataFrame]:
    """The frames with each category column as integer codes shared by all of them
    (holes stay NaN), every other column as floats."""
    out = [pd.DataFrame(index=f.index) for f in frames]
    for name in frames[0].columns:
        if name in categorical:
            labels = pd.Index(sorted({str(v) for f in frames for v in f[name].dropna()}))
            for o, f in zip(out, frames):
                codes = labels.get_indexer(f[name].map(str, na_action="ignore").fillna(""))
                o[name] = np.where(f[name].notna(), codes, np.nan)
        else:
            for o, f in zip(out, frames):
                o[name] = pd.to_numeric(f[name], errors="coerce").astype(float)
    return out


def _booster(kind, names: list[str], categorical: set[str], seed: int):
    mask = [name in categorical for name in names]
    return kind(categorical_features=mask if any(mask) else None, random_state=seed, max_iter=100)


def detection_auc(real: pd.DataFrame, synthetic: pd.DataFrame, categorical: set[str], seed: int = 0) -> float:
    """Cross-validated ROC AUC of a classifier telling real rows (1) from synthetic ones (0):
    0.5 when it cannot tell them apart, 1 when it always can."""
    a, b = features([real, synthetic], categorical)
    X = pd.concat([a, b], ignore_index=True)
    y = np.r_[np.ones(len(a)), np.zeros(len(b))]
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    model = _booster(HistGradientBoostingClassifier, list(X.columns), categorical, seed)
    return float(cross_val_score(model, X, y, cv=folds, scoring="roc_auc").mean())


def train_synthetic_test_real(
    real: pd.DataFrame, synthetic: pd.DataFrame, target: str, categorical: set[str], seed: int = 0
) -> dict:
    """Accuracy (a category target) or R^2 (a numeric one) on a held-out ``TEST_FRACTION`` of
    the real rows, of a model trained on the synthetic rows and of one trained on the other
    real rows: how much of the real data's use the synthetic rows keep."""
    real, synthetic = real[real[target].notna()], synthetic[synthetic[target].notna()]
    a, b = features([real, synthetic], categorical)
    is_class = target in categorical
    train, test = train_test_split(a, test_size=TEST_FRACTION, random_state=seed)
    inputs = [c for c in a.columns if c != target]
    kind = HistGradientBoostingClassifier if is_class else HistGradientBoostingRegressor
    measure = accuracy_score if is_class else r2_score
    scores = {}
    for name, rows in (("train_real", train), ("train_synthetic", b)):
        model = _booster(kind, inputs, categorical, seed).fit(rows[inputs], rows[target])
        scores[name] = float(measure(test[target], model.predict(test[inputs])))
    return {"target": target, "measure": "accuracy" if is_class else "r2", **scores}
