"""The hostile findings' fuzz classes at length: draws N cases per class (10,000+ in all by
default) from a seeded numpy generator, runs each through tests/fuzz_cases.py, and prints
per class how many ended in success, a clean one-line error, a traceback or a hang.

    PYTHONPATH=$PWD python benchmarks/fuzz.py [--per-class 1700]
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fuzz_cases as cases  # noqa: E402


def _csv(rng):
    values = rng.normal(size=(rng.integers(1, 6), rng.integers(2, 5))) * 10.0 ** rng.integers(-10, 12)
    return cases.csv_case(values, rng.choice([",", ";", "\t", "|"]), bool(rng.integers(2)), bool(rng.integers(2)))


def _precision(rng):
    offset = float(rng.choice([0.0, 1.7e9, 1e12, -1e12, 1e-12]))
    spread = float(rng.choice([1e-20, 1e-9, 1e-3, 1.0, 1e3]))
    if offset and spread / abs(offset) < 1e-15:
        spread = abs(offset) * 1e-8
    return cases.precision_case(offset, spread, int(rng.integers(2, 50)), int(rng.integers(1000)))


def _seed(rng):
    pick = rng.integers(4)
    seed = [int(rng.integers(-(2**62), 2**62)) * int(rng.integers(1, 8)), True, float(rng.normal()), "7"][pick]
    return cases.seed_case(seed)


def _size(rng):
    big = lambda: int(10 ** rng.uniform(0, 9))  # noqa: E731
    options = {
        "latent_dim": big(), "hidden": tuple(big() for _ in range(rng.integers(1, 4))), "mc_samples": big(),
        "prior_components": big(), "prior": rng.choice(["standard", "mog", "vamp"]),
        "posterior": rng.choice(["diagonal", "full", "iaf"]), "flow_layers": int(10 ** rng.uniform(0, 6)),
        "objective": rng.choice(["elbo", "iwae"]), "k": big(),
    }
    return cases.size_case(options, int(10 ** rng.uniform(0, 6)))


def _odd(rng):
    kind = rng.choice(["fifo", "folder", "dangling", "loop", "empty", "fifo_in_folder"])
    return cases.odd_file_case(str(kind), str(rng.choice([".npy", ".npz", ".csv", ".parquet", ""])))


def _output(rng):
    n = int(rng.integers(1, 6))
    fail = None if rng.integers(2) else int(rng.integers(0, 6))
    return cases.output_case(str(rng.choice([".npy", ".csv"])), n, fail)


def _written(rng):
    rows, width = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    values = rng.normal(size=(rows, width)) * 10.0 ** rng.uniform(-3, 15, size=width)
    return cases.written_rows_case(values, tuple(bool(b) for b in rng.integers(0, 2, width)), bool(rng.integers(2)))


CLASSES = {"CSV separators/BOM/header": _csv, "offsets and spreads": _precision, "seeds": _seed,
           "size options": _size, "odd files": _odd, "interrupted outputs": _output,
           "written rows": _written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=1700)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    totals: Counter = Counter()
    print(f"{'class':28}{'cases':>7}{'success':>9}{'clean':>7}{'trace':>7}{'hang':>6}{'s':>7}")
    for name, case in CLASSES.items():
        counts: Counter = Counter()
        started = time.perf_counter()
        for _ in range(args.per_class):
            try:
                counts[case(rng)] += 1
            except cases.Hang:
                counts["hang"] += 1
            except Exception:  # noqa: BLE001 - counted, first one shown
                if not counts["traceback"]:
                    traceback.print_exc(limit=3)
                counts["traceback"] += 1
        totals.update(counts)
        print(f"{name:28}{args.per_class:7}{counts['success']:9}{counts['clean error']:7}"
              f"{counts['traceback']:7}{counts['hang']:6}{time.perf_counter() - started:7.1f}")
    print(f"{'all':28}{sum(totals.values()):7}{totals['success']:9}{totals['clean error']:7}"
          f"{totals['traceback']:7}{totals['hang']:6}")


if __name__ == "__main__":
    main()
