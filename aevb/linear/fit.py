"""Maximum-likelihood fits of linear-Gaussian models from a mean and a covariance.

Both take the sample covariance S (with the 1/n normalization, the ML one) and
return (W, psi) of x = W z + b + noise, z ~ N(0, I), noise ~ N(0, diag psi).
"""

from __future__ import annotations

import numpy as np

from ..core import progress
from ..errors import AevbError


def _check_latent_dim(latent_dim: int, n_features: int, upto: int) -> None:
    if latent_dim > upto:
        raise AevbError(
            f"latent_dim {latent_dim} is too large for data with {n_features} feature(s) (at most {upto})"
        )


def fit_ppca(covariance: np.ndarray, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilistic PCA in closed form (Tipping & Bishop, 1999):

        sigma^2 = mean of the D - d smallest eigenvalues of S
        W       = U_d (Lambda_d - sigma^2 I)^(1/2)

    the global maximum of the likelihood, unique up to a rotation of W.
    """
    n_features = len(covariance)
    _check_latent_dim(latent_dim, n_features, n_features - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    noise = max(float(eigenvalues[latent_dim:].mean()), 1e-12 * float(eigenvalues[0]), 1e-300)
    W = eigenvectors[:, :latent_dim] * np.sqrt(np.maximum(eigenvalues[:latent_dim] - noise, 0.0))
    W = np.ascontiguousarray(W)
    return W, np.full(n_features, noise)


def factor_analysis_log_likelihood(covariance: np.ndarray, W: np.ndarray, psi: np.ndarray) -> float:
    """Mean log-likelihood per row of data with covariance S about the model's mean."""
    model_covariance = W @ W.T + np.diag(psi)
    _, log_det = np.linalg.slogdet(model_covariance)
    trace = np.trace(np.linalg.solve(model_covariance, covariance))
    return -0.5 * (len(psi) * np.log(2 * np.pi) + log_det + trace)


def fit_factor_analysis(
    covariance: np.ndarray, latent_dim: int, max_iter: int = 10_000, tol: float = 1e-10
) -> tuple[np.ndarray, np.ndarray, int]:
    """Factor analysis by maximum likelihood, alternating two exact steps (Barber, BRML 21.2):

    for fixed Psi, the best W is PPCA with unit noise in the whitened space
    Psi^-1/2 S Psi^-1/2: W = Psi^1/2 U_d (Lambda_d - I)_+^(1/2); for that W, the best
    noise is psi = diag(S - W W^T). Neither step lowers the likelihood; the loop
    stops when the mean log-likelihood per row gains less than ``tol``.
    Returns (W (D, d), psi (D,), iterations).

    The steps run on the correlation matrix R = D^-1 S D^-1, D = diag(S)^1/2: factor
    analysis is equivariant under rescaling the columns (x -> D^-1 x maps the optimum
    (W, Psi) to (D^-1 W, D^-2 Psi)), and the log-likelihood only moves by the constant
    log |det D^-1| per row, so ``tol`` means the same there. On raw columns of very
    different scales (breast_cancer's span 1e-3 to 1e3) the same steps in the user's
    units crawl for thousands of iterations; on R they converge in tens.
    """
    n_features = len(covariance)
    _check_latent_dim(latent_dim, n_features, n_features)
    variances = np.diag(covariance)
    scale = np.where(variances > 0, np.sqrt(np.abs(variances)), 1.0)  # a constant column stays as it is
    W, psi, iterations = _factor_analysis_steps(covariance / np.outer(scale, scale), latent_dim, max_iter, tol)
    return scale[:, None] * W, scale**2 * psi, iterations


def _factor_analysis_steps(
    covariance: np.ndarray, latent_dim: int, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, int]:
    n_features = len(covariance)
    variances = np.diag(covariance).copy()
    floor = 1e-9 * max(float(variances.max()), 1e-300)
    psi = np.maximum(variances, floor)
    previous = -np.inf
    steps = progress.bar(total=max_iter, desc="factor analysis", unit="iteration")
    for iteration in range(1, max_iter + 1):
        root = np.sqrt(psi)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance / np.outer(root, root))
        top = slice(n_features - latent_dim, n_features)
        W = root[:, None] * eigenvectors[:, top] * np.sqrt(np.maximum(eigenvalues[top] - 1.0, 0.0))
        current = factor_analysis_log_likelihood(covariance, W, psi)
        steps.update()
        if current - previous < tol:
            break
        previous = current
        psi = np.maximum(variances - (W**2).sum(axis=1), floor)
    steps.close()
    return W[:, ::-1].copy(), psi, iteration  # largest factor first
