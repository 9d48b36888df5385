"""aevb's defaults against a plain hand-written VAE and the best scikit-learn density,
on data of many kinds, at one wall-clock budget each.

    .venv/bin/python benchmarks/suite.py [--budget 30] [--datasets digits,wine] [--seed 0] [--k 1000]

Every dataset is generated here or ships with scikit-learn; none was used to choose
aevb's defaults alone. For each one, in one run:

- ``aevb``: ``VAE(max_time=budget)`` with every other option at its default
  (or as ``--aevb-options`` sets them, e.g. to compare with earlier defaults);
- ``plain``: the 60-line VAE below (two hidden layers of 256, or 512 for 256+
  features; 20 latents for 256+ features, else D // 2 capped at 16; batch 100; Adam
  1e-3; a learned per-row decoder scale, or Bernoulli logits for 0/1 data; the weights
  of the best validation ELBO kept), trained for the same wall-clock budget;
- ``sklearn``: the best of GaussianMixture (full, diagonal; 1-100 components) and
  KernelDensity (bandwidths) on a validation split, refitted on all training rows.

Figures are held-out log-likelihoods in nats per row of the user's data (minus:
NLL; lower is better), with their standard errors: both VAEs by the importance-
weighted estimate on ``--k`` draws, everything through the same standardization
and, for level data (integers), dequantization x + u with its Jacobian, so that
every number is a bound on the same quantity. ``aevb - plain`` is the mean paired
difference per test row (positive: aevb is better) and its standard error.
"""

from __future__ import annotations

import torch

torch.set_flush_denormal(True)  # as the aevb command does, before torch starts its threads

import argparse  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from common import split_rows  # noqa: E402
from compare import SyntheticDensity  # noqa: E402
from torch import nn  # noqa: E402
from torch.distributions import Bernoulli, Independent, Normal  # noqa: E402

from aevb import VAE, datasets  # noqa: E402
from aevb.data.preprocess import Preprocessor  # noqa: E402

THREADS = torch.get_num_threads()


@dataclass
class Task:
    name: str
    train: np.ndarray
    test: np.ndarray
    truth: np.ndarray | None = None  # exact log p(x) per test row, where known

    @property
    def kind(self) -> str:
        return Preprocessor.fit(self.train, "auto").kind


# -- the data ---------------------------------------------------------------------------


def _split(values: np.ndarray, seed: int, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    test, train = split_rows(values, test_fraction, seed)
    return train, test


def _digits_binary(size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """digits-train / digits-test at or above level 8; with ``size``, upsampled first (bilinear)."""
    from PIL import Image

    parts = []
    for part in ("digits-train", "digits-test"):
        x = datasets.load(part).values
        if size is not None:
            images = [Image.fromarray((row.reshape(8, 8) * 15).astype(np.uint8)) for row in x]
            x = np.stack([np.asarray(im.resize((size, size), Image.BILINEAR), dtype=np.float64) / 15 for im in images])
            x = x.reshape(len(x), -1)
        parts.append((x >= 8).astype(np.float64))
    return parts[0], parts[1]


def _curve(seed: int, n_train: int = 300, n_test: int = 2000, dims: int = 5, noise: float = 0.1) -> Task:
    """x = g(t) + e, t ~ N(0, 1), g a fixed smooth curve in ``dims`` dimensions; log p by quadrature over t."""
    rng = np.random.default_rng(seed)
    freq = np.random.default_rng(99).uniform(0.5, 2.0, size=(dims,))
    phase = np.random.default_rng(98).uniform(0, np.pi, size=(dims,))

    def g(t):
        return np.sin(np.outer(t, freq) + phase) * 2.0

    def sample(n):
        return g(rng.normal(size=n)) + noise * rng.normal(size=(n, dims))

    train, test = sample(n_train), sample(n_test)
    grid = np.linspace(-7, 7, 4001)
    step = grid[1] - grid[0]
    log_prior = -0.5 * grid**2 - 0.5 * np.log(2 * np.pi)
    means = g(grid)  # (G, D)
    sq = ((test[:, None, :] - means[None]) ** 2).sum(-1)  # (n, G)
    log_lik = -0.5 * sq / noise**2 - dims * (np.log(noise) + 0.5 * np.log(2 * np.pi))
    return Task("curve-5d", train, test, _logsumexp(log_lik + log_prior, axis=1) + np.log(step))


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = a.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _student(seed: int, dims: int = 8, df: float = 3.0, n: int = 5000) -> Task:
    from scipy.stats import multivariate_t

    rng = np.random.default_rng(7)
    a = rng.normal(size=(dims, dims))
    dist = multivariate_t(loc=rng.normal(size=dims) * 3, shape=a @ a.T / dims + 0.1 * np.eye(dims), df=df)
    values = dist.rvs(size=n + 2000, random_state=seed)
    train, test = values[:n], values[n:]
    return Task("student-t-8d", train, test, dist.logpdf(test))


def _mixture(seed: int, dims: int = 6, components: int = 5, n: int = 5000) -> Task:
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(11)
    means = rng.normal(size=(components, dims)) * 4
    covs = []
    for _ in range(components):
        a = rng.normal(size=(dims, dims)) * 0.5
        covs.append(a @ a.T + 0.05 * np.eye(dims))
    weights = rng.dirichlet(np.ones(components) * 3)
    draw = np.random.default_rng(seed)
    labels = draw.choice(components, size=n + 2000, p=weights)
    values = np.stack([draw.multivariate_normal(means[c], covs[c]) for c in labels])
    train, test = values[:n], values[n:]
    density = np.stack([np.log(w) + multivariate_normal(m, c).logpdf(test) for w, m, c in zip(weights, means, covs)])
    return Task("mixture-6d", train, test, _logsumexp(density, axis=0))


def _manifold(seed: int, n: int) -> Task:
    density = SyntheticDensity()
    rng = np.random.default_rng(seed)
    train, test = density.sample(n, rng), density.sample(2000, rng)
    return Task(f"manifold-16d-{n // 1000}k", train, test, density.log_density(test))


def load_task(name: str, seed: int) -> Task:
    from sklearn.datasets import load_breast_cancer, load_wine

    if name == "digits":
        return Task(name, datasets.load("digits-train").values, datasets.load("digits-test").values)
    if name == "digits-binary":
        return Task(name, *_digits_binary(None))
    if name == "digits28-binary":
        return Task(name, *_digits_binary(28))
    if name == "wine":
        return Task(name, *_split(load_wine().data, seed))
    if name == "breast-cancer":
        return Task(name, *_split(load_breast_cancer().data, seed))
    if name == "curve-5d":
        return _curve(seed)
    if name == "student-t-8d":
        return _student(seed)
    if name == "mixture-6d":
        return _mixture(seed)
    if name == "manifold-16d-2k":
        return _manifold(seed, 2000)
    if name == "manifold-16d-20k":
        return _manifold(seed, 20000)
    raise SystemExit(f"unknown dataset {name}")


DATASETS = [
    "digits", "digits-binary", "digits28-binary", "wine", "breast-cancer", "curve-5d",
    "student-t-8d", "mixture-6d", "manifold-16d-2k", "manifold-16d-20k",
]


# -- the plain reference VAE --------------------------------------------------------------


class PlainVAE(nn.Module):
    """Two-layer MLP encoder and decoder; Gaussian decoder with a learned per-row scale, or Bernoulli."""

    def __init__(self, features: int, hidden: int, latent: int, bernoulli: bool):
        super().__init__()
        self.bernoulli, self.latent = bernoulli, latent
        out = features if bernoulli else 2 * features
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, out))

    def q(self, y):
        loc, log_scale = self.encoder(y).chunk(2, dim=-1)
        return Independent(Normal(loc, log_scale.clamp(-10, 10).exp()), 1)

    def p(self, z):
        out = self.decoder(z)
        if self.bernoulli:
            return Independent(Bernoulli(logits=out), 1)
        loc, log_scale = out.chunk(2, dim=-1)
        return Independent(Normal(loc, log_scale.clamp(-10, 10).exp()), 1)

    def log_weights(self, y, k: int):
        """log p(y, z_k) - log q(z_k | y) for k draws per row: (k, B)."""
        q = self.q(y)
        z = q.rsample((k,))
        prior = Independent(Normal(torch.zeros_like(z), torch.ones_like(z)), 1)
        return self.p(z).log_prob(y) + prior.log_prob(z) - q.log_prob(z)


def plain_vae(task: Task, budget: float, seed: int, k: int, threads: int = 2) -> tuple[np.ndarray, str]:
    torch.manual_seed(seed)
    D = task.train.shape[1]
    bernoulli = task.kind == "binary"
    pre = Preprocessor.fit(task.train, "bernoulli" if bernoulli else "gaussian")
    hidden, latent = (512, 20) if D >= 256 else (256, max(1, min(16, D // 2)))
    model = PlainVAE(D, hidden, latent, bernoulli)
    torch.set_num_threads(threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    val_x, fit_x = (torch.as_tensor(v, dtype=torch.float32) for v in split_rows(task.train, 0.1, seed))
    generator = torch.Generator().manual_seed(seed)
    val_y = pre.to_model(val_x, generator)
    best, best_state, epochs, started = -math.inf, None, 0, time.perf_counter()
    while time.perf_counter() - started < budget:
        order = torch.randperm(len(fit_x))
        model.train()
        for start in range(0, len(fit_x), 100):
            y = pre.to_model(fit_x[order[start : start + 100]], generator)
            loss = -model.log_weights(y, 1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        epochs += 1
        with torch.no_grad():
            val = model.log_weights(val_y, 1).mean().item()
        if val > best:
            best, best_state = val, {n: t.clone() for n, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    test = torch.as_tensor(task.test, dtype=torch.float32)
    scores = []
    with torch.no_grad():
        for start in range(0, len(test), 100):
            y = pre.to_model(test[start : start + 100], generator)
            scores.append(torch.logsumexp(model.log_weights(y, k), 0) - math.log(k))
    per_row = torch.cat(scores).double().numpy() + pre.log_abs_det_jacobian()
    torch.set_num_threads(THREADS)
    return per_row, f"{hidden}x2, {latent} latents, {epochs} epochs"


# -- aevb and scikit-learn -------------------------------------------------------------------


def aevb_options(text: str) -> dict:
    """``name=value;name=value`` (values as Python literals, e.g. ``hidden=(256,256)``) -> a dict."""
    import ast

    pairs = (part.split("=", 1) for part in text.split(";") if part.strip())
    return {name.strip(): ast.literal_eval(value.strip()) for name, value in pairs}


def aevb_vae(task: Task, budget: float, seed: int, k: int, options: dict | None = None) -> tuple[np.ndarray, str]:
    model = VAE(max_time=budget, seed=seed, **(options or {})).fit(task.train, progress=False)
    per_row = model.score_samples(task.test, k=k, seed=seed)
    config = model.config
    note = (f"{'x'.join(map(str, config.hidden))}, {config.latent_dim} latents, {len(model.history_)} epochs, "
            f"best {model.best_epoch_} ({model.stopped_because_})")
    return per_row, note


def sklearn_best(task: Task, budget: float, seed: int, k: int) -> tuple[np.ndarray, str]:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    pre = Preprocessor.fit(task.train, "gaussian")
    generator = torch.Generator().manual_seed(seed)
    y = pre.to_model(torch.as_tensor(task.train, dtype=torch.float64), generator).numpy()
    val, fit_rows = split_rows(y, 0.2, seed)
    candidates = [(f"GMM {cov} {n}", lambda n=n, cov=cov: GaussianMixture(n, covariance_type=cov, random_state=seed))
                  for cov in ("full", "diag") for n in (1, 2, 5, 10, 20, 50, 100)]
    candidates += [(f"KDE h={h}", lambda h=h: KernelDensity(bandwidth=h)) for h in (0.05, 0.1, 0.2, 0.3, 0.5, 1.0)]
    scores, started = {}, time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, make in candidates:
            if scores and time.perf_counter() - started > budget:
                break
            try:
                scores[name] = (make().fit(fit_rows).score(val), make)
            except ValueError:  # more components than rows
                continue
        name = max(scores, key=lambda n: scores[n][0])
        estimator = scores[name][1]().fit(y)
    test_y = pre.to_model(torch.as_tensor(task.test, dtype=torch.float64), generator).numpy()
    return estimator.score_samples(test_y) + pre.log_abs_det_jacobian(), f"{name} (of {len(scores)} tried)"


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(len(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds per contender (default 30)")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plain-threads", type=int, default=2,
                        help="threads of the plain loop (2: a plain loop's default on 2 cores; 1 on a busy machine)")
    parser.add_argument("--k", type=int, default=1000, help="importance samples per test row (default 1000)")
    parser.add_argument("--aevb-options", default="",
                        help="options given to aevb, e.g. 'latent_dim=16;hidden=(256,256)' (default: none, its defaults)")
    parser.add_argument("--skip", default="", help="contenders not to run: plain, sklearn (their cells read nan)")
    args = parser.parse_args()
    options, skip = aevb_options(args.aevb_options), set(args.skip.split(","))
    nothing = lambda task: (np.full(len(task.test), np.nan), "skipped")  # noqa: E731
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, budget {args.budget:g} s, K={args.k}; "
          "held-out NLL in nats/row (lower is better) +- standard error")
    print(f"{'dataset':18}{'n x D':>12}{'truth':>9}{'aevb':>17}{'plain VAE':>17}{'sklearn best':>17}"
          f"{'aevb - plain':>16}   notes")
    for name in args.datasets.split(","):
        task = load_task(name, args.seed)
        results = {
            "aevb": aevb_vae(task, args.budget, args.seed, args.k, options),
            "plain": nothing(task) if "plain" in skip else plain_vae(task, args.budget, args.seed, args.k, args.plain_threads),
            "sklearn": nothing(task) if "sklearn" in skip else sklearn_best(task, args.budget, args.seed, args.k),
        }
        cells = []
        for label in ("aevb", "plain", "sklearn"):
            mean, se = _mean_se(-results[label][0])
            cells.append(f"{mean:10.3f} ±{se:5.3f}")
        gain, gain_se = _mean_se(results["aevb"][0] - results["plain"][0])
        truth = "-" if task.truth is None else f"{-task.truth.mean():.3f}"
        shape = f"{len(task.train)}x{task.train.shape[1]}"
        print(f"{name:18}{shape:>12}{truth:>9}{cells[0]:>17}{cells[1]:>17}{cells[2]:>17}"
              f"{gain:9.3f} ±{gain_se:5.3f}   " + " | ".join(f"{k}: {v[1]}" for k, v in results.items()), flush=True)


if __name__ == "__main__":
    main()
