"""Benchmark images as images: nets, pixel likelihoods and latent layers at equal wall-clock budgets.

Run from the repository root:

    .venv/bin/python benchmarks/images.py [--budget 60] [--k 1000] [--data digits,digits16]
        [--only mlp-categorical-1,conv-categorical-1] [--grids benchmarks/grids] [--threads 2]

Each configuration ``NET-LIKELIHOOD-LAYERS`` (net mlp|conv; likelihood gaussian, the
dequantized Gaussian of today's default, categorical or logistic-mixture; 1 to 3 latent
layers) is trained with ``VAE(max_time=BUDGET)`` on the training split and evaluated on
the test split with ``evaluate(k=K)``. Every figure is a bound on log P(x) of the discrete
images, in bits per dimension (lower is better): for the discrete likelihoods the
importance-weighted bound on log P(x) itself, for the Gaussian the same bound on the
dequantized density (one more bound, Jensen's, below log P(x)).

Data: ``digits`` is the built-in split (digits-train, 1,438 images; digits-test, 359;
8x8, 17 levels); ``digits16`` is the same images upsampled to 16x16 (bilinear) and
binarized at half the range (2 levels, 256 pixels): larger images where conv nets
should pay off. Each run writes a PNG grid of 64 samples per configuration into
``--grids``. Training stops at the budget or by early stopping, whichever comes first;
the table gives the epochs run and the seconds they took. On a shared machine, read
the figures with the load average printed at the top and bottom.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)  # as the aevb CLI does, before any torch op

import argparse  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from aevb import VAE, datasets  # noqa: E402
from aevb.data.images import save_grid  # noqa: E402
from aevb.data.loaders import Dataset  # noqa: E402

CONFIGURATIONS = [
    "mlp-gaussian-1", "conv-gaussian-1",
    "mlp-categorical-1", "conv-categorical-1",
    "mlp-logistic-mixture-1", "conv-logistic-mixture-1",
    "mlp-categorical-2", "mlp-categorical-3", "conv-categorical-2",
]


def upsampled_binary(data: Dataset, side: int = 16) -> Dataset:
    """8x8 digits (levels 0..16) -> side x side images of 0s and 1s (bilinear, threshold 8)."""
    images = [
        np.asarray(Image.fromarray(row.reshape(8, 8).astype(np.float32)).resize((side, side), Image.BILINEAR))
        for row in data.values
    ]
    return Dataset((np.stack(images) >= 8).astype(np.float64).reshape(len(images), -1), (side, side))


def splits(name: str) -> tuple[Dataset, Dataset]:
    train, test = datasets.load("digits-train"), datasets.load("digits-test")
    return (train, test) if name == "digits" else (upsampled_binary(train), upsampled_binary(test))


def options_of(configuration: str) -> dict:
    net, rest = configuration.split("-", 1)
    likelihood, layers = rest.rsplit("-", 1)
    return dict(net=net, likelihood=likelihood, latent_layers=int(layers))


def run(configuration: str, train: Dataset, test: Dataset, budget: float, k: int, grid: Path, seed: int) -> dict:
    options = options_of(configuration)
    model = VAE(max_time=budget, seed=seed, **options)
    started = time.perf_counter()
    model.fit(train, progress=False)
    seconds = time.perf_counter() - started
    figures = model.evaluate(test, k=k)
    rows = model.sample(64, seed=seed)
    pre = model.preprocessor_
    save_grid(rows, train.image_shape, grid, (0.0, float(pre.n_levels - 1)))
    layers = figures.get("layers")
    return {
        "epochs": len(model.history_), "seconds": seconds, "bits": figures["bits_per_dim"],
        "elbo_bits": figures["elbo_bits_per_dim"],
        "active": "/".join(str(layer["active_units"]) for layer in layers) if layers else str(figures["active_units"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="Training seconds per configuration.")
    parser.add_argument("--k", type=int, default=1000, help="Importance samples of the held-out bound.")
    parser.add_argument("--data", default="digits,digits16")
    parser.add_argument("--only", default=",".join(CONFIGURATIONS), help="Configurations NET-LIKELIHOOD-LAYERS.")
    parser.add_argument("--grids", type=Path, default=Path("benchmarks/grids"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.grids.mkdir(parents=True, exist_ok=True)
    print(f"budget {args.budget:g} s of training per configuration, k={args.k}, {args.threads} threads; "
          f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'data':9} {'configuration':26} {'epochs':>6} {'train s':>8} {'bits/dim':>9} {'ELBO b/d':>9} {'active':>8}")
    for name in args.data.split(","):
        train, test = splits(name)
        for configuration in args.only.split(","):
            result = run(configuration, train, test, args.budget, args.k, args.grids / f"{name}-{configuration}.png", args.seed)
            print(f"{name:9} {configuration:26} {result['epochs']:6d} {result['seconds']:8.1f} "
                  f"{result['bits']:9.3f} {result['elbo_bits']:9.3f} {result['active']:>8}", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
