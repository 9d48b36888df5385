"""Peak memory of training (a memory-mapped .npy read in shuffled chunks), of `aevb score` and of
`aevb evaluate` (memory-mapped, streamed) at 1e5 and 1e6 rows, and training throughput of 2 torchrun
processes (gloo) against 1 process.

    .venv/bin/python benchmarks/distributed.py [--rows 100000 1000000] [--throughput-rows 40000]

Each measurement runs in a fresh process. Peak memory is the process's own: the largest
anonymous resident memory (RssAnon in /proc/self/status, sampled every 5 ms by a thread),
which leaves out the pages of the memory-mapped file, shared with the page cache and
dropped under pressure. The max RSS (ru_maxrss), which counts those pages, is shown too.
Training is forced onto the chunked path (--in-memory-mib 1) at both sizes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEATURES = 16
FIT = ["--hidden", "64", "--latent-dim", "4", "--quiet", "--device", "cpu", "--patience", "100"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
PEAK = """
import re, resource, sys, threading, time
peak = [0]
def anonymous_kib():
    with open("/proc/self/status") as status:
        return int(re.search(r"RssAnon:\\s+(\\d+)", status.read()).group(1))
def sample():
    while True:
        peak[0] = max(peak[0], anonymous_kib())
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
from aevb.cli import main
try:
    main(sys.argv[1:])
finally:
    peak[0] = max(peak[0], anonymous_kib())
    print(peak[0] // 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, file=sys.stderr)
"""


def peak_mib(*args) -> str:
    """'anonymous peak (max RSS)' in MiB of one aevb command."""
    done = subprocess.run([sys.executable, "-c", PEAK, *map(str, args)], env=ENV, capture_output=True, text=True)
    anonymous, rss = done.stderr.strip().splitlines()[-1].split()
    return f"{anonymous} ({rss})"


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=ENV, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--throughput-rows", type=int, default=40_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        rng = np.random.default_rng(0)
        print("peak anonymous memory MiB (max RSS incl. mapped file pages)")
        print(f"{'rows':>9} {'fit':>13} {'score':>13} {'evaluate':>13}")
        for n in args.rows:
            data = folder / f"x{n}.npy"
            out = np.lib.format.open_memmap(data, mode="w+", dtype=np.float32, shape=(n, FEATURES))
            for s in range(0, n, 100_000):
                out[s : s + 100_000] = rng.normal(size=(min(100_000, n - s), FEATURES))
            out.flush()
            del out
            fit = peak_mib("fit", data, "--out", folder / f"run{n}", "--epochs", 1, "--batch-size", 1024,
                           "--in-memory-mib", 1, *FIT)
            score = peak_mib("score", folder / f"run{n}", data, "--out", folder / "s.npy", "--k", 1)
            evaluate = peak_mib("evaluate", folder / f"run{n}", data, "--k", 1)
            print(f"{n:>9} {fit:>13} {score:>13} {evaluate:>13}")
        data = folder / "t.npy"
        np.save(data, rng.normal(size=(args.throughput_rows, FEATURES)).astype(np.float32))
        fit = ["fit", str(data), "--epochs", "3", "--batch-size", "256", *FIT]
        one = seconds([sys.executable, "-m", "aevb", *fit, "--out", str(folder / "one")])
        two = seconds([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                       "-m", "aevb", *fit, "--out", str(folder / "two")])
        rows = 3 * args.throughput_rows * 0.9
        print(f"training throughput, {args.throughput_rows} rows x 3 epochs, batch 256 (wall time incl. start-up):")
        print(f"  1 process : {rows / one:9.0f} rows/s ({one:.1f}s)")
        print(f"  2 processes (torchrun, gloo): {rows / two:9.0f} rows/s ({two:.1f}s)")
    print("no GPU here: the CUDA/NCCL path is not measured")


if __name__ == "__main__":
    main()
