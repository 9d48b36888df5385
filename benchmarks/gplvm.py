"""Small data: the GP-LVM against the VAE, PPCA / factor analysis and Gaussian mixtures.

Run from the repository root:

    python benchmarks/gplvm.py [--sizes 50,200,1000] [--test-rows 500] [--seed 0]

The data is compare.py's synthetic manifold: x = f(z) + e in 16 dimensions,
z ~ N(0, I_2), f a fixed random tanh network, e ~ N(0, diag sigma^2), sigma in
[0.3, 0.6]. Its true log p(x) is known by quadrature over z (compare.py's
``SyntheticDensity.log_density``), the floor of every row of the table.

At each training size, on the same held-out rows, in nats per row (NLL, lower is better):

- the GP-LVM (``aevb.GPLVM(latent_dim=2)``, defaults otherwise), scored by the
  importance-weighted estimate with q(z*) fitted per test row, K=1000;
- aevb's VAE with default options (latent 16, early stopping), K=1000;
- PPCA and factor analysis (aevb, exact log p(x)), latent size chosen on a
  validation split from 1, 2, 4, 8;
- the best scikit-learn GaussianMixture: full or diagonal covariance, components
  chosen on a validation split (compare.py's ``sklearn_density``).

Fit times are wall-clock seconds of ``fit`` (for the chosen-on-validation models,
the whole search); the GP-LVM's notes add the seconds its scoring took (fitting q(z*)
of every test row, then the K-draw estimate).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import choose_on_validation  # noqa: F401  (compare.py's helpers need it importable)
from compare import SyntheticDensity, Task, sklearn_density
from sklearn.mixture import GaussianMixture

from aevb import GPLVM, PPCA, VAE, FactorAnalysis

K = 1000


def timed(make_and_fit):
    started = time.perf_counter()
    model = make_and_fit()
    return model, time.perf_counter() - started


def linear_best(cls, train, test, seed) -> tuple[float, float, str]:
    """An aevb linear-Gaussian model with its latent size chosen on 20% of the training rows."""
    order = np.random.default_rng(seed).permutation(len(train))
    val, rest = train[order[: len(train) // 5]], train[order[len(train) // 5 :]]
    started = time.perf_counter()
    best = max((d for d in (1, 2, 4, 8) if d < train.shape[1]), key=lambda d: cls(latent_dim=d).fit(rest).score(val))
    model = cls(latent_dim=best).fit(train)
    return model.score(test), time.perf_counter() - started, f"latent_dim={best}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.budget, args.noise_draws = 60.0, 1  # for compare.py's sklearn_density
    density = SyntheticDensity()
    rng = np.random.default_rng(args.seed)
    test = density.sample(args.test_rows, rng)
    truth = float(density.log_density(test).mean())
    pool = density.sample(max(int(s) for s in args.sizes.split(",")), rng)
    print(f"synthetic manifold, 16 dims, latent 2; {args.test_rows} test rows; true NLL {-truth:.3f} nats/row")
    print(f"{'rows':>6}  {'model':28}{'NLL':>9}{'excess':>9}{'fit s':>9}   notes")
    for size in (int(s) for s in args.sizes.split(",")):
        train = pool[:size]
        rows = []
        gp, seconds = timed(lambda: GPLVM(latent_dim=2, seed=args.seed).fit(train, progress=False))
        started = time.perf_counter()
        score = gp.score(test, k=K)  # q(z*) of each test row, then the K-draw estimate
        note = f"{len(gp.history_)} steps, {gp.stopped_because_}; scoring {time.perf_counter() - started:.1f} s"
        rows.append(("GP-LVM (rbf, 32 inducing)", score, seconds, note))
        vae, seconds = timed(lambda: VAE(seed=args.seed).fit(train, progress=False))
        rows.append(("VAE (defaults)", vae.score(test, k=K), seconds, f"{len(vae.history_)} epochs, best {vae.best_epoch_}"))
        for cls in (PPCA, FactorAnalysis):
            score, seconds, note = linear_best(cls, train, test, args.seed)
            rows.append((cls.__name__, score, seconds, note))
        task = Task("synthetic", train, test)
        mixtures = [
            sklearn_density(task, args, f"GaussianMixture {kind}",
                            lambda n, kind=kind: GaussianMixture(n, covariance_type=kind, random_state=args.seed),
                            [c for c in (1, 2, 5, 10, 20, 50) if c <= size // 5], "components")
            for kind in ("full", "diag")
        ]
        best = max(mixtures, key=lambda r: r.log_likelihood)
        rows.append((f"best {best.name}", best.log_likelihood, best.fit_seconds, best.note))
        for name, score, seconds, note in sorted(rows, key=lambda r: -r[1]):
            print(f"{size:>6}  {name:28}{-score:9.3f}{truth - score:9.3f}{seconds:9.1f}   {note}", flush=True)


if __name__ == "__main__":
    main()
