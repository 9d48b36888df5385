"""The pictures of a report, each returned as PNG bytes.

Figures are drawn on matplotlib's ``Figure`` directly (no pyplot, no global
backend switch), so making a report changes nothing in the caller's plotting.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from ..data.images import save_grid

REAL, SYNTHETIC = "#1f77b4", "#ff7f0e"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()


def _panels(n: int, width: float = 3.2, height: float = 2.4, columns: int = 4):
    columns = min(columns, n)
    rows = -(-n // columns)
    figure = Figure(figsize=(width * columns, height * rows))
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[n:]:
        extra.set_visible(False)
    return figure, axes[:n]


def training_curves(history: list[dict]) -> bytes:
    """One panel per quantity of metrics.csv (``train_x`` beside ``val_x``) against the epoch."""
    epochs = [row["epoch"] for row in history]
    names = [c for c in history[0] if c not in ("epoch", "seconds")]
    quantities = list(dict.fromkeys(c.split("_", 1)[1] for c in names))
    figure, axes = _panels(len(quantities))
    for axis, quantity in zip(axes, quantities):
        for split, colour in (("train", REAL), ("val", SYNTHETIC)):
            column = f"{split}_{quantity}"
            if column in history[0]:
                axis.plot(epochs, [row[column] for row in history], color=colour, label=split)
        axis.set_title(quantity)
        axis.set_xlabel("epoch")
        axis.set_ylabel("nats per row")
        axis.legend()
    return _png(figure)


def image_grid(rows: np.ndarray, image_shape: tuple[int, ...], value_range: tuple[float, float]) -> bytes:
    buffer = io.BytesIO()
    save_grid(rows, image_shape, buffer, value_range)
    return buffer.getvalue()


def latent_map(codes: np.ndarray, scores: np.ndarray) -> bytes:
    """Latent means in 2-D (the first two principal axes when there are more), coloured by log p(x)."""
    if codes.shape[1] > 2:
        centred = codes - codes.mean(axis=0)
        _, _, axes_ = np.linalg.svd(centred, full_matrices=False)
        codes, labels = centred @ axes_[:2].T, ("principal axis 1 of E[z|x]", "principal axis 2")
    elif codes.shape[1] == 2:
        labels = ("E[z1|x]", "E[z2|x]")
    else:
        codes, labels = np.column_stack([codes[:, 0], scores]), ("E[z|x]", "log p(x)")
    figure = Figure(figsize=(5.5, 4.5))
    axis = figure.subplots()
    points = axis.scatter(codes[:, 0], codes[:, 1], c=scores, s=10, cmap="viridis")
    figure.colorbar(points, ax=axis, label="log p(x), nats")
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    return _png(figure)


def score_histogram(scores: np.ndarray, unusual: np.ndarray) -> bytes:
    """Histogram of per-row log p(x); the rows in ``unusual`` are marked below it."""
    figure = Figure(figsize=(6, 3.2))
    axis = figure.subplots()
    axis.hist(scores, bins=min(50, max(10, len(scores) // 10)), color=REAL)
    for value in scores[unusual]:
        axis.axvline(value, color="#d62728", linewidth=0.8)
    axis.set_xlabel("log p(x), nats per row (red: the most unusual rows)")
    axis.set_ylabel("rows")
    return _png(figure)


def marginals(real, synthetic, columns) -> bytes:
    """Per column of a table: real against synthetic, histograms for numbers, bar charts otherwise."""
    figure, axes = _panels(len(columns))
    for axis, column in zip(axes, columns):
        a, b = real[column.name].dropna(), synthetic[column.name].dropna()
        if column.kind in ("continuous", "integer"):
            values = np.concatenate([a.to_numpy(float), b.to_numpy(float)])
            bins = np.histogram_bin_edges(values, bins=20)
            axis.hist(a.to_numpy(float), bins=bins, density=True, alpha=0.6, color=REAL, label="real")
            axis.hist(b.to_numpy(float), bins=bins, density=True, alpha=0.6, color=SYNTHETIC, label="synthetic")
        else:
            labels = sorted(set(a.astype(str)) | set(b.astype(str)))
            share = [a.astype(str).value_counts(normalize=True), b.astype(str).value_counts(normalize=True)]
            where = np.arange(len(labels))
            for offset, counts, colour, name in ((-0.2, share[0], REAL, "real"), (0.2, share[1], SYNTHETIC, "synthetic")):
                axis.bar(where + offset, [counts.get(label, 0.0) for label in labels], 0.4, color=colour, label=name)
            axis.set_xticks(where, [label[:10] for label in labels], rotation=45, fontsize=7)
        axis.set_title(column.name[:30])
        axis.legend(fontsize=7)
    return _png(figure)


def correlations(real: np.ndarray, synthetic: np.ndarray, names: list[str]) -> bytes:
    """Pearson correlation matrices of the numeric columns: real, synthetic, and their difference."""
    figure, axes = _panels(3, width=4.2, height=3.8, columns=3)
    matrices = [np.corrcoef(real, rowvar=False), np.corrcoef(synthetic, rowvar=False)]
    matrices.append(matrices[1] - matrices[0])
    for axis, matrix, title in zip(axes, matrices, ("real", "synthetic", "synthetic - real")):
        image = axis.imshow(np.nan_to_num(matrix), vmin=-1, vmax=1, cmap="RdBu_r")
        axis.set_title(title)
        ticks = np.arange(len(names))
        axis.set_xticks(ticks, [n[:8] for n in names], rotation=90, fontsize=6)
        axis.set_yticks(ticks, [n[:8] for n in names], fontsize=6)
    figure.colorbar(image, ax=list(axes), shrink=0.8)
    return _png(figure)
