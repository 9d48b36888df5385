"""Every posterior / prior / objective combination on digits, for the same training time.

    .venv/bin/python benchmarks/variants.py [--max-time 30] [--k 1000] [--only iaf,vamp]

Trains on the built-in digits-train (1,438 rows of 8x8 digits) with the default
network, one thread, ``--max-time`` seconds each (early stopping may end a run
sooner), then prints for digits-test (359 rows): held-out bits/dim of the
K-sample log p(x) estimate, the ELBO in bits/dim, the gap log p(x) estimate -
ELBO in nats per image, active units and epochs run. Lower bits/dim is better.
"""

from __future__ import annotations

import argparse
import itertools
import time
import typing

import torch

from aevb import VAE, datasets
from aevb.config import Objective, Posterior, Prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-time", type=float, default=30.0, help="training seconds per combination")
    parser.add_argument("--k", type=int, default=1000, help="importance samples of the held-out estimate")
    parser.add_argument("--only", default="", help="comma-separated names a combination must all contain")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    train, test = datasets.load("digits-train"), datasets.load("digits-test")
    wanted = [w for w in args.only.split(",") if w]
    combos = [
        c for c in itertools.product(typing.get_args(Posterior), typing.get_args(Prior), typing.get_args(Objective))
        if all(w in c for w in wanted)
    ]
    print(f"digits-test, {args.max_time:g} s of training each, log p(x) estimate with K={args.k}")
    print(f"{'posterior':10}{'prior':10}{'objective':10}{'bits/dim':>10}{'ELBO b/d':>10}{'gap nats':>10}"
          f"{'active':>8}{'epochs':>8}{'eval s':>8}")
    for posterior, prior, objective in combos:
        model = VAE(posterior=posterior, prior=prior, objective=objective, max_time=args.max_time)
        model.fit(train, progress=False)
        started = time.perf_counter()
        figures = model.evaluate(test, k=args.k)
        print(
            f"{posterior:10}{prior:10}{objective:10}{figures['bits_per_dim']:10.3f}{figures['elbo_bits_per_dim']:10.3f}"
            f"{figures['elbo_gap']:10.2f}{figures['active_units']:5d}/{figures['latent_dim']:<2d}"
            f"{len(model.history_):8d}{time.perf_counter() - started:8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
