"""A top-down hierarchy of N stochastic layers (ladder VAE, Sonderby et al. 2016; VDVAE, Child 2021).

Generative model, top layer first, z = (z_1, ..., z_N), z_1 nearest the data:

    p(z_N) = N(0, I),   p(z_l | z_{l+1}) = N(mu_l(s_l), sigma_l(s_l)^2),  s_l = t_l(z_{l+1}),
    p(x | z) = p(x | z_1).

Inference shares the top-down path: a bottom-up pass gives features d_1 = f(x),
d_l = u_l(d_{l-1}), and

    q(z_N | x) = N(. ; head_N(d_N)),   q(z_l | z_{l+1}, x) = N(. ; head_l([d_l, s_l])).

The ELBO then has one KL per layer, each in closed form given the layers above:

    ELBO = E_q[ log p(x|z_1) - sum_l KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1})) ].

The joint q(z|x) and p(z) are torch Distributions over the concatenation
[z_1, ..., z_N] (event N*d), so importance sampling over all layers is the
plain one: log p(x|z) + log p(z) - log q(z|x). With N = 1 the model is the plain VAE
(encoder head(f(x)), prior N(0, I), decoder p(x|z_1)).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, constraints, kl_divergence

from ..core.distributions import DiagonalGaussianHead
from ..core.evaluation import ACTIVE_UNIT_THRESHOLD
from ..core.nets import mlp
from ..core.priors import StandardNormalPrior


class BottomUp(nn.Module):
    """x -> the features (d_1, ..., d_N) and the posterior heads of every layer."""

    def __init__(self, body: nn.Module, width: int, latent_dim: int, layers: int):
        super().__init__()
        self.body = body
        self.ups = nn.ModuleList(mlp(width, (width,)) for _ in range(layers - 1))
        # heads[l] for layer l+1; the top one sees d_N alone, the others [d_l, s_l].
        self.heads = nn.ModuleList(
            DiagonalGaussianHead(width if l == layers - 1 else 2 * width, latent_dim) for l in range(layers)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.body(x)]
        for up in self.ups:
            features.append(up(features[-1]))
        return features


class TopDown(nn.Module):
    """The generative path: p(z_N) = N(0, I), and s_l = t_l(z_{l+1}) -> p(z_l | z_{l+1})."""

    def __init__(self, width: int, latent_dim: int, layers: int):
        super().__init__()
        self.top = StandardNormalPrior(latent_dim)
        self.downs = nn.ModuleList(mlp(latent_dim, (width,)) for _ in range(layers - 1))
        self.heads = nn.ModuleList(DiagonalGaussianHead(width, latent_dim) for _ in range(layers - 1))

    def forward(self, encoder: nn.Module | None = None) -> "LadderPrior":
        return LadderPrior(self)


def _top_down(
    top_down: TopDown,
    bottom_up: BottomUp | None,
    features: list[torch.Tensor] | None,
    sample_shape: torch.Size,
    z: torch.Tensor | None = None,
    use_mean: bool = False,
) -> tuple[list[Distribution | None], list[Distribution], list[torch.Tensor]]:
    """One pass down the hierarchy; per layer, bottom first: q(z_l | z_{l+1}, x) (None without
    features: the prior's pass), p(z_l | z_{l+1}), and z_l, taken from ``z`` (..., N*d) when given,
    else the mean of q with ``use_mean``, else a reparameterized draw from q (or p) of ``sample_shape``."""
    layers = len(top_down.downs) + 1
    given = list(z.chunk(layers, dim=-1)) if z is not None else None
    posteriors, priors, draws = [], [], []
    above = None
    for l in reversed(range(layers)):
        if l == layers - 1:
            p = top_down.top()
            q = bottom_up.heads[l](features[l]) if features is not None else None
        else:
            s = top_down.downs[l](above)
            p = top_down.heads[l](s)
            q = None
            if features is not None:
                d = features[l].expand(*s.shape[:-1], features[l].shape[-1])
                q = bottom_up.heads[l](torch.cat([d, s], dim=-1))
        source = q if q is not None else p
        if given is not None:
            z_l = given[l]
        elif use_mean:
            z_l = source.mean
        else:
            # Only the top layer takes the sample shape; below, the shape comes from the layer above.
            z_l = source.rsample(sample_shape if above is None else ())
        posteriors.insert(0, q)
        priors.insert(0, p)
        draws.insert(0, z_l)
        above = z_l
    return posteriors, priors, draws


class LadderPosterior(Distribution):
    """q(z|x) = q(z_N|x) prod_l q(z_l | z_{l+1}, x) over [z_1, ..., z_N]; batch (B,), event (N*d,)."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, top_down: TopDown, bottom_up: BottomUp, features: list[torch.Tensor]):
        self.top_down, self.bottom_up, self.features = top_down, bottom_up, features
        self.layer_sizes = (top_down.top.loc.shape[0],) * (len(top_down.downs) + 1)
        super().__init__(features[0].shape[:-1], torch.Size([sum(self.layer_sizes)]), validate_args=False)

    def _pass(self, sample_shape=torch.Size(), z=None, use_mean=False):
        return _top_down(self.top_down, self.bottom_up, self.features, torch.Size(sample_shape), z, use_mean)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        return torch.cat(self._pass(sample_shape)[2], dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        posteriors, _, draws = self._pass(z=z)
        return sum(q.log_prob(z_l) for q, z_l in zip(posteriors, draws))

    @property
    def mean(self) -> torch.Tensor:
        """The top-down pass through the means of q: not E_q[z] for N > 1, the code ``encode`` reports."""
        return torch.cat(self._pass(use_mean=True)[2], dim=-1)

    def kl_per_dimension_given(self, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z_l | z_{l+1}, x) || p(z_l | z_{l+1})) per latent dimension, with z_{l+1} from
        ``z`` (..., B, N*d); shape (..., B, N*d). Its mean over z ~ q is the KL part of the ELBO."""
        posteriors, priors, draws = self._pass(z=z)
        kls = [kl_divergence(q.base_dist, p.base_dist).expand_as(z_l) for q, p, z_l in zip(posteriors, priors, draws)]
        return torch.cat(kls, dim=-1)


class LadderPrior(Distribution):
    """p(z) = p(z_N) prod_l p(z_l | z_{l+1}) over [z_1, ..., z_N]; event (N*d,)."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, top_down: TopDown, batch_shape: torch.Size = torch.Size()):
        self.top_down = top_down
        d = top_down.top.loc.shape[0]
        super().__init__(torch.Size(batch_shape), torch.Size([d * (len(top_down.downs) + 1)]), validate_args=False)

    def expand(self, batch_shape, _instance=None) -> "LadderPrior":
        return LadderPrior(self.top_down, torch.Size(batch_shape))

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape
        return torch.cat(_top_down(self.top_down, None, None, shape)[2], dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        _, priors, draws = _top_down(self.top_down, None, None, torch.Size(), z)
        return sum(p.log_prob(z_l) for p, z_l in zip(priors, draws))


class LadderVAE(nn.Module):
    """p(x, z) with a top-down hierarchy of ``layers`` layers of ``latent_dim`` each; the
    interface of :class:`aevb.vae.model.LatentVariableModel` (posterior, prior_distribution,
    likelihood, sample_latents), over the concatenated z."""

    def __init__(self, body: nn.Module, width: int, decoder: nn.Module, latent_dim: int, layers: int):
        super().__init__()
        self.encoder = BottomUp(body, width, latent_dim, layers)
        self.decoder = decoder
        self.prior = TopDown(width, latent_dim, layers)
        self.layer_sizes = (latent_dim,) * layers

    @property
    def latent_dim(self) -> int:
        return sum(self.layer_sizes)

    def prior_distribution(self) -> LadderPrior:
        return self.prior()

    def posterior(self, x: torch.Tensor) -> LadderPosterior:
        return LadderPosterior(self.prior, self.encoder, self.encoder(x))

    def likelihood(self, z: torch.Tensor) -> Distribution:
        """p(x|z) = p(x|z_1): the decoder sees the bottom layer, the first latent_dim entries of z."""
        return self.decoder(z[..., : self.layer_sizes[0]])

    def sample_latents(self, n: int) -> torch.Tensor:
        return self.prior_distribution().sample((n,))

    def exact_marginal(self) -> None:
        return None



def layer_figures(figures: dict, layer_sizes: tuple[int, ...]) -> list[dict]:
    """Per stochastic layer, bottom first: its ``kl`` (mean nats per row, None where the
    figures have no per-dimension KL) and ``active_units`` of its ``latent_dim``, cut from
    an evaluation's ``kl_per_dimension`` and ``latent_activity``."""
    layers, start = [], 0
    for size in layer_sizes:
        activity = figures["latent_activity"][start : start + size]
        kl = figures["kl_per_dimension"]
        layers.append({
            "kl": None if kl is None else float(sum(kl[start : start + size])),
            "active_units": sum(a > ACTIVE_UNIT_THRESHOLD for a in activity),
            "latent_dim": size,
        })
        start += size
    return layers
