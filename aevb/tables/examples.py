"""A table from a known mixed-type model, holes at random, and the per-column baselines
that a model of a table has to beat (used by the tests, the benchmark and the README).

The known model: one latent z ~ N(0, 1) drives every column,

    height = 170 + 10 z + 2 e1          weight = 70 - 8 z + 3 e2      (e ~ N(0, 1))
    colour ~ softmax(2.5 z, 0, -2.5 z) over red, green, blue
    member ~ Bernoulli(sigmoid(3 z))    visits ~ Poisson(exp(2.5 + z / 2))

so each column carries information about the others, which independent
per-column models cannot use.
"""

from __future__ import annotations

import numpy as np

from ..data.dequantization import dequantization_moments
from .schema import TableSchema


def mixed_table(n: int, seed: int = 0):
    """n rows of the known model as a DataFrame (float, float, str, bool, int columns), no holes."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    logits = np.stack([2.5 * z, np.zeros(n), -2.5 * z], axis=1)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    colour = np.array(["red", "green", "blue"])[[rng.choice(3, p=p) for p in probs]]
    return pd.DataFrame({
        "height": 170 + 10 * z + 2 * rng.normal(size=n),
        "weight": 70 - 8 * z + 3 * rng.normal(size=n),
        "colour": colour,
        "member": rng.random(n) < 1 / (1 + np.exp(-3 * z)),
        "visits": rng.poisson(np.exp(2.5 + 0.5 * z)),
    })


def punch_holes(frame, fraction: float, seed: int = 0):
    """The same table with each cell removed completely at random with probability ``fraction``."""
    import pandas as pd

    holes = np.random.default_rng(seed).random(frame.shape) < fraction
    return frame.mask(pd.DataFrame(holes, index=frame.index, columns=frame.columns))


def independent_log_likelihood(train, test, schema: TableSchema) -> np.ndarray:
    """Per-row log-likelihood of the observed cells of ``test`` under independent per-column fits to
    ``train``: a Gaussian for continuous columns, a dequantized Gaussian for integer columns (the same
    bound as the VAE's), observed frequencies (add-one) for categories and yes/no."""
    total = np.zeros(len(test))
    train_rows, test_rows = schema.encode(train), schema.encode(test)
    for j, column in enumerate(schema.columns):
        x, y = train_rows[:, j], test_rows[:, j]
        x, seen = x[~np.isnan(x)], ~np.isnan(y)
        kind = column.kind_class
        if kind.numeric:
            if kind.log_values:  # a log-normal: a Gaussian on log x, with the Jacobian -log x
                x, y = np.log(x), np.log(y)
            mean, var = x.mean(), x.var()
            centre = 0.0
            if kind.dequantized:  # x + u, scored at the centre of each cell
                (mean, var), centre = dequantization_moments(mean, var), 0.5
            value = -0.5 * np.log(2 * np.pi * var) - 0.5 * (y[seen] + centre - mean) ** 2 / var
            if kind.log_values:
                value = value - y[seen]
        else:
            counts = np.bincount(x.astype(int), minlength=max(2, len(column.categories))) + 1.0
            value = np.log(counts / counts.sum())[y[seen].astype(int)]
        total[seen] += value
    return total


def imputation_errors(truth, holey, filled, schema: TableSchema) -> dict[str, float]:
    """Per column, over the holes: RMSE of numeric columns and accuracy of categories and yes/no,
    for ``filled`` and for the column mean / mode of ``holey`` (keys ``name`` and ``name baseline``)."""
    errors = {}
    for column in schema.columns:
        hole = holey[column.name].isna().to_numpy()
        if not hole.any():
            continue
        true = truth[column.name][hole]
        if column.kind_class.numeric:
            errors[column.name] = float(np.sqrt(np.mean((filled[column.name][hole].astype(float) - true) ** 2)))
            errors[f"{column.name} baseline"] = float(np.sqrt(np.mean((holey[column.name].astype(float).mean() - true) ** 2)))
        else:
            true = true.astype(str).to_numpy()
            errors[column.name] = float(np.mean(filled[column.name][hole].astype(str).to_numpy() == true))
            errors[f"{column.name} baseline"] = float(np.mean(true == holey[column.name].dropna().astype(str).mode()[0]))
    return errors
