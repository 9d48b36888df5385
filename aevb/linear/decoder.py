"""Linear-Gaussian latent-variable models, where everything is known in closed form.

    z ~ N(0, I_d),   x | z ~ N(W z + b, Psi),   Psi = diag(psi)

    p(x)   = N(x; b, C),                 C = W W^T + Psi
    p(z|x) = N(M W^T Psi^-1 (x - b), M), M = (I + W^T Psi^-1 W)^-1

Psi = sigma^2 I is probabilistic PCA, a free diagonal is factor analysis. The
same decoder serves as the `--decoder linear` of a VAE, whose exact log p(x)
then stands beside its ELBO and importance-sampling estimates.
"""

from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal

from ..core.distributions import GaussianFeatureScaleHead, bounded_scale


class LinearGaussianDecoder(GaussianFeatureScaleHead):
    """p(x|z) = N(W z + b, diag(psi)), W = linear.weight (D, d), b = linear.bias, psi = scale^2."""

    def linear_gaussian_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W (D, d), b (D,), psi (D,)): the noise variances as the forward pass uses them."""
        return self.linear.weight, self.linear.bias, bounded_scale(self.log_scale) ** 2

    @torch.no_grad()
    def set_parameters(self, W: torch.Tensor, b: torch.Tensor, psi: torch.Tensor) -> None:
        """Load W (D, d), b (D,) and noise variances psi (D,)."""
        self.linear.weight.copy_(torch.as_tensor(W))
        self.linear.bias.copy_(torch.as_tensor(b))
        self.log_scale.copy_(0.5 * torch.log(torch.as_tensor(psi)))

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(b, W W^T + Psi) under the prior N(0, I)."""
        W, b, psi = self.linear_gaussian_parameters()
        return MultivariateNormal(b, W @ W.T + torch.diag(psi))

    def exact_posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z|x) for rows x (B, D): batch shape (B,), event shape (d,)."""
        W, b, psi = self.linear_gaussian_parameters()
        eye = torch.eye(W.shape[1], dtype=W.dtype, device=W.device)
        precision = eye + W.T @ (W / psi[:, None])  # M^-1, (d, d)
        covariance = torch.cholesky_inverse(torch.linalg.cholesky(precision))
        mean = (x - b) @ (W / psi[:, None]) @ covariance  # (B, d); M is symmetric
        return MultivariateNormal(mean, covariance)

    def expected_log_likelihood(self, x: torch.Tensor, q: Independent | MultivariateNormal) -> torch.Tensor:
        """E_q[log p(x|z)] in closed form for a Gaussian q(z|x) with batch shape (B,); shape (B,).

        E[(x - Wz - b)^2]_j = (x - W mu - b)_j^2 + (W Sigma W^T)_jj for z ~ N(mu, Sigma).
        """
        W, b, psi = self.linear_gaussian_parameters()
        mean, covariance = q.mean, q.covariance_matrix if isinstance(q, MultivariateNormal) else torch.diag_embed(q.variance)
        residual = x - mean @ W.T - b
        spread = torch.einsum("jk,bkl,jl->bj", W, covariance, W)
        return -0.5 * (torch.log(2 * torch.pi * psi) + (residual**2 + spread) / psi).sum(-1)
