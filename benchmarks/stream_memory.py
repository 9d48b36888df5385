"""Peak memory of `aevb sample -n N --out` and `aevb encode` as N grows: each figure is
the growth of the process's peak resident memory over a run of 1,000 rows, in a fresh
process, beside the size of the rows in float64 (what a one-shot run holds, several times).

    python benchmarks/stream_memory.py [--features 40] [--rows 100000 400000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PEAK = """
import json, resource, sys
from aevb.cli import run
small, large = json.loads(sys.argv[1])
assert run(small) == 0
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert run(large) == 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base)
"""


def growth(small: list[str], large: list[str]) -> tuple[float, float]:
    """Peak growth in MB, and the seconds the large run took (with the small one)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, json.dumps([small, large])], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return int(done.stdout.split()[-1]) / 1e6, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 400_000])
    args = parser.parse_args()
    import aevb

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rng = np.random.default_rng(0)
        aevb.VAE(epochs=1, hidden=(8,), latent_dim=2).fit(rng.normal(size=(50, args.features))).save(folder / "run")
        np.save(folder / "small.npy", rng.normal(size=(1000, args.features)).astype(np.float32))
        print(f"{'command':8}{'rows':>10}{'float64 MB':>12}{'peak growth MB':>16}{'s':>7}")
        for n in args.rows:
            data = np.lib.format.open_memmap(folder / "large.npy", mode="w+", dtype=np.float32, shape=(n, args.features))
            data[:] = rng.normal(size=(n, args.features))
            data.flush()
            del data
            size = n * args.features * 8 / 1e6
            runs = {
                "sample": [["sample", str(folder / "run"), "-n", str(rows), "--out", str(folder / "s.npy"), "-q"]
                           for rows in (1000, n)],
                "encode": [["encode", str(folder / "run"), str(folder / name), "--out", str(folder / "z.npy"), "-q"]
                           for name in ("small.npy", "large.npy")],
            }
            for command, (small, large) in runs.items():
                grown, seconds = growth(small, large)
                print(f"{command:8}{n:>10}{size:>12.0f}{grown:>16.1f}{seconds:>7.1f}")


if __name__ == "__main__":
    main()
