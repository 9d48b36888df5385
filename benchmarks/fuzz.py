"""The hostile findings' fuzz classes at length: draws N cases per class (17,000 in all by
default) from a seeded numpy generator, runs each through tests/fuzz_cases.py, and prints
per class how many ended in success, a clean one-line error, a traceback or a hang.

    PYTHONPATH=$PWD python benchmarks/fuzz.py [--per-class 1700]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from aevb.train.checkpoint import RUN_FILES
from aevb.train.checkpoint_fields import PROGRESS_FIELDS

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


_MADE: dict = {}  # the tiny run folder and model the damaged-file classes start from, made once


def _made(name: str, make):
    if name not in _MADE:
        _MADE[name] = make(Path(tempfile.mkdtemp(prefix="aevb-fuzz-")))
    return _MADE[name]


def _json_value(rng):
    pick = int(rng.integers(9))
    return [None, bool(rng.integers(2)), int(rng.integers(-(2**62), 2**62)) // 10 ** int(rng.integers(0, 19)),
            float(rng.choice([np.nan, np.inf, -np.inf, 1e-300, 1e300, -1.5, 0.0, 2.5])), str(rng.choice(["", "x", "2"])),
            [int(v) for v in rng.integers(-3, 60, rng.integers(0, 4))], {"x": 1},
            str(rng.choice(sorted(cases.RAW_JSON))), int(rng.integers(-3, 60))][pick]


def _tensor(rng):
    if rng.integers(6) == 0:
        return None
    dtype = rng.choice([np.float64, np.float32, np.float16, np.int64, np.uint8])
    shape = tuple(int(v) for v in rng.integers(0, 7, rng.integers(0, 3)))
    values = rng.normal(size=shape) * 10 ** rng.integers(0, 4)
    if values.size and dtype in (np.float64, np.float32, np.float16) and rng.integers(2):
        values.flat[int(rng.integers(values.size))] = rng.choice([np.nan, np.inf])
    return torch.from_numpy(np.array(np.abs(values) if dtype in (np.int64, np.uint8) else values, dtype=dtype))


CHECKPOINT_TENSORS = ("order", "sums", "rng/torch", "rng/batches", "model/encoder.0.0.weight", "best/decoder.0.0.bias",
                      "optimizer/0/exp_avg", "optimizer/0/exp_avg_sq", "optimizer/0/step", "junk")


def _checkpoint(rng):
    run, rows = _made("run", cases.tiny_run)
    if rng.integers(2):
        return cases.damaged_checkpoint_case(run, rows, str(rng.choice(PROGRESS_FIELDS)), _json_value(rng))
    return cases.damaged_checkpoint_case(run, rows, str(rng.choice(CHECKPOINT_TENSORS)), _tensor(rng))


def _config(rng):
    model, rows = _made("model", cases.tiny_model)
    paths = cases.leaf_paths(json.loads((model / "config.json").read_text()))
    return cases.damaged_config_case(model, rows, paths[int(rng.integers(len(paths)))], _json_value(rng))


def _npz(rng):
    content = rng.integers(0, 256, rng.integers(0, 200)).astype(np.uint8).tobytes()
    return cases.odd_npz_case(str(rng.choice(cases.NPZ_MEMBERS)), content)


def _run_folder(rng):
    return cases.run_folder_case(str(rng.choice([*RUN_FILES, "evaluation.json"])), str(rng.choice(cases.RUN_FOLDER_ENTRIES)))


CLASSES = {"CSV separators/BOM/header": _csv, "offsets and spreads": _precision, "seeds": _seed,
           "size options": _size, "odd files": _odd, "interrupted outputs": _output,
           "written rows": _written, "damaged checkpoints": _checkpoint, "damaged config.json": _config, ".npz members": _npz,
           "odd run folders": _run_folder}


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
    for made in _MADE.values():
        shutil.rmtree(made[0].parent, ignore_errors=True)


if __name__ == "__main__":
    main()
