"""``python -m aevb``: the ``aevb`` command, as torchrun starts it (``torchrun ... -m aevb fit ...``)."""

from .cli import main

main()
