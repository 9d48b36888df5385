"""aevb's defaults against other option sets, interleaved on the datasets of ``suite.py``.

    .venv/bin/python benchmarks/defaults_ab.py --budget 30 \\
        --variant "old=latent_dim=16;hidden=(256,256)" [--variant "name=options" ...] [--datasets ...]

For each dataset, every variant and aevb's defaults train for the same wall-clock
budget one after another (so a busy machine slows them alike) and are scored on the
held-out rows by the importance-weighted estimate; prints held-out NLL (nats/row,
lower is better) +- standard error, and each variant minus the defaults, paired by
row (positive: the defaults are better).
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)

import argparse  # noqa: E402

from suite import DATASETS, _mean_se, aevb_options, aevb_vae, load_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--variant", action="append", default=[], help="NAME=name=value;name=value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=1000)
    args = parser.parse_args()
    variants = {"defaults": {}}
    for text in args.variant:
        name, options = text.split("=", 1)
        variants[name] = aevb_options(options)
    print(f"budget {args.budget:g} s, K={args.k}; held-out NLL nats/row; variant - defaults (positive: defaults better)")
    for dataset in args.datasets.split(","):
        task = load_task(dataset, args.seed)
        results = {name: aevb_vae(task, args.budget, args.seed, args.k, options) for name, options in variants.items()}
        base = results["defaults"][0]
        for name, (per_row, note) in results.items():
            mean, se = _mean_se(-per_row)
            gain, gain_se = _mean_se(base - per_row)
            print(f"{dataset:18}{name:12}{mean:10.3f} ±{se:5.3f}   {gain:8.3f} ±{gain_se:5.3f}   {note}", flush=True)


if __name__ == "__main__":
    main()
