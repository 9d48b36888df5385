"""aevb against the alternatives, on the same data, the same CPU and the same time budget.

Run from the repository root, in an environment that may also hold the peers
(they are never aevb dependencies; see the README's Benchmarks section):

    .venv-bench/bin/python benchmarks/compare.py [--budget 30] [--datasets digits,synthetic] [--seed 0]

Two datasets:

- ``digits``: scikit-learn's 8x8 digits, aevb's fixed digits-train / digits-test
  split (1,438 / 359 rows, levels 0..16). Figures are dequantization bounds on
  log P(x) of the discrete rows, reported as bits/dim.
- ``synthetic``: x = f(z) + e in 16 dimensions, z ~ N(0, I_2), f a fixed
  random tanh network (seed 1234), e ~ N(0, diag sigma^2) with sigma in
  [0.3, 0.6]; 20,000 training and 2,000 test rows drawn from ``--seed``. The true
  log p(x) = log int N(x; f(z), sigma^2) N(z; 0, I) dz is computed by quadrature
  on a grid over [-6, 6]^2 (its error is printed: the change from doubling
  the grid), and its mean is the floor ("true density") of the table, in
  nats per row.

Every contender gets ``--budget`` seconds of wall-clock training (a stopping
rule may end it sooner) and is scored on the test rows:

- aevb's VAE (default options, and the mog-prior variant), like the peers run
  for the whole budget (no early stopping) keeping the best-validation weights;
- scikit-learn's GaussianMixture (full and diagonal covariance, number of
  components chosen on a validation split), KernelDensity (bandwidth chosen on
  validation), PCA.score and FactorAnalysis (number of components chosen on
  validation); the search over a grid starts no new value after the budget;
- a Pyro VAE (SVI, Trace_ELBO, pyro.optim.Adam) and a pythae VAE (its
  TrainingPipeline), each with aevb's encoder/decoder sizes, SiLU, batch size
  and learning rate, on torch's default threads (aevb's loop picks its own by
  timing its steps), when the package is installed; one that is not is reported as such.

Every VAE, aevb's or not, is scored by the same evaluator: the peer's trained
encoder and decoder nets are wrapped in an aevb ``LatentVariableModel`` and
``score_samples(test, k=1000)`` runs aevb's importance-weighted estimate
through aevb's own preprocessing. scikit-learn models see the same
standardized (and, for digits, dequantized) data and are scored by the mean of
log p(x + u) over ``--noise-draws`` draws of u, plus the same Jacobian.

Throughput is training rows processed per second of the training budget
(epochs x rows / seconds; for aevb and the peers, including their per-epoch
validation pass). A full run takes about 15 x budget seconds plus evaluation.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)  # as the aevb CLI does, before torch starts its threads

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from common import (  # noqa: E402
    bits_per_dim,
    choose_on_validation,
    dequantized,
    held_out_nats,
    split_rows,
)
from torch import nn  # noqa: E402

from aevb import VAE, datasets  # noqa: E402
from aevb.core.distributions import bounded_scale, diagonal_normal  # noqa: E402
from aevb.core.nets import mlp  # noqa: E402
from aevb.core.priors import StandardNormalPrior  # noqa: E402
from aevb.data.preprocess import Preprocessor  # noqa: E402
from aevb.estimator import LatentModelEstimator  # noqa: E402
from aevb.vae.model import LatentVariableModel  # noqa: E402

K = 1000


@dataclass
class Task:
    name: str
    train: np.ndarray
    test: np.ndarray
    true_log_likelihood: float | None = None
    quadrature_error: float | None = None

    @property
    def n_features(self) -> int:
        return self.train.shape[1]

    def nll(self, nats_per_row: float) -> float:
        """The table's unit: bits/dim for digits, nats per row (negated) otherwise."""
        return bits_per_dim(nats_per_row, self.n_features) if self.name == "digits" else -nats_per_row

    @property
    def unit(self) -> str:
        return "bits/dim" if self.name == "digits" else "NLL nats"


@dataclass
class Result:
    name: str
    log_likelihood: float | None  # nats per row; None when the contender could not run
    fit_seconds: float | None = None
    rows_per_second: float | None = None
    note: str = ""


# -- the data -------------------------------------------------------------------------

SYNTHETIC_FEATURES, SYNTHETIC_HIDDEN, F_SEED = 16, 32, 1234


class SyntheticDensity:
    """x = f(z) + e, z ~ N(0, I_2), f(z) = tanh(z A + c) B + b, e ~ N(0, diag sigma^2), fixed by F_SEED."""

    def __init__(self):
        rng = np.random.default_rng(F_SEED)
        self.A = rng.normal(0, 1.5, size=(2, SYNTHETIC_HIDDEN))
        self.c = rng.normal(0, 0.5, size=SYNTHETIC_HIDDEN)
        self.B = rng.normal(0, 2.0 / math.sqrt(SYNTHETIC_HIDDEN), size=(SYNTHETIC_HIDDEN, SYNTHETIC_FEATURES))
        self.b = rng.normal(0, 1.0, size=SYNTHETIC_FEATURES)
        self.sigma = rng.uniform(0.3, 0.6, size=SYNTHETIC_FEATURES)

    def f(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z @ self.A + self.c) @ self.B + self.b

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.normal(size=(n, 2))
        return self.f(z) + self.sigma * rng.normal(size=(n, SYNTHETIC_FEATURES))

    def log_density(self, x: np.ndarray, grid: int = 600, half_width: float = 6.0) -> np.ndarray:
        """log p(x) per row by the midpoint rule over z on a grid x grid over [-h, h]^2."""
        step = 2 * half_width / grid
        axis = -half_width + step * (np.arange(grid) + 0.5)
        z = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)  # (G^2, 2)
        precision = torch.as_tensor(1.0 / self.sigma**2)
        mean = torch.as_tensor(self.f(z))  # (G^2, D)
        # log N(x; f(z), sigma^2) + log N(z; 0, I) = const - |x - f(z)|^2_P / 2 - |z|^2 / 2
        per_point = -0.5 * (mean**2 * precision).sum(-1) - 0.5 * torch.as_tensor((z**2).sum(-1))  # (G^2,)
        const = -0.5 * np.log(2 * np.pi * self.sigma**2).sum() - np.log(2 * np.pi) + 2 * np.log(step)
        out = []
        for rows in torch.as_tensor(x).split(100):
            cross = (rows * precision) @ mean.T  # (R, G^2)
            quadratic = -0.5 * (rows**2 * precision).sum(-1, keepdim=True)
            out.append(torch.logsumexp(cross + per_point + quadratic, dim=-1) + const)
        return torch.cat(out).numpy()


def load_task(name: str, seed: int) -> Task:
    if name == "digits":
        return Task("digits", datasets.load("digits-train").values, datasets.load("digits-test").values)
    density = SyntheticDensity()
    rng = np.random.default_rng(seed)
    train, test = density.sample(20_000, rng), density.sample(2_000, rng)
    truth = density.log_density(test)
    finer = density.log_density(test[:200], grid=1200)
    return Task("synthetic", train, test, float(truth.mean()), float(np.abs(finer - truth[:200]).max()))


# -- the contenders ---------------------------------------------------------------------


def aevb_vae(task: Task, args, **options) -> Result:
    # Like the peers, train for the whole budget and keep the best-validation weights.
    model = VAE(seed=args.seed, max_time=args.budget, patience=10**9, **options)
    started = time.perf_counter()
    model.fit(task.train, progress=False)
    seconds = time.perf_counter() - started
    rows = len(model.history_) * round(len(task.train) * (1 - model.config.validation_fraction))
    log_likelihood = model.score(task.test, k=K, seed=args.seed)
    note = f"{len(model.history_)} epochs, best {model.best_epoch_} ({model.stopped_because_})"
    return Result("aevb VAE" + "".join(f", {k}={v}" for k, v in options.items()), log_likelihood, seconds, rows / seconds, note)


def sklearn_density(task: Task, args, name: str, make, grid, label) -> Result:
    pre = Preprocessor.fit(task.train, "gaussian")
    y = dequantized(pre, task.train, torch.Generator().manual_seed(args.seed))
    started = time.perf_counter()
    estimator, chosen = choose_on_validation(make, grid, y, args.seed, args.budget)
    seconds = time.perf_counter() - started
    log_likelihood = held_out_nats(estimator.score_samples, pre, task.test, args.noise_draws, args.seed + 1)
    return Result(name, log_likelihood, seconds, None, f"{label}={chosen}")


def sklearn_contenders(task: Task, args) -> list:
    from sklearn.decomposition import PCA, FactorAnalysis
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    components = [1, 2, 5, 10, 20, 50, 100, 200]
    dims = [d for d in (1, 2, 4, 8, 16, 24, 32, 48) if d < task.n_features]
    seed = args.seed
    return [
        lambda: sklearn_density(task, args, "sklearn GaussianMixture full",
                                lambda n: GaussianMixture(n, covariance_type="full", random_state=seed),
                                components, "components"),
        lambda: sklearn_density(task, args, "sklearn GaussianMixture diag",
                                lambda n: GaussianMixture(n, covariance_type="diag", random_state=seed),
                                components, "components"),
        lambda: sklearn_density(task, args, "sklearn KernelDensity",
                                lambda h: KernelDensity(bandwidth=h), [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
                                "bandwidth"),
        lambda: sklearn_density(task, args, "sklearn PCA.score", lambda d: PCA(d, random_state=seed), dims,
                                "components"),
        lambda: sklearn_density(task, args, "sklearn FactorAnalysis",
                                lambda d: FactorAnalysis(d, random_state=seed), dims, "components"),
    ]


class NetPosterior(nn.Module):
    """Wraps a peer's encoder net: y -> (loc, log-scale) -> N(loc, diag scale^2), as aevb's head does."""

    def __init__(self, net: nn.Module, split):
        super().__init__()
        self.net, self.split = net, split

    def forward(self, y: torch.Tensor):
        return diagonal_normal(*self.split(self.net(y)))


def scored_peer(net_encoder: nn.Module, net_decoder: nn.Module, pre: Preprocessor, task: Task, args, split_q, split_p):
    """Held-out log p(x) of a peer's trained nets, by aevb's own importance-weighted evaluator."""
    config_hidden = (256, 256)
    wrapped = LatentModelEstimator(hidden=config_hidden, latent_dim=args.latent_dim)
    wrapped.preprocessor_, wrapped.n_features_in_, wrapped.image_shape_ = pre, task.n_features, None
    model = LatentVariableModel(
        NetPosterior(net_encoder, split_q), NetPosterior(net_decoder, split_p), StandardNormalPrior(args.latent_dim)
    )
    wrapped.model_ = model.float().eval()
    return wrapped.score(task.test, k=K, seed=args.seed)


def chunk_loc_log_scale(out: torch.Tensor):
    return out.chunk(2, dim=-1)


class Budget(Exception):
    pass


def pyro_vae(task: Task, args) -> Result:
    import pyro
    import pyro.distributions as dist
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    pre = Preprocessor.fit(task.train, "gaussian")
    val_values, fit_values = split_rows(task.train, 0.1, args.seed)
    fit_x, val_x = (torch.as_tensor(v, dtype=torch.float32) for v in (fit_values, val_values))
    torch.manual_seed(args.seed)
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    d, D, hidden = args.latent_dim, task.n_features, (256, 256)
    encoder = nn.Sequential(mlp(D, hidden), nn.Linear(hidden[-1], 2 * d))
    decoder = nn.Sequential(mlp(d, hidden[::-1]), nn.Linear(hidden[0], 2 * D))

    def model(y):
        pyro.module("decoder", decoder)
        with pyro.plate("rows", len(y)):
            z = pyro.sample("z", dist.Normal(y.new_zeros(len(y), d), 1.0).to_event(1))
            loc, log_scale = decoder(z).chunk(2, dim=-1)
            pyro.sample("x", dist.Normal(loc, bounded_scale(log_scale)).to_event(1), obs=y)

    def guide(y):
        pyro.module("encoder", encoder)
        with pyro.plate("rows", len(y)):
            loc, log_scale = encoder(y).chunk(2, dim=-1)
            pyro.sample("z", dist.Normal(loc, bounded_scale(log_scale)).to_event(1))

    svi = SVI(model, guide, Adam({"lr": 1e-3}), loss=Trace_ELBO())
    generator = torch.Generator().manual_seed(args.seed)
    val_y = pre.to_model(val_x, generator)
    best, best_state, epochs, rows = -math.inf, None, 0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.budget:
        order = torch.randperm(len(fit_x), generator=generator)
        for start in range(0, len(fit_x), 128):
            svi.step(pre.to_model(fit_x[order[start : start + 128]], generator))
        epochs, rows = epochs + 1, rows + len(fit_x)
        val_elbo = -svi.evaluate_loss(val_y)
        if val_elbo > best:
            best, best_state = val_elbo, ({k: v.clone() for k, v in encoder.state_dict().items()},
                                          {k: v.clone() for k, v in decoder.state_dict().items()})
    seconds = time.perf_counter() - started
    encoder.load_state_dict(best_state[0])
    decoder.load_state_dict(best_state[1])
    log_likelihood = scored_peer(encoder, decoder, pre, task, args, chunk_loc_log_scale, chunk_loc_log_scale)
    return Result(f"Pyro {pyro.__version__} VAE", log_likelihood, seconds, rows / seconds,
                  f"{epochs} epochs, best-validation weights")


def pythae_vae(task: Task, args) -> Result:
    import contextlib
    import logging
    import os
    import tempfile

    import pythae
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig as PythaeConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    for name in list(logging.root.manager.loggerDict):  # pythae sets INFO on each of its loggers
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)
    pre = Preprocessor.fit(task.train, "gaussian")
    generator = torch.Generator().manual_seed(args.seed)
    val_values, fit_values = split_rows(task.train, 0.1, args.seed)
    fit_y, val_y = (pre.to_model(torch.as_tensor(v, dtype=torch.float32), generator) for v in (fit_values, val_values))
    d, D, hidden = args.latent_dim, task.n_features, (256, 256)

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(mlp(D, hidden), nn.Linear(hidden[-1], 2 * d))

        def forward(self, x):
            loc, log_variance = self.net(x).chunk(2, dim=-1)
            return ModelOutput(embedding=loc, log_covariance=log_variance)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(mlp(d, hidden[::-1]), nn.Linear(hidden[0], D))

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z))

    epochs = []
    started = time.perf_counter()

    class StopAtBudget(TrainingCallback):
        def on_epoch_end(self, training_config, **kwargs):
            epochs.append(time.perf_counter())
            if time.perf_counter() - started >= args.budget:
                raise Budget

    torch.manual_seed(args.seed)
    model = PythaeVAE(PythaeConfig(input_dim=(D,), latent_dim=d, reconstruction_loss="mse"),
                      encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as folder:
        config = BaseTrainerConfig(output_dir=folder, num_epochs=100_000, learning_rate=1e-3,
                                   per_device_train_batch_size=128, per_device_eval_batch_size=1024,
                                   no_cuda=True, seed=args.seed)
        pipeline = TrainingPipeline(training_config=config, model=model)
        started = time.perf_counter()
        try:
            with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):  # its progress bars
                pipeline(train_data=fit_y, eval_data=val_y, callbacks=[StopAtBudget()])
        except Budget:
            pass
    seconds = time.perf_counter() - started
    best = getattr(pipeline.trainer, "_best_model", model).float().eval()
    # pythae's "mse" decoder is a unit-variance Gaussian; score it with the maximum-likelihood
    # noise scale per feature instead (fitted on the training rows), which can only help it.
    with torch.no_grad():
        reconstruction = best.decoder(best.encoder(fit_y).embedding).reconstruction
        log_scale = 0.5 * torch.log(((fit_y - reconstruction) ** 2).mean(0))
    log_likelihood = scored_peer(
        best.encoder.net, best.decoder.net, pre, task, args, chunk_loc_log_scale,
        lambda out: (out, log_scale.expand_as(out)),
    )
    rows = len(epochs) * len(fit_y)
    return Result(f"pythae {getattr(pythae, '__version__', '')} VAE".replace("  ", " "), log_likelihood, seconds,
                  rows / seconds, f"{len(epochs)} epochs, mse decoder, sigma refit per feature")


# -- the table ---------------------------------------------------------------------------


def run(name: str, contender) -> Result:
    try:
        return contender()
    except ImportError as error:
        return Result(name, None, note=f"not installed ({error.name or error})")
    except Exception as error:  # a contender that fails is reported, never dropped
        traceback.print_exc()
        return Result(name, None, note=f"failed: {type(error).__name__}: {error}")


def print_table(task: Task, results: list[Result], args) -> None:
    print(f"\n{task.name}: train {len(task.train)} rows, test {len(task.test)} rows, {task.n_features} dims, "
          f"budget {args.budget:g} s per contender, VAE likelihoods by importance sampling, K={K}")
    print(f"  {'model':36}{task.unit:>10}{'fit s':>8}{'rows/s':>9}   notes")
    if task.true_log_likelihood is not None:
        print(f"  {'true density (quadrature)':36}{task.nll(task.true_log_likelihood):10.3f}{'':17}   "
              f"quadrature error < {task.quadrature_error:.1e} nats")
    for r in sorted(results, key=lambda r: -math.inf if r.log_likelihood is None else r.log_likelihood, reverse=True):
        nll = "-" if r.log_likelihood is None else f"{task.nll(r.log_likelihood):.3f}"
        seconds = "-" if r.fit_seconds is None else f"{r.fit_seconds:.1f}"
        rate = "-" if r.rows_per_second is None else f"{r.rows_per_second:.0f}"
        print(f"  {r.name:36}{nll:>10}{seconds:>8}{rate:>9}   {r.note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds per contender (default 30)")
    parser.add_argument("--datasets", default="digits,synthetic")
    parser.add_argument("--only", default="", help="run only contenders whose name contains one of these (comma-separated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latent-dim", type=int, default=16, help="latent size of the peer VAEs (aevb's default)")
    parser.add_argument("--noise-draws", type=int, default=5, help="dequantization draws per test row (sklearn)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, flush_denormal on, seed {args.seed}")
    wanted = [w for w in args.only.split(",") if w]
    for name in args.datasets.split(","):
        task = load_task(name, args.seed)
        contenders = [
            ("aevb VAE", lambda: aevb_vae(task, args)),
            ("aevb VAE, prior=mog", lambda: aevb_vae(task, args, prior="mog")),
            ("Pyro VAE", lambda: pyro_vae(task, args)),
            ("pythae VAE", lambda: pythae_vae(task, args)),
        ]
        labels = ["GaussianMixture full", "GaussianMixture diag", "KernelDensity", "PCA.score", "FactorAnalysis"]
        contenders += [(f"sklearn {label}", c) for label, c in zip(labels, sklearn_contenders(task, args))]
        results = [run(label, c) for label, c in contenders if not wanted or any(w in label for w in wanted)]
        print_table(task, results, args)


if __name__ == "__main__":
    main()
