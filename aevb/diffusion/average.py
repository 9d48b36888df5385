"""A running average of a network's weights, for scoring and sampling a diffusion model.

The diffusion bound is estimated from one draw of t per row, so each step's gradient is
noisy and the last weights wander around a better point; their exponential moving
average w_avg <- d w_avg + (1 - d) w sits closer to it (VDM and most diffusion models
evaluate such an average). On compare.py's 16-D manifold, 300 s of training: held-out
bound 13.92 nats/row with the last weights, 13.42 with their average (d = 0.999).

The average is kept in buffers, so checkpoints (bit-exact resume) and the best state
that early stopping keeps carry it with the weights. Early on it warms up, with
d_n = min(d, (1 + n) / (10 + n)) at step n, so that a short run is not stuck near its
initial weights.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call


def _buffer_name(parameter: str) -> str:
    return "average_" + parameter.replace(".", "__")


class WeightAverage(nn.Module):
    """The exponential moving average, with decay ``decay``, of every parameter of ``network``."""

    def __init__(self, network: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.names = [name for name, _ in network.named_parameters()]
        for name, parameter in network.named_parameters():
            self.register_buffer(_buffer_name(name), parameter.detach().clone())
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """One step of the average towards ``network``'s current weights."""
        n = int(self.steps)
        decay = min(self.decay, (1 + n) / (10 + n))
        for name, parameter in network.named_parameters():
            getattr(self, _buffer_name(name)).lerp_(parameter.detach(), 1 - decay)
        self.steps += 1

    def call(self, network: nn.Module, *args):
        """``network(*args)`` with the averaged weights in place of its own."""
        weights = {name: getattr(self, _buffer_name(name)) for name in self.names}
        return functional_call(network, weights, args)
