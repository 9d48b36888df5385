"""The Bayesian GP-LVM as torch modules: the sparse GP decoder p(x|z), and the variational
latents q(z_n) of the training rows (free per row, or amortized by an encoder)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Independent, Normal
from torch.nn.functional import softplus

from ..core.nets import mlp
from .bound import Collapsed, collapsed_bound, predictive_moments, predictive_weights
from .kernels import KERNELS

# Added to Kmm's diagonal, relative to the kernel's scale, so that its Cholesky factor exists.
JITTER = 1e-6
# Points per call of the predictive: bounds the (D, M, points) temporary.
PREDICTIVE_FLOATS = 2**22


class SparseGPDecoder(nn.Module):
    """p(x|z) = prod_d N(x_d; E f_d(z), Var f_d(z) + noise_d): one sparse GP per feature with a
    shared kernel and M inducing inputs Z (M, Q). ``condition`` fixes q(u) from training
    data; the module then needs none of the training rows (their summary is two buffers)."""

    def __init__(self, latent_dim: int, n_features: int, n_inducing: int, kernel: str, encoder_hidden: tuple[int, ...] = ()):
        super().__init__()
        self.latent_dim, self.n_features = latent_dim, n_features
        self.kernel = KERNELS[kernel](latent_dim)
        self.inducing = nn.Parameter(torch.zeros(n_inducing, latent_dim))
        self.raw_noise = nn.Parameter(torch.full((n_features,), math.log(math.expm1(0.1))))
        # q(u) summary after training: chol(B_d) and the mean weights v_d (see bound.py)
        self.register_buffer("chol_b", torch.eye(n_inducing).expand(n_features, -1, -1).clone())
        self.register_buffer("mean_weights", torch.zeros(n_features, n_inducing))
        # An encoder x -> (mean, log scale) of q(z|x): trained (back-constrained GP-LVM) or absent.
        self.encoder = (
            nn.Sequential(mlp(n_features, encoder_hidden), nn.Linear(encoder_hidden[-1], 2 * latent_dim))
            if encoder_hidden
            else None
        )

    @property
    def noise(self) -> torch.Tensor:
        """Noise variances 1/beta_d, (D,)."""
        return softplus(self.raw_noise) + 1e-6

    def kmm(self) -> torch.Tensor:
        K = self.kernel(self.inducing, self.inducing)
        scale = torch.diagonal(K).mean().detach()
        return K + JITTER * scale * torch.eye(len(K), dtype=K.dtype)

    def bound(self, x: torch.Tensor, observed: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor, jitter=None) -> Collapsed:
        """The collapsed bound's data term of rows x (N, D) with q(z_n) = N(mean_n, diag variance_n)."""
        psi0, psi1, psi2 = self.kernel.psi(mean, variance, self.inducing)
        kmm = self.kmm() if jitter is None else self.kernel(self.inducing, self.inducing) + jitter * torch.eye(len(self.inducing), dtype=x.dtype)
        return collapsed_bound(psi0, psi1, psi2, kmm, x, observed, self.noise)

    @torch.no_grad()
    def condition(self, collapsed: Collapsed) -> None:
        """Keep the optimal q(u) of a bound for prediction."""
        self.chol_b.copy_(collapsed.chol_b)
        self.mean_weights.copy_(collapsed.mean_weights)

    def predictive(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of x | z, each (..., D), for z (..., Q); gradients reach z and the
        noise, not the kernel or q(u) (the predictive is of a fitted GP)."""
        flat = z.reshape(-1, self.latent_dim)
        weights = predictive_weights(torch.linalg.cholesky(self.kmm()), self.chol_b, self.mean_weights, self.noise)
        step = max(1, PREDICTIVE_FLOATS // (self.n_features * len(self.inducing)))
        means, variances = [], []
        for start in range(0, len(flat), step):
            part = flat[start : start + step]
            m, v = predictive_moments(self.kernel.diagonal(part), self.kernel(part, self.inducing), weights)
            means.append(m)
            variances.append(v + self.noise)
        shape = (*z.shape[:-1], self.n_features)
        return torch.cat(means).reshape(shape), torch.cat(variances).reshape(shape)

    def likelihood(self, z: torch.Tensor) -> Independent:
        """p(x|z) as a distribution over rows: Independent(Normal, 1), batch shape z.shape[:-1]."""
        mean, variance = self.predictive(z)
        return Independent(Normal(mean, variance.sqrt()), 1)

    def log_likelihood(self, x: torch.Tensor, observed: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_obs | z) summed over the observed features only: x, observed (B, D), z (..., B, Q) -> (..., B)."""
        mean, variance = self.predictive(z)
        terms = Normal(mean, variance.sqrt()).log_prob(x.expand_as(mean))
        return (terms * observed).sum(-1)

    def prior(self, shape=()) -> Independent:
        """p(z) = N(0, I_Q)."""
        zero = self.inducing.new_zeros((*shape, self.latent_dim))
        return Independent(Normal(zero, torch.ones_like(zero)), 1)

    def sample_latents(self, n: int) -> torch.Tensor:
        return self.prior((n,)).sample()

    def encode(self, x: torch.Tensor) -> Independent | None:
        """q(z|x) of the encoder (holes read as 0, the standardized mean), or None without one."""
        if self.encoder is None:
            return None
        mean, log_scale = self.encoder(torch.nan_to_num(x)).chunk(2, dim=-1)
        return Independent(Normal(mean, torch.exp(log_scale.clamp(-10.0, 5.0))), 1)


class TrainingLatents(nn.Module):
    """q(z_n) = N(mean_n, diag scale_n^2) of each training row: free parameters (N, Q), or the
    decoder's encoder applied to the rows."""

    def __init__(self, decoder: SparseGPDecoder, initial_mean: torch.Tensor, initial_scale: float = 0.3):
        super().__init__()
        self.decoder = decoder
        self.mean = nn.Parameter(initial_mean.clone())
        self.raw_scale = nn.Parameter(torch.full_like(initial_mean, math.log(math.expm1(initial_scale))))
        if decoder.encoder is not None:  # the encoder replaces the free parameters
            self.mean.requires_grad_(False)
            self.raw_scale.requires_grad_(False)

    def posterior(self, x: torch.Tensor) -> Independent:
        encoded = self.decoder.encode(x)
        if encoded is not None:
            return encoded
        return Independent(Normal(self.mean, softplus(self.raw_scale) + 1e-6), 1)
