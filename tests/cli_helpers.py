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
