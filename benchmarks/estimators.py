"""How fast the two log p(x) estimators converge, on a model whose log p(x) is exact.

Run from the repository root (matplotlib comes with `pip install -e .[bench]`):

    .venv/bin/python benchmarks/estimators.py [--out estimators.png] [--rows 300] [--seed 0]

The oracle: rows drawn from a known linear-Gaussian model (D=16, d=4), and a
VAE with a linear decoder trained on them by the ELBO. Its diagonal q(z|x) is
not the exact (correlated) posterior, so estimates fall short of the exact
log p(x) = log N(x; b, W W^T + Psi) that the same decoder gives in closed form.
For each K the script prints, and plots against K, the mean over held-out rows
of exact - estimate (nats/row; positive means below the truth) and the mean
effective sample size, for importance sampling from q(z|x) (the IWAE bound)
and naive sampling from the prior p(z).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aevb import VAE

KS = [1, 3, 10, 30, 100, 300, 1000, 3000, 10000]


def oracle_rows(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(16, 4)), rng.normal(size=16)
    noise = rng.uniform(0.3, 1.0, size=16)
    return rng.normal(size=(n, 4)) @ W.T + b + noise * rng.normal(size=(n, 16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="estimators.png", help="where the plot goes")
    parser.add_argument("--rows", type=int, default=300, help="held-out rows to score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_flush_denormal(True)

    data = oracle_rows(3000 + args.rows, args.seed)
    train, test = data[:3000], data[3000:]
    started = time.perf_counter()
    model = VAE(latent_dim=4, hidden=(64,), decoder="linear", epochs=200, learning_rate=3e-3, seed=args.seed).fit(train)
    print(f"oracle: linear-decoder VAE, D=16, d=4, trained {time.perf_counter() - started:.1f}s "
          f"({len(model.history_)} epochs); {len(test)} held-out rows")
    exact = model.exact_score_samples(test, seed=args.seed, average_noise=False)
    elbo = model.elbo_samples(test, seed=args.seed)["elbo"]
    print(f"exact log p(x) {exact.mean():.4f} nats/row; ELBO {elbo.mean():.4f} (gap {np.mean(exact - elbo):.4f})")
    print(f"{'K':>6} | {'q(z|x): error':>14} {'ESS':>8} {'s':>6} | {'prior: error':>13} {'ESS':>8} {'s':>6}")
    results = {"posterior": [], "prior": []}
    for k in KS:
        cells = []
        for proposal in results:
            started = time.perf_counter()
            estimate = model.importance_samples(test, k=k, seed=args.seed, proposal=proposal)
            seconds = time.perf_counter() - started
            error = float(np.mean(exact - estimate["log_likelihood"]))
            ess = float(estimate["effective_sample_size"].mean())
            results[proposal].append(error)
            cells.append(f"{error:14.4f} {ess:8.1f} {seconds:6.2f}")
        print(f"{k:>6} | {cells[0]} | {cells[1]}")
    ratio = results["prior"][KS.index(1000)] / max(abs(results["posterior"][KS.index(1000)]), 1e-12)
    print(f"at K=1000 the prior estimator's error is {ratio:.0f}x that of the q(z|x) estimator")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    for proposal, label in [("posterior", "importance sampling from q(z|x)"), ("prior", "sampling from the prior p(z)")]:
        axis.plot(KS, np.maximum(np.abs(results[proposal]), 1e-4), marker="o", label=label)
    axis.set(xscale="log", yscale="log", xlabel="K (samples per row)",
             ylabel="|exact - estimate| (nats/row)", title="log p(x) estimators on a linear-Gaussian oracle")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out, dpi=120)
    print(f"plot written to {args.out}")


if __name__ == "__main__":
    main()
