"""The one exception type that the command line turns into a one-line message."""


class AevbError(ValueError):
    """Bad input or an impossible request, phrased for the user.

    The message is a single sentence that says what is wrong and, where it
    can, what to do instead. The ``aevb`` command prints it and exits with
    status 2; from Python it is an ordinary ``ValueError``.
    """
