"""How wide synthetic tables are: the spread of sampled columns against the real ones.

Run from the repository root:

    .venv/bin/python benchmarks/table_spread.py [--max-time 30] [--epochs 1000] [--seed 0]

For scikit-learn's bundled wine and breast_cancer tables (70% train, 30% test),
a TabularVAE (latent 4, hidden 64,64) is fitted and 2,000 rows are sampled.
Printed per table: the ratio of each numeric column's sampled standard
deviation to the training one (mean and minimum over the columns), the number
of sampled cells below the smallest training value in columns that are always
positive, the largest count of decimals in a sampled cell against the data's,
and the held-out log-likelihood of the test rows (nats/row, k=500).
"""

from __future__ import annotations

import argparse

import numpy as np

from aevb import TabularVAE


def tables():
    from sklearn.datasets import load_breast_cancer, load_wine

    for name, loader in (("wine", load_wine), ("breast_cancer", load_breast_cancer)):
        frame = loader(as_frame=True).frame
        frame["target"] = frame["target"].map(lambda c: f"class_{c}")
        yield name, frame


def decimals(values) -> int:
    """The most digits after the decimal point in the shortest repr of the values."""
    return max((len(r.split(".")[1]) if "." in r and "e" not in r else 0) for r in map(repr, map(float, values)))


def run(name, frame, args) -> None:
    order = np.random.default_rng(args.seed).permutation(len(frame))
    n_test = round(0.3 * len(frame))
    train, test = frame.iloc[order[n_test:]], frame.iloc[order[:n_test]]
    model = TabularVAE(latent_dim=4, hidden=(64, 64), max_time=args.max_time, epochs=args.epochs, seed=args.seed).fit(train)
    sampled = model.sample(2000, seed=args.seed)
    numeric = [c.name for c in model.schema_.columns if c.kind in ("continuous", "integer", "positive")]
    numeric = numeric or [c.name for c in model.schema_.columns if c.kind in ("continuous", "integer")]
    ratios = np.array([sampled[c].astype(float).std() / train[c].std() for c in numeric])
    positive = [c for c in numeric if (train[c] > 0).all()]
    below = sum(int((sampled[c].astype(float) <= 0).sum()) for c in positive)
    held_out = model.score_samples(test, k=500).mean()
    print(f"{name:14} std ratio mean {ratios.mean():.3f} min {ratios.min():.3f} | "
          f"cells <= 0 in {len(positive)} positive columns: {below} | decimals sampled {decimals(sampled[numeric].to_numpy().ravel())}"
          f" vs data {decimals(train[numeric].to_numpy().ravel())} | held-out {held_out:.3f} nats/row "
          f"({len(model.history_)} epochs, stopped by {model.stopped_because_})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()
    for name, frame in tables():
        run(name, frame, args)


if __name__ == "__main__":
    main()
