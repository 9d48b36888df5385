"""How fast aevb trains and evaluates, against a hand-written loop and the machine's peak.

Run from the repository root:

    .venv/bin/python benchmarks/throughput.py [--epochs 3] [--repeats 5] [--threads N] [--k 1000]

For each network size (features-hidden-latent, batch size) it times, interleaved
in the same process, ``--repeats`` runs of

- aevb's training loop (``aevb.train.loop.train`` with the default ``VAEConfig`` but
  that size: fused Adam, the per-epoch validation pass on 128 rows, the
  best-weights snapshot);
- a minimal hand-written PyTorch loop of the same network (``common.PlainVAE``:
  the same layers, SiLU, Gaussian decoder with a per-row scale, analytic KL,
  the same batches and per-batch preprocessing), with plain ``torch.optim.Adam``
  and with fused Adam, on torch's default threads and on one thread (aevb's
  loop times its steps and picks one of the two, :mod:`aevb.train.threads`);

and prints rows/s (best and median), aevb / hand-written as best over best and
as the median of back-to-back pairs, and aevb's achieved GFLOP/s (6 x the
multiply-adds of the linear layers per row: forward, and backward for inputs
and weights) against the machine's matmul peak, measured as the best of
several 2048^3 float32 ``torch.matmul`` calls with the same threads (taken
again before each size, the best kept: other processes lower it). The peak
uses all threads; a size trained on one thread can reach at most about half.
``--compile`` adds the hand-written loop with its loss under ``torch.compile``.

Then the evaluator: rows x K per second of ``VAE.score_samples(X, k=K)``, the
importance-weighted log p(x) estimate, on the first size's network.

Data are random level rows (0..255), so every size sees the dequantization
that real pixel data gets. Like the aevb command, the script calls
``torch.set_flush_denormal(True)`` before torch starts its threads.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from common import run_plain, summary, with_threads  # noqa: E402

from aevb import VAE  # noqa: E402
from aevb.config import VAEConfig  # noqa: E402
from aevb.data.preprocess import Preprocessor  # noqa: E402
from aevb.train.loop import train  # noqa: E402
from aevb.vae.family import VAEFamily  # noqa: E402
from aevb.vae.model import build_vae  # noqa: E402

# (features, hidden, latent, batch)
SIZES = [(64, (256, 256), 16, 128), (784, (512, 256), 32, 128), (784, (512, 256), 32, 512)]


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of an n x n x n float32 matmul with the current threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def flops_per_row(n_features: int, hidden: tuple[int, ...], latent: int) -> int:
    """6 x multiply-adds of the encoder's and decoder's linear layers, per training row."""
    widths = (n_features, *hidden)
    encoder = sum(a * b for a, b in zip(widths[:-1], widths[1:])) + hidden[-1] * 2 * latent
    back = (latent, *hidden[::-1])
    decoder = sum(a * b for a, b in zip(back[:-1], back[1:])) + hidden[0] * 2 * n_features
    return 6 * (encoder + decoder)


def run_aevb(train_x, val_x, pre, config: VAEConfig, epochs: int, seed: int) -> float:
    config = VAEConfig(**{**config.to_dict(), "epochs": epochs, "patience": epochs + 1, "seed": seed})
    torch.manual_seed(seed)
    model = build_vae(config, train_x.shape[1], pre.likelihood)
    started = time.perf_counter()
    train(VAEFamily(config), model, pre, train_x, val_x, config, progress=False)
    return time.perf_counter() - started


def training(size, rows: int, epochs: int, repeats: int, peak: float, compile: bool = False) -> None:
    n_features, hidden, latent, batch = size
    config = VAEConfig(hidden=hidden, latent_dim=latent, batch_size=batch)
    values = np.random.default_rng(0).integers(0, 256, size=(rows + 128, n_features)).astype(np.float64)
    pre = Preprocessor.fit(values, "auto")
    train_x = torch.as_tensor(values[128:], dtype=torch.float32)
    val_x = torch.as_tensor(values[:128], dtype=torch.float32)
    default = torch.get_num_threads()
    threads = default
    loops = {
        "aevb train()": lambda seed: run_aevb(train_x, val_x, pre, config, epochs, seed),
        "hand-written, Adam": lambda seed: with_threads(threads, run_plain, train_x, pre, config, epochs, seed),
        "hand-written, fused Adam": lambda seed: with_threads(
            threads, run_plain, train_x, pre, config, epochs, seed, fused=True
        ),
    }
    if compile:
        loops["hand-written, fused, compiled"] = lambda seed: with_threads(
            threads, run_plain, train_x, pre, config, epochs, seed, fused=True, compile=True
        )
    if default != 1:
        loops["hand-written, Adam, 1 thr."] = lambda seed: with_threads(1, run_plain, train_x, pre, config, epochs, seed)
    warm_up = {name: loop(0) for name, loop in loops.items()}
    if compile:
        print(f"    torch.compile: first run {warm_up['hand-written, fused, compiled']:.1f} s, including compilation")
    rates = {name: [] for name in loops}
    for r in range(repeats):
        for name, loop in loops.items():
            rates[name].append(rows * epochs / loop(r + 1))
    label = f"{n_features}-{'-'.join(map(str, hidden))}-{latent}, batch {batch}"
    print(f"{label}: {rows} rows x {epochs} epochs, {repeats} interleaved runs; aevb's loop and the "
          f"hand-written ones on {threads} thread(s) unless marked")
    for name, values_ in rates.items():
        print(f"    {name:26}{summary(values_)} rows/s")
    aevb, plain = rates["aevb train()"], rates["hand-written, Adam"]
    fused = rates["hand-written, fused Adam"]
    pairs = statistics.median([a / p for a, p in zip(aevb, plain)])
    pairs_fused = statistics.median([a / p for a, p in zip(aevb, fused)])
    gflops = max(aevb) * flops_per_row(n_features, hidden, latent) / 1e9
    print(f"    aevb / hand-written Adam: {max(aevb) / max(plain):.2f} best/best, {pairs:.2f} median of pairs; "
          f"/ fused: {max(aevb) / max(fused):.2f}, {pairs_fused:.2f}")
    print(f"    aevb achieved {gflops:.1f} GFLOP/s = {100 * gflops / peak:.0f}% of the matmul peak\n", flush=True)


def evaluator(k: int, rows: int, repeats: int) -> None:
    values = np.random.default_rng(0).integers(0, 17, size=(rows, 64)).astype(np.float64)
    model = VAE(epochs=1).fit(values, progress=False)
    model.score_samples(values[:16], k=k)
    times = [_timed(lambda: model.score_samples(values, k=k)) for _ in range(repeats)]
    print(f"evaluator: score_samples, 64-256-256-16 network, {rows} rows x K={k}: "
          f"best {rows * k / min(times):,.0f}, median {rows * k / statistics.median(times):,.0f} row-draws/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run (default 3)")
    parser.add_argument("--rows", type=int, default=4096, help="training rows (default 4096)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples per row for the evaluator")
    parser.add_argument("--sizes", default="0,1,2", help="which of the sizes to run (indices)")
    parser.add_argument("--compile", action="store_true", help="also time the hand-written loop under torch.compile")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, flush_denormal on; "
          f"matmul peak {peak:.1f} GFLOP/s (2048^3 float32, best of 5)\n")
    for index in map(int, args.sizes.split(",")):
        peak = max(peak, matmul_peak())  # a busy machine lowers a single measurement
        training(SIZES[index], args.rows, args.epochs, args.repeats, peak, args.compile)
    evaluator(args.k, 256, args.repeats)


if __name__ == "__main__":
    main()
