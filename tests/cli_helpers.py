"""Running the aevb command in-process from tests."""

from aevb.cli import main


def call(args) -> int:
    """Run ``aevb ARGS`` in-process; return the exit status."""
    try:
        main([str(a) for a in args])
    except SystemExit as exit_:
        return 0 if exit_.code is None else exit_.code
    raise AssertionError("aevb.cli.main returned instead of exiting")
