"""Benchmark the synthetic rows of TabularVAE against two simple generators.

Run from the repository root:

    .venv/bin/python benchmarks/quality.py [--max-time 60] [--missing 0.2] [--seed 0]

Two scikit-learn tables, each split 70/30 into train and test rows with a --missing share
of cells removed completely at random from both: ``wine`` (178 rows, 13 measurements and
the cultivar) and ``breast_cancer`` (569 rows, 30 measurements and the diagnosis). Three
generators are fitted to the train rows:

- TabularVAE (latent 4, hidden 64,64, capped at --max-time seconds);
- independent columns: a Gaussian per numeric column (rounded for integer columns),
  observed frequencies per category;
- a Gaussian copula: each column's observed values mapped to normal scores through its
  ranks, their correlation (pairwise complete), and draws mapped back through each
  column's empirical quantiles (categories ordered by frequency).

Printed, for as many synthetic rows as train rows: the quality figures of
``aevb.quality.assess`` against the train rows (column shapes, pair trends, the classifier
AUC, train-synthetic/test-real accuracy of the class column beside train-real), and the
held-out log-likelihood of the test rows' observed cells in nats per row where the
generator has one (the copula's empirical marginals have no density).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm
from tables import split, wine_table

from aevb import TabularVAE
from aevb.quality.assess import assess
from aevb.tables.examples import independent_log_likelihood, punch_holes


def breast_cancer_table():
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame.rename(columns={"target": "diagnosis"})


def independent_sample(train, schema, n, rng):
    columns = {}
    for column in schema.columns:
        observed = train[column.name].dropna()
        if column.kind in ("continuous", "integer"):
            values = rng.normal(observed.mean(), observed.std(), n)
            columns[column.name] = np.round(values) if column.kind == "integer" else values
        else:
            share = observed.value_counts(normalize=True)
            columns[column.name] = rng.choice(share.index.to_numpy(), n, p=share.to_numpy())
    return pd.DataFrame(columns)


def copula_sample(train, schema, n, rng):
    codes, labels = {}, {}
    for column in schema.columns:
        observed = train[column.name]
        if column.kind in ("continuous", "integer"):
            codes[column.name] = observed.astype(float)
        else:
            order = observed.value_counts().index  # most frequent first
            labels[column.name] = order
            codes[column.name] = observed.map({label: i for i, label in enumerate(order)}).astype(float)
    frame = pd.DataFrame(codes)
    scores = frame.rank(pct=True).mul(frame.notna().sum()).sub(0.5).div(frame.notna().sum()).apply(norm.ppf)
    correlation = scores.corr().fillna(0.0).to_numpy(copy=True)
    np.fill_diagonal(correlation, 1.0)
    values, vectors = np.linalg.eigh(correlation)
    correlation = (vectors * np.clip(values, 1e-6, None)) @ vectors.T  # nearest positive definite
    u = norm.cdf(rng.multivariate_normal(np.zeros(len(frame.columns)), correlation, n))
    out = {}
    for j, name in enumerate(frame.columns):
        drawn = np.quantile(frame[name].dropna().to_numpy(), u[:, j], method="inverted_cdf")
        out[name] = labels[name].to_numpy()[drawn.astype(int)] if name in labels else drawn
    return pd.DataFrame(out)


def run(name: str, frame, target: str, args) -> None:
    train_full, test_full = split(frame, 0.3, args.seed)
    train = punch_holes(train_full, args.missing, args.seed + 1)
    test = punch_holes(test_full, args.missing, args.seed + 2)
    model = TabularVAE(latent_dim=4, hidden=(64, 64), max_time=args.max_time, seed=args.seed).fit(train)
    schema, rng = model.schema_, np.random.default_rng(args.seed)
    kinds = {c.name: c.kind for c in schema.columns}
    generators = {
        "TabularVAE": (model.sample(len(train), seed=args.seed), model.score_samples(test, k=200).mean()),
        "independent columns": (independent_sample(train, schema, len(train), rng),
                                independent_log_likelihood(train, test, schema).mean()),
        "Gaussian copula": (copula_sample(train, schema, len(train), rng), None),
    }
    print(f"\n== {name}: {len(train)} train / {len(test)} test rows, {len(schema.columns)} columns, "
          f"{args.missing:.0%} of cells missing; TabularVAE trained {len(model.history_)} epochs ==")
    print(f"{'generator':22}{'shapes':>8}{'pairs':>8}{'AUC':>8}{'acc syn':>9}{'acc real':>9}{'log p held out':>16}")
    for label, (synthetic, log_p) in generators.items():
        figures = assess(train, synthetic, kinds, target, args.seed)
        t = figures["train_synthetic_test_real"]
        held_out = f"{log_p:16.2f}" if log_p is not None else f"{'n/a':>16}"
        print(f"{label:22}{figures['column_shapes']:8.3f}{figures['column_pair_trends']:8.3f}"
              f"{figures['detection_auc']:8.3f}{t['train_synthetic']:9.3f}{t['train_real']:9.3f}{held_out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=60.0)
    parser.add_argument("--missing", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run("wine", wine_table(), "cultivar", args)
    run("breast_cancer", breast_cancer_table(), "diagnosis", args)


if __name__ == "__main__":
    main()
