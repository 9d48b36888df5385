"""Time ``evaluate`` and ``row_scores`` of a digits VAE, and count the encoder passes they take.

    PYTHONPATH=. python benchmarks/evaluation.py [--model runs/digits] [--k 10 1000] [--repeats 3]

Without --model it first trains the demo's model (``aevb fit digits-train``, default
options; about 15 s on 2 cores). Prints, per k, the best-of-N wall and CPU seconds of
evaluate on digits-test (359 rows), and the encoder calls per batch of rows.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import aevb
from aevb.data import loaders
from aevb.estimator import EVAL_ROWS


class Counting(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    folder = args.model
    if folder is None:
        folder = Path(tempfile.mkdtemp()) / "digits"
        aevb.VAE().fit(loaders.load("digits-train")).save(folder)
    model = aevb.load(folder)
    X = loaders.load("digits-test").values
    batches = math.ceil(len(X) / EVAL_ROWS)
    print(f"{len(X)} rows x {X.shape[1]} features, {batches} batches of at most {EVAL_ROWS} rows, "
          f"{torch.get_num_threads()} threads")
    for k in args.k:
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            figures = model.evaluate(X, k=k)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        original = model.model_.encoder
        model.model_.encoder = counter = Counting(original)
        try:
            model.evaluate(X, k=k)
        finally:
            model.model_.encoder = original
        print(f"evaluate k={k:5d}: {min(walls):6.2f} s wall, {min(cpus):6.2f} s CPU (best of {args.repeats}); "
              f"log p(x) {figures['log_likelihood']:.3f} nats/row; encoder calls per batch {counter.calls / batches:g}")


if __name__ == "__main__":
    main()
