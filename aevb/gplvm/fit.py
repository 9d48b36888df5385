"""Training a GP-LVM: full-batch Adam on the collapsed bound (all rows at once)."""

from __future__ import annotations

import torch

from ..core.family import DataDescription, Progress
from ..train.threads import StepThreads, kept_threads
from .config import GPLVMConfig
from .family import GPLVMFamily, initial_latents
from .model import SparseGPDecoder

# Steps over which the bound must gain ``tol`` per row and feature to go on.
WINDOW = 100


def fit_gplvm(x: torch.Tensor, config: GPLVMConfig) -> tuple[SparseGPDecoder, list[dict], str]:
    """Train on rows x (N, D) in the model's space (holes as NaN): the decoder, conditioned on
    the rows, the history (one dict per step) and why training stopped."""
    generator = torch.Generator().manual_seed(config.seed)
    family = GPLVMFamily(config, initial_latents(x, config.latent_dim, generator))
    latents = family.build(DataDescription(n_features=x.shape[1]))
    decoder = latents.decoder
    with torch.no_grad():
        n, m = len(x), config.inducing
        chosen = torch.randperm(n, generator=generator)[: min(n, m)]
        spare = torch.randn(m - len(chosen), config.latent_dim, generator=generator, dtype=x.dtype)
        decoder.inducing.copy_(torch.cat([latents.mean[chosen], spare]))
    if decoder.encoder is not None:
        torch.manual_seed(config.seed)
        for layer in decoder.encoder.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    parameters = [p for p in latents.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    history, stopped = [], "epochs"
    scale = x.shape[0] * x.shape[1]
    # One thread or all, timed as the generic loop does: on a shared CPU, threads spinning in
    # the many small batched solves of a step made it 4x slower than one thread.
    with kept_threads() as available:
        step_threads = StepThreads(latents, len(x), available, config.threads)
        for step in range(config.epochs):
            step_threads.before_step()
            loss, metrics = family.loss(latents, x, Progress(epoch=step + 1, step=step))
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            step_threads.after_step()
            history.append({"epoch": step + 1, "bound": float(metrics["bound"].detach().sum()), "kl": float(metrics["kl"].detach().sum())})
            if step >= WINDOW and (history[-1]["bound"] - history[-1 - WINDOW]["bound"]) / scale < config.tol:
                stopped = "converged"
                break
    with torch.no_grad():
        family.loss(latents, x, Progress(epoch=len(history), step=len(history)))  # q(u) of the final q(z)
    decoder.training_means = latents.posterior(x).mean.detach()
    return decoder, history, stopped
