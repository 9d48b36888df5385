import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed, so its random draws, and any
    statistical tolerance stated in it, are the same on every run."""
    torch.manual_seed(0)
    yield


# The suite's networks are tiny: one thread is faster than two, and far faster than
# two threads contending for a shared 2-core machine.
torch.set_num_threads(1)


def pytest_terminal_summary(terminalreporter):
    """How many hostile inputs the property-based tests tried, per kind."""
    import sys

    fuzz = sys.modules.get("test_fuzz")
    if fuzz is not None and fuzz.CASES:
        terminalreporter.write_sep("-", f"fuzz cases tried: {sum(fuzz.CASES.values())}")
        for kind, count in sorted(fuzz.CASES.items()):
            terminalreporter.write_line(f"{count:6d}  {kind}")
