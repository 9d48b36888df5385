"""Covariance functions over latent points, and their expectations under q(z) = N(m, diag s).

The Bayesian GP-LVM bound needs three statistics of the kernel under each row's
Gaussian q(z_n) (Titsias & Lawrence, 2010), with Z the (M, Q) inducing inputs:

    psi0_n        = E[k(z_n, z_n)]                                 (N,)
    psi1_n,m      = E[k(z_n, Z_m)]                                 (N, M)
    psi2_n,m,m'   = E[k(Z_m, z_n) k(z_n, Z_m')]                    (N, M, M)

The squared exponential and the linear kernel have them in closed form; any other
kernel (Matern 5/2 here) gets them from a Gauss-Hermite product rule over the Q
latent dimensions (deterministic, so the bound stays a smooth function of q).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn.functional import softplus

# Nodes of the product rule: as many per dimension as keep nodes**Q at most this.
QUADRATURE_NODES = 512


def _positive(raw: torch.Tensor) -> torch.Tensor:
    return softplus(raw) + 1e-8


def _unconstrained(value: float, shape) -> torch.Tensor:
    """softplus^-1(value), the raw parameter that starts a positive quantity at ``value``."""
    return torch.full(shape, math.log(math.expm1(value)))


def gauss_hermite(latent_dim: int, budget: int = QUADRATURE_NODES, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes (P, Q) and weights (P,) of a product Gauss-Hermite rule for E over N(0, I_Q)."""
    per_dim = max(2, int(math.floor(budget ** (1.0 / latent_dim) + 1e-9)))
    nodes, weights = np.polynomial.hermite_e.hermegauss(per_dim)
    weights = weights / weights.sum()
    grids = np.meshgrid(*[nodes] * latent_dim, indexing="ij")
    wgrids = np.meshgrid(*[weights] * latent_dim, indexing="ij")
    points = np.stack([g.ravel() for g in grids], axis=1)
    return torch.as_tensor(points, dtype=dtype), torch.as_tensor(np.prod([w.ravel() for w in wgrids], axis=0), dtype=dtype)


class Kernel(nn.Module):
    """k(a, b) with a signal variance; subclasses give ``forward`` and may give closed-form ``psi``."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.raw_variance = nn.Parameter(_unconstrained(1.0, ()))

    @property
    def variance(self) -> torch.Tensor:
        return _positive(self.raw_variance)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Gram matrix k(a_i, b_j), (..., P, M) for a (..., P, Q), b (M, Q)."""
        raise NotImplementedError

    def diagonal(self, a: torch.Tensor) -> torch.Tensor:
        """k(a_i, a_i), (..., P)."""
        raise NotImplementedError

    def psi(self, mean: torch.Tensor, variance: torch.Tensor, Z: torch.Tensor):
        """(psi0 (N,), psi1 (N, M), psi2 (N, M, M)) under q(z_n) = N(mean_n, diag variance_n),
        here by the Gauss-Hermite product rule of :func:`gauss_hermite`."""
        nodes, weights = gauss_hermite(mean.shape[-1], dtype=mean.dtype)
        z = mean[:, None, :] + variance.sqrt()[:, None, :] * nodes  # (N, P, Q)
        k = self(z, Z)  # (N, P, M)
        psi0 = (self.diagonal(z) * weights).sum(-1)
        psi1 = torch.einsum("npm,p->nm", k, weights)
        psi2 = torch.einsum("npm,npl,p->nml", k, k, weights)
        return psi0, psi1, psi2


class ARDKernel(Kernel):
    """A stationary kernel of the scaled distance r^2 = sum_q (a_q - b_q)^2 / l_q^2."""

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        self.raw_lengthscale = nn.Parameter(_unconstrained(1.0, (latent_dim,)))

    @property
    def lengthscale(self) -> torch.Tensor:
        return _positive(self.raw_lengthscale)

    def squared_distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """|a/l|^2 + |b/l|^2 - 2 (a/l).(b/l), one matrix product: no (..., P, M, Q) temporary
        (whose reduction over a short last axis dominated scoring); clamped at 0 against rounding."""
        a, b = a / self.lengthscale, b / self.lengthscale
        return ((a**2).sum(-1)[..., :, None] + (b**2).sum(-1) - 2 * a @ b.T).clamp_min(0.0)

    def diagonal(self, a: torch.Tensor) -> torch.Tensor:
        return self.variance.expand(a.shape[:-1])


class RBF(ARDKernel):
    """k(a, b) = v exp(-r^2 / 2), with closed-form psi statistics."""

    def forward(self, a, b):
        return self.variance * torch.exp(-0.5 * self.squared_distance(a, b))

    def psi(self, mean, variance, Z):
        """Closed forms (Titsias & Lawrence 2010, eqs. 13-14), with l^2 the squared length scales:

            psi1_nm = v prod_q (1 + S_nq/l_q^2)^-1/2 exp(-(m_nq - Z_mq)^2 / (2 (l_q^2 + S_nq)))
            psi2_nmm' = v^2 prod_q (1 + 2 S_nq/l_q^2)^-1/2
                        exp(-(Z_mq - Z_m'q)^2 / (4 l_q^2) - (m_nq - (Z_mq + Z_m'q)/2)^2 / (l_q^2 + 2 S_nq))
        """
        l2, v = self.lengthscale**2, self.variance
        psi0 = v.expand(mean.shape[:1])
        d1 = l2 + variance  # (N, Q)
        psi1 = v * torch.exp(
            -0.5 * ((mean[:, None, :] - Z) ** 2 / d1[:, None, :]).sum(-1) - 0.5 * torch.log(d1 / l2).sum(-1, keepdim=True)
        )
        d2 = l2 + 2 * variance  # (N, Q)
        gap = (((Z[:, None, :] - Z) ** 2) / (4 * l2)).sum(-1)  # (M, M)
        middle = 0.5 * (Z[:, None, :] + Z)  # (M, M, Q)
        # sum_q (m_nq - middle_q)^2 / d2_nq, expanded into matrix products: no (N, M, M, Q) temporary
        spread = (
            (mean**2 / d2).sum(-1)[:, None, None]
            - 2 * torch.einsum("mlq,nq->nml", middle, mean / d2)
            + torch.einsum("mlq,nq->nml", middle**2, 1 / d2)
        )
        psi2 = v**2 * torch.exp(-gap - spread - 0.5 * torch.log(d2 / l2).sum(-1)[:, None, None])
        return psi0, psi1, psi2


class Matern52(ARDKernel):
    """k(a, b) = v (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r); psi statistics by quadrature."""

    def forward(self, a, b):
        # clamp: the gradient of sqrt at r = 0 is infinite, of k there it is zero
        r = math.sqrt(5.0) * self.squared_distance(a, b).clamp_min(1e-30).sqrt()
        return self.variance * (1 + r + r**2 / 3) * torch.exp(-r)


class Linear(Kernel):
    """k(a, b) = sum_q w_q a_q b_q: GP-LVM with this kernel is a Bayesian PPCA. Closed-form psi."""

    def __init__(self, latent_dim: int):
        super().__init__(latent_dim)
        del self.raw_variance  # the weights carry the scale
        self.raw_weights = nn.Parameter(_unconstrained(1.0, (latent_dim,)))

    @property
    def weights(self) -> torch.Tensor:
        return _positive(self.raw_weights)

    def forward(self, a, b):
        return (a * self.weights) @ b.T

    def diagonal(self, a):
        return (a**2 * self.weights).sum(-1)

    def psi(self, mean, variance, Z):
        """psi0_n = sum_q w_q (m_nq^2 + S_nq); psi1 = m W Z^T; psi2_n = Z W (m_n m_n^T + S_n) W Z^T."""
        w = self.weights
        psi0 = ((mean**2 + variance) * w).sum(-1)
        ZW = Z * w  # (M, Q)
        psi1 = mean @ ZW.T
        psi2 = psi1[:, :, None] * psi1[:, None, :] + torch.einsum("mq,nq,lq->nml", ZW, variance, ZW)
        return psi0, psi1, psi2


KERNELS = {"rbf": RBF, "matern52": Matern52, "linear": Linear}
