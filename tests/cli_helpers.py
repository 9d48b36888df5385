"""Running the aevb command in-process from tests."""

import torch

from aevb.cli import main


def call(args) -> int:
    """Run ``aevb ARGS``; return the exit status."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code
    finally:
        # main() flushes subnormals for the whole process; a test process goes on
        # (and hypothesis cannot draw subnormal floats while they are flushed).
        torch.set_flush_denormal(False)
    raise AssertionError("aevb.cli.main returned instead of exiting")


def save_small_level_model(folder, seed: int):
    """Save 300 x 4 integer rows as rows.npy and a tiny VAE fitted on them as run/; return the rows.

    Integer levels make the model draw dequantization noise, which scoring must reproduce.
    """
    import numpy as np

    import aevb

    rows = np.random.default_rng(seed).integers(0, 8, size=(300, 4)).astype(np.float64)
    np.save(folder / "rows.npy", rows)
    aevb.VAE(epochs=2, hidden=(8,), latent_dim=2).fit(rows).save(folder / "run")
    return rows
