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
    # Features observed on the same rows share Psi2_d and L^-1 Psi2_d L^-T: compute them once
    # per distinct pattern of holes (one pattern, all rows, when nothing is missing).
    patterns, which = torch.unique(observed.T, dim=0, return_inverse=True)  # (G, N), (D,)
    psi2_g = torch.einsum("gn,nij->gij", patterns, psi2)  # (G, M, M)
    phi = _lower_solve(L, _lower_solve(L, psi2_g).transpose(-1, -2))[which]  # L^-1 Psi2_d L^-T, (D, M, M)
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


# Features whose L^-1 Psi2_d L^-T agree to this (relative to the largest) share its eigenvectors.
SAME_PHI = 1e-9


@dataclass
class Predictive:
    """The predictive of q(u) as plain matrices applied to k_Z(z) = k(Z, z) (see
    :func:`predictive_weights`): ``mean`` (M, D) and, per group of features with the same
    Phi, their indices (D_g,), a rotation (M, M) and shrink factors (M, D_g)."""

    mean: torch.Tensor
    groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@torch.no_grad()
def predictive_weights(chol_kmm: torch.Tensor, chol_b: torch.Tensor, mean_weights: torch.Tensor, noise: torch.Tensor) -> Predictive:
    """The sparse predictive of a fitted GP (no gradient reaches its parameters), rewritten so
    that a batch of points costs two matrix products instead of D triangular solves:

        E f_d(z)   = a^T v_d = k_Z^T (L^-T v_d),                     a = L^-1 k_Z
        Var f_d(z) = k(z, z) - |a|^2 + |chol(B_d)^-1 a|^2 = k(z, z) - a^T (I - B_d^-1) a.

    B_d = I + beta_d Phi_d, and Phi_d = L^-1 Psi2_d L^-T is one matrix for all the features
    observed on the same rows (all of them when nothing is missing). With Phi = U diag(lam) U^T,

        a^T (I - B_d^-1) a = sum_m (U^T L^-1 k_Z)_m^2 beta_d lam_m / (1 + beta_d lam_m):

    per group one (P, M) x (M, M) product, then one (P, M) x (M, D_g)."""
    M = chol_kmm.shape[0]
    eye = torch.eye(M, dtype=chol_kmm.dtype)
    l_inv_t = _lower_solve(chol_kmm, eye).T  # L^-T
    beta = 1.0 / noise
    phi = (chol_b @ chol_b.transpose(-1, -2) - eye) / beta[:, None, None]  # (D, M, M)
    tolerance = SAME_PHI * float(phi.abs().max()) + 1e-300
    left = torch.ones(len(phi), dtype=torch.bool)
    groups = []
    while left.any():
        first = int(left.nonzero()[0])
        same = left & ((phi - phi[first]).abs().amax(dim=(-2, -1)) <= tolerance)
        lam, U = torch.linalg.eigh(phi[first])
        lam = lam.clamp_min(0.0)[:, None]
        groups.append((same.nonzero()[:, 0], l_inv_t @ U, beta[same] * lam / (1 + beta[same] * lam)))
        left &= ~same
    return Predictive(l_inv_t @ mean_weights.T, groups)


def predictive_moments(k_zz: torch.Tensor, k_zm: torch.Tensor, weights: Predictive) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of f_d(z) under the sparse posterior q(u), each (P, D), for P points
    with k(z, z) (P,) and k(z, Z) (P, M)."""
    features, explained = [], []
    for which, rotation, shrink in weights.groups:
        features.append(which)
        explained.append((k_zm @ rotation) ** 2 @ shrink)  # a^T (I - B_d^-1) a, (P, D_g)
    order = torch.cat(features)
    explained = torch.cat(explained, dim=1)
    if not torch.equal(order, torch.arange(len(order))):
        explained = explained[:, torch.argsort(order)]
    variance = k_zz[:, None] - explained
    return k_zm @ weights.mean, variance.clamp_min(1e-12 * float(k_zz.abs().max().clamp_min(1.0)))
