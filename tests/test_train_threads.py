"""The training loop picks its intra-op threads from the step's size and gives the caller's back."""

from __future__ import annotations

import numpy as np
import torch

from aevb import VAE
from aevb.config import VAEConfig
from aevb.train.loop import loop_threads
from aevb.vae.model import build_vae


def test_small_steps_run_on_one_thread_large_ones_on_all():
    digits_default = build_vae(VAEConfig(), 64, "gaussian")  # largest layer 256 x 256
    assert loop_threads(digits_default, 128, 2) == 1
    mnist_sized = build_vae(VAEConfig(hidden=(512, 256), latent_dim=32), 784, "gaussian")
    assert loop_threads(mnist_sized, 512, 2) == 2


def test_fit_restores_the_callers_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        VAE(hidden=(8,), latent_dim=2, epochs=2).fit(np.random.default_rng(0).normal(size=(40, 3)), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
