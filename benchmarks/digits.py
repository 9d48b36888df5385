"""Benchmark aevb on the built-in 8x8 digits: training speed and held-out quality.

Run from the repository root:

    .venv/bin/python benchmarks/digits.py [--epochs 30] [--max-time SECONDS] [--seed 0] [--threads N]

(a) Throughput. aevb's training loop (``aevb.train.loop.train`` with the default
    ``VAEConfig``, fused Adam, one validation pass and a weight snapshot per
    epoch) is timed over ``--epochs`` epochs against a plain hand-written
    PyTorch loop in the same process: the same MLP VAE (same hidden sizes,
    latent size, SiLU, a decoder that outputs its Gaussian scale per row), the same batch size and
    learning rate, plain ``torch.optim.Adam`` (not fused), loss = -mean ELBO
    written with torch.distributions, on the same training tensor with the
    same per-batch dequantization and standardization. Both are run
    ``--repeats`` times, interleaved, after a short warm-up of each. Printed in
    rows/s (training rows x epochs / seconds): the best and the median run of
    each, and the ratio aevb / baseline as best over best and as the median of
    the back-to-back pairs. On a shared machine the best run is the figure
    least disturbed by other processes; a wide spread of runs means the
    machine was busy.

(b) Held-out quality. ``VAE()`` with default settings (``--max-time`` caps its
    training) is fitted on digits-train and scored on digits-test with
    ``model.evaluate(test, k=1000)``. Baselines are fitted on the same train
    split and scored on the same test split through aevb's own
    ``Preprocessor`` (the same dequantization x + u, u ~ U[0, 1), and the same
    Jacobian bookkeeping), so every figure is a bound on the discrete
    log-probability log P(x) in nats per row (and bits/dim = -nats / (64 ln 2)):
    a diagonal Gaussian and scikit-learn GaussianMixture with diagonal and full
    covariances, whose number of components is chosen from --components by
    the log-likelihood on a validation split of train, then refitted on all of
    train. Baselines are fitted to one noise draw of train and scored by the
    average over --noise-draws draws of log p(x + u) on the test rows. Their
    "fit s" includes the choice of the number of components.

Denormals: the ``aevb`` command calls ``torch.set_flush_denormal(True)`` at
process start (Adam's decaying moments otherwise slow steps down); this script
does the same at its very start, before any torch operation, so both loops
below run under the same setting as the CLI.

The default run takes one to two minutes on 2 CPU cores.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)  # as the aevb CLI does, before any torch op

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from common import bits_per_dim as _bits_per_dim  # noqa: E402
from common import (  # noqa: E402
    dequantized,
    diag_gaussian,
    fit_gmm,
    held_out_nats,
    run_plain,
    split_rows,
)

from aevb import VAE  # noqa: E402
from aevb.config import VAEConfig  # noqa: E402
from aevb.data import loaders as aevb_data  # noqa: E402
from aevb.data.preprocess import Preprocessor  # noqa: E402
from aevb.train.loop import train  # noqa: E402
from aevb.vae.family import VAEFamily  # noqa: E402
from aevb.vae.model import build_vae  # noqa: E402

N_FEATURES = 64


def bits_per_dim(nats_per_row: float) -> float:
    return _bits_per_dim(nats_per_row, N_FEATURES)


# -- (a) throughput --------------------------------------------------------------


def run_aevb(train_x, val_x, pre: Preprocessor, epochs: int, seed: int) -> float:
    """Seconds for ``epochs`` epochs of aevb's training loop with the default config."""
    config = VAEConfig(epochs=epochs, patience=epochs + 1, seed=seed, hidden=(256, 256), latent_dim=16)
    torch.manual_seed(seed)
    model = build_vae(config, train_x.shape[1], pre.likelihood).to(torch.float32)
    started = time.perf_counter()
    train(VAEFamily(config), model, pre, train_x, val_x, config, progress=False)
    return time.perf_counter() - started


def throughput(train_values: np.ndarray, epochs: int, repeats: int, seed: int) -> None:
    config = VAEConfig(seed=seed, hidden=(256, 256), latent_dim=16)  # the sizes fit chooses for 64 features
    pre = Preprocessor.fit(train_values, config.likelihood)
    # The split VAE.fit makes: the same rows for both loops.
    val_values, fit_values = split_rows(train_values, config.validation_fraction, seed)
    val_x = torch.as_tensor(val_values, dtype=torch.float32)
    train_x = torch.as_tensor(fit_values, dtype=torch.float32)
    rows = len(train_x) * epochs

    run_aevb(train_x, val_x, pre, 2, seed)  # warm-up
    run_plain(train_x, pre, config, 2, seed)
    aevb_rates, plain_rates = [], []
    for r in range(repeats):
        aevb_rates.append(rows / run_aevb(train_x, val_x, pre, epochs, seed + r))
        plain_rates.append(rows / run_plain(train_x, pre, config, epochs, seed + r))
    ratios = [x / y for x, y in zip(aevb_rates, plain_rates)]
    print(
        f"(a) training throughput: {len(train_x)} rows x {epochs} epochs, batch {config.batch_size}, "
        f"hidden {config.hidden}, latent {config.latent_dim}; {repeats} interleaved runs each, "
        f"{torch.get_num_threads()} torch threads"
    )
    print(f"    {'rows/s':22}{'best':>9}{'median':>9}   runs")
    for name, rates in [("aevb train()", aevb_rates), ("plain PyTorch loop", plain_rates)]:
        runs = ", ".join(f"{v:.0f}" for v in rates)
        print(f"    {name:22}{max(rates):9.0f}{statistics.median(rates):9.0f}   {runs}")
    print(
        f"    ratio aevb / plain: {max(aevb_rates) / max(plain_rates):.2f} (best vs best), "
        f"{statistics.median(ratios):.2f} (median of back-to-back pairs)"
    )
    print()


# -- (b) held-out quality ----------------------------------------------------------


def quality(train_values, test_values, args) -> None:
    vae = VAE(seed=args.seed, max_time=args.max_time)
    started = time.perf_counter()
    vae.fit(train_values, progress=False)
    vae_seconds = time.perf_counter() - started
    figures = vae.evaluate(test_values, k=1000, seed=args.seed)

    pre = Preprocessor.fit(train_values, "auto")
    y_train = dequantized(pre, train_values, torch.Generator().manual_seed(args.seed))
    rows = []
    started = time.perf_counter()
    density = diag_gaussian(y_train)
    rows.append(("diagonal Gaussian", time.perf_counter() - started, density))
    for covariance in ("diag", "full"):
        started = time.perf_counter()
        gmm, n = fit_gmm(y_train, covariance, args.components, args.seed)
        rows.append((f"GMM {covariance}, {n} comp.", time.perf_counter() - started, gmm.score_samples))

    table = [
        (name, held_out_nats(density, pre, test_values, args.noise_draws, args.seed + 1), seconds)
        for name, seconds, density in rows
    ]
    table += [
        ("VAE log p(x), k=1000", figures["log_likelihood"], vae_seconds),
        ("VAE ELBO", figures["elbo"], vae_seconds),
    ]

    print(
        f"(b) held-out quality: train {len(train_values)} rows (digits-train), "
        f"test {len(test_values)} rows (digits-test), 64 dims, levels 0..16"
    )
    print(
        f"    VAE: default settings, max_time={args.max_time}, trained {vae_seconds:.1f} s, "
        f"{len(vae.history_)} epochs, best epoch {vae.best_epoch_} ({vae.stopped_because_}); "
        f"log p(x) std. error {figures['log_likelihood_std_error']:.2f} nats/row"
    )
    print("    all figures: dequantization bound on log P(x) of the discrete test rows")
    print(f"    {'model':26}{'nats/row':>10}{'bits/dim':>10}{'fit s':>8}")
    for name, nats, seconds in table:
        print(f"    {name:26}{nats:10.2f}{bits_per_dim(nats):10.3f}{seconds:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs timed for throughput (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop (default 5)")
    parser.add_argument("--max-time", type=float, default=None, help="cap on the VAE's training, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--components", type=lambda s: [int(v) for v in s.split(",")], default=[1, 5, 10, 20, 50],
        help="GMM sizes to choose from (default 1,5,10,20,50)",
    )
    parser.add_argument("--noise-draws", type=int, default=5, help="uniform noise draws per test row")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    train_values = aevb_data.load("digits-train").values
    test_values = aevb_data.load("digits-test").values
    print(f"torch {torch.__version__}, flush_denormal on, seed {args.seed}\n")
    throughput(train_values, args.epochs, args.repeats, args.seed)
    quality(train_values, test_values, args)


if __name__ == "__main__":
    main()
