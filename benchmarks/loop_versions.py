"""Training throughput of two versions of aevb, interleaved: ``VAE(epochs=30).fit(digits)``.

Run from the repository root, with another version's source tree (for instance
``git archive OTHER_COMMIT | tar -x -C /tmp/other``):

    python benchmarks/loop_versions.py --old /tmp/other [--new .] [--runs 3] [--epochs 30]

Each run is a fresh process (``PYTHONPATH`` = that tree) that fits the default VAE to
the built-in digits (1797 rows x 64 levels, 10% held out) for ``--epochs`` epochs
(patience above it, so every run trains them all), with ``torch.set_flush_denormal(True)``
as the aevb command sets it. Runs alternate old, new, old, new, ... so that a change in
the machine's load hits both. Printed per run: training rows per second from the loop's
own clock (the ``seconds`` of the last metrics row: steps, validation passes and
best-weight copies) and from the wall time of ``fit``; then the medians and the ratio
new / old of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
import torch
torch.set_flush_denormal(True)
from aevb import VAE, datasets
X = datasets.load("digits").values
epochs = int(sys.argv[1])
started = time.perf_counter()
model = VAE(epochs=epochs, patience=epochs + 1, seed=0).fit(X, progress=False)
wall = time.perf_counter() - started
rows = (len(X) - round(0.1 * len(X))) * len(model.history_)
print(json.dumps({"loop": rows / model.history_[-1]["seconds"], "fit": rows / wall}))
"""


def one_run(tree: Path, epochs: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    out = subprocess.run([sys.executable, "-c", CHILD, str(epochs)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="source tree of the version to compare against")
    parser.add_argument("--new", type=Path, default=Path("."), help="source tree of this version")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    rates = {"old": [], "new": []}
    for run in range(args.runs):
        for name in ("old", "new"):
            rate = one_run(getattr(args, name), args.epochs)
            rates[name].append(rate)
            print(f"run {run + 1} {name}: {rate['loop']:8.0f} rows/s (loop clock) {rate['fit']:8.0f} rows/s (fit wall)")
    for clock in ("loop", "fit"):
        old = statistics.median(r[clock] for r in rates["old"])
        new = statistics.median(r[clock] for r in rates["new"])
        print(f"median rows/s by the {clock} clock: old {old:.0f}, new {new:.0f}; new / old {new / old:.3f}")


if __name__ == "__main__":
    main()
