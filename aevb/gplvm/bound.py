"""The collapsed variational bound of the Bayesian GP-LVM, and the sparse GP it leaves behind.

Each feature d is a GP f_d over the latent space with a shared kernel k, observed with
noise: x_nd = f_d(z_n) + N(0, 1/beta_d). With M inducing values u_d = f_d(Z), the
optimal q(u_d) integrated out (Titsias & Lawrence 2010, eq. 16), the bound on
log p(x_d | observed rows of feature d) is, for the N_d rows where x_nd is observed,

    F_d = -N_d/2 log(2 pi / beta_d) - 1/2 log|B_d| - beta_d/2 sum_n x_nd^2
          + beta_d^2/2 c_d^T A_d^-1 c_d - beta_d/2 sum_n psi0_n + beta_d/2 tr(Kmm^-1 Psi2_d)

with Psi2_d = sum_n psi2_n, c_d = Psi1^T x_d (both over the observed rows only),
A_d = Kmm + beta_d Psi2_d and B_d = L^-1 A_d L^-T, L L^T = Kmm. A hole x_nd simply
leaves row n out of feature d's sums: it drops out of the bound exactly. The full
bound is sum_d F_d - sum_n KL(q(z_n) || N(0, I)).

When q(z_n) collapses to points and Z to those points, F_d is the exact GP marginal
log N(x_d; 0, K + I/beta_d) (the bound is tight): the test of this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def _lower_solve(L: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    return torch.linalg.solve_triangular(L, B, upper=False)


@dataclass
class Collapsed:
    """The bound's data term per feature (D,), and what the predictive needs of q(u)."""

    per_feature: torch.Tensor  # F_d, (D,)
    chol_kmm: torch.Tensor  # L, (M, M)
    chol_b: torch.Tensor  # chol(B_d), (D, M, M)
    mean_weights: torch.Tensor  # v_d with E[f_d(z)] = (L^-1 k_Z(z))^T v_d, (D, M)


def collapsed_bound(
    psi0: torch.Tensor,
    psi1: torch.Tensor,
    psi2: torch.Tensor,
    kmm: torch.Tensor,
    x: torch.Tensor,
    observed: torch.Tensor,
    noise: torch.Tensor,
) -> Collapsed:
    """F_d for psi statistics psi0 (N,), psi1 (N, M), psi2 (N, M, M), Kmm (M, M) (jitter
    already added), rows x (N, D) with 0 at the holes, ``observed`` (N, D) of 0/1 and the
    noise variances 1/beta (D,)."""
    beta = 1.0 / noise  # (D,)
    M = kmm.shape[0]
    L = torch.linalg.cholesky(kmm)
    psi2_d = torch.einsum("nd,nij->dij", observed, psi2)  # (D, M, M)
    phi = _lower_solve(L, _lower_solve(L, psi2_d).transpose(-1, -2))  # L^-1 Psi2_d L^-T
    chol_b = torch.linalg.cholesky(torch.eye(M, dtype=kmm.dtype) + beta[:, None, None] * phi)
    xm = x * observed
    c_tilde = _lower_solve(L, psi1.T @ xm).T  # L^-1 c_d, (D, M)
    w = _lower_solve(chol_b, c_tilde[..., None])[..., 0]  # chol(B_d)^-1 L^-1 c_d, (D, M)
    n_d = observed.sum(0)
    per_feature = (
        -0.5 * n_d * torch.log(2 * math.pi * noise)
        - torch.log(torch.diagonal(chol_b, dim1=-2, dim2=-1)).sum(-1)
        - 0.5 * beta * (xm**2).sum(0)
        + 0.5 * beta**2 * (w**2).sum(-1)
        - 0.5 * beta * (observed * psi0[:, None]).sum(0)
        + 0.5 * beta * torch.diagonal(phi, dim1=-2, dim2=-1).sum(-1)
    )
    # E[f_d(z)] = beta_d k_Z(z)^T A_d^-1 c_d = (L^-1 k_Z)^T (beta_d chol(B_d)^-T w_d)
    mean_weights = beta[:, None] * torch.linalg.solve_triangular(chol_b.transpose(-1, -2), w[..., None], upper=True)[..., 0]
    return Collapsed(per_feature, L, chol_b, mean_weights)


def predictive_moments(
    k_zz: torch.Tensor, k_zm: torch.Tensor, chol_kmm: torch.Tensor, chol_b: torch.Tensor, mean_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of f_d(z) under the sparse posterior q(u), each (P, D), for P points
    with k(z, z) (P,) and k(z, Z) (P, M):

        E f_d(z)   = a^T v_d,          a = L^-1 k_Z(z)
        Var f_d(z) = k(z, z) - |a|^2 + |chol(B_d)^-1 a|^2
    """
    a = _lower_solve(chol_kmm, k_zm.T)  # (M, P)
    mean = a.T @ mean_weights.T  # (P, D)
    kept = _lower_solve(chol_b, a.expand(chol_b.shape[0], *a.shape))  # (D, M, P)
    variance = k_zz[:, None] - (a**2).sum(0)[:, None] + (kept**2).sum(1).T
    return mean, variance.clamp_min(1e-12 * float(k_zz.abs().max().clamp_min(1.0)))
