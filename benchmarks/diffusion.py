"""The diffusion model beside aevb's VAEs, at an equal wall-clock budget, on data with a known answer.

Run from the repository root:

    PYTHONPATH=$PWD python benchmarks/diffusion.py [--budget 900] [--datasets synthetic,digits] [--seed 0]

- ``synthetic``: ``benchmarks/compare.py``'s x = f(z) + e in 16 dimensions (2-D latent, a fixed
  tanh network, feature noise 0.3..0.6; 20,000 training and 2,000 test rows), whose true
  log p(x) is known by quadrature: the table prints each model's held-out negative
  log-likelihood figure and its distance to the truth, in nats per row.
- ``digits``: aevb's digits-train / digits-test split (8x8, levels 0..16), in bits/dim;
  every figure is a bound on the log-probability of the discrete test rows.

Each model trains for ``--budget`` seconds (no early stop; the best validation weights
are kept), as ``compare.py`` runs its contenders: aevb's VAE with default options and
with the mog prior (scored by the importance-weighted bound, k = 1000), and aevb's
Diffusion (scored by its variational bound with ``--t-samples`` draws of t per row,
printed with the Monte-Carlo standard error of the mean), once per epsilon network of
``--nets`` (``mlp,unet`` compares the two; digits reach it as 8x8 images). ``--no-vae``
leaves the VAEs out.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)  # as the aevb CLI does, before torch starts its threads

import argparse  # noqa: E402
import time  # noqa: E402

from compare import K, Result, Task, aevb_vae, load_task  # noqa: E402

from aevb import Diffusion, datasets  # noqa: E402
from aevb.data.loaders import Dataset  # noqa: E402

# The image shape of a task's rows, for the U-Net (None: plain rows).
IMAGE_SHAPES = {"digits": datasets.load("digits-train").image_shape}


def aevb_diffusion(task: Task, args, net: str) -> tuple[Result, float]:
    model = Diffusion(seed=args.seed, max_time=args.budget, patience=10**9, net=net)
    started = time.perf_counter()
    model.fit(Dataset(task.train, IMAGE_SHAPES.get(task.name)), progress=False)
    seconds = time.perf_counter() - started
    rows = len(model.history_) * round(len(task.train) * (1 - model.config.validation_fraction))
    figures = model.evaluate(task.test, k=args.t_samples, seed=args.seed)
    note = f"{len(model.history_)} epochs, best {model.best_epoch_} ({model.stopped_because_})"
    return Result(f"aevb Diffusion, net={net}", figures["bound"], seconds, rows / seconds, note), figures["monte_carlo_std_error"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=900.0, help="Training seconds per model.")
    parser.add_argument("--datasets", default="synthetic,digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--t-samples", type=int, default=64, help="Draws of t per test row in the diffusion bound.")
    parser.add_argument("--nets", default="auto", help="The diffusion model's epsilon networks, one run each: auto, mlp, unet.")
    parser.add_argument("--no-vae", action="store_true", help="Leave the VAEs out.")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    for name in args.datasets.split(","):
        task = load_task(name, args.seed)
        results = [] if args.no_vae else [aevb_vae(task, args), aevb_vae(task, args, prior="mog")]
        mc_errors = []
        for net in args.nets.split(","):
            diffusion, mc_error = aevb_diffusion(task, args, net)
            results.append(diffusion)
            mc_errors.append(f"{mc_error:.3f}")
        print(f"\n{name}: {len(task.train)} training rows, {len(task.test)} test rows, {task.n_features} features, "
              f"budget {args.budget:.0f} s per model")
        if task.true_log_likelihood is not None:
            print(f"true density: NLL {-task.true_log_likelihood:.3f} nats/row (quadrature error {task.quadrature_error:.1e})")
        print(f"{'model':28}{task.unit:>12}{'to truth':>10}{'fit s':>8}  note")
        for result in results:
            figure = task.nll(result.log_likelihood)
            gap = f"{-result.log_likelihood + task.true_log_likelihood:10.3f}" if task.true_log_likelihood is not None else f"{'':10}"
            print(f"{result.name:28}{figure:12.3f}{gap}{result.fit_seconds:8.0f}  {result.note}", flush=True)
        print(f"(VAEs: IWAE bound, k={K}; diffusion: variational bound, {args.t_samples} draws of t per row, "
              f"Monte-Carlo standard error of its mean {', '.join(mc_errors)} nats/row)", flush=True)


if __name__ == "__main__":
    main()
