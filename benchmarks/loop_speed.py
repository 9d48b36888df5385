"""Training rows per second of ``VAE.fit`` with a run folder (validation pass and
checkpoints included) against a plain PyTorch loop of the same network and batch.

Run from the repository root:

    .venv/bin/python benchmarks/loop_speed.py [--epochs 8] [--rounds 4] [--load 0]

Two workloads, the sizes a user would pick by hand: 784 binary features,
4,000 rows, a 512-512 network with 20 latents; 16 continuous features,
10,000 rows, 256-256 with 2 latents; batch 100 on both. Each round times,
back to back, ``aevb.VAE(...).fit(X, run_dir=...)`` (aevb's own clock from
metrics.csv: steps, the validation pass and the checkpoint written after
every epoch) and a 30-line loop (``common.PlainVAE``, torch.optim.Adam, a
validation pass each epoch, no checkpoint) on torch's default threads. It
prints each side's median rows/s and the median of the per-round ratios.
``--load N`` keeps N busy-looping processes running meanwhile, as another
job on the same machine would.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)

import argparse  # noqa: E402
import csv  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from common import PlainVAE  # noqa: E402

from aevb import VAE  # noqa: E402

WORKLOADS = {
    "binary-784": dict(rows=4000, features=784, hidden=(512, 512), latent=20),
    "manifold-16": dict(rows=10000, features=16, hidden=(256, 256), latent=2),
}
BATCH = 100


def data(name: str) -> np.ndarray:
    spec = WORKLOADS[name]
    rng = np.random.default_rng(0)
    if name.startswith("binary"):
        return (rng.random((spec["rows"], spec["features"])) < 0.2).astype(np.float64)
    z = rng.normal(size=(spec["rows"], 2))
    w = rng.normal(size=(2, spec["features"]))
    return np.tanh(z @ w) + 0.05 * rng.normal(size=(spec["rows"], spec["features"]))


def aevb_rate(values: np.ndarray, spec: dict, epochs: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        model = VAE(hidden=spec["hidden"], latent_dim=spec["latent"], batch_size=BATCH, epochs=epochs,
                    patience=epochs + 1, seed=seed)
        model.fit(values, run_dir=Path(folder), progress=False)
        with open(Path(folder) / "metrics.csv") as handle:
            last = list(csv.DictReader(handle))[-1]
        n_train = len(values) - round(0.1 * len(values))
        return n_train * int(last["epoch"]) / float(last["seconds"])


def plain_rate(values: np.ndarray, spec: dict, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    x = torch.as_tensor((values - values.mean(0)) / (values.std(0) + 1e-6), dtype=torch.float32)
    n_val = round(0.1 * len(x))
    val, train = x[:n_val], x[n_val:]
    model = PlainVAE(x.shape[1], spec["hidden"], spec["latent"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(train))
        for start in range(0, len(train), BATCH):
            loss = model.neg_mean_elbo(train[order[start : start + BATCH]])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            model.neg_mean_elbo(val)
    return len(train) * epochs / (time.perf_counter() - started)


def spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--load", type=int, default=0, help="busy processes running meanwhile")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args()
    spinners = [multiprocessing.Process(target=spin, daemon=True) for _ in range(args.load)]
    for process in spinners:
        process.start()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default, {args.load} busy "
          f"process(es) meanwhile; {args.epochs} epochs per run, {args.rounds} interleaved rounds")
    try:
        for name in args.workloads.split(","):
            spec, values = WORKLOADS[name], data(name)
            aevb_rate(values, spec, 1, 0), plain_rate(values, spec, 1, 0)  # warm up
            ours, plain = [], []
            for r in range(args.rounds):
                ours.append(aevb_rate(values, spec, args.epochs, r))
                plain.append(plain_rate(values, spec, args.epochs, r))
            ratios = [a / b for a, b in zip(ours, plain)]
            print(f"{name:12} aevb {statistics.median(ours):8.0f} rows/s   plain {statistics.median(plain):8.0f} "
                  f"rows/s   ratio {statistics.median(ratios):.2f} (rounds: {' '.join(f'{r:.2f}' for r in ratios)})",
                  flush=True)
    finally:
        for process in spinners:
            process.terminate()


if __name__ == "__main__":
    main()
