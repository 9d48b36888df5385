"""The one exception type that the command line turns into a one-line message."""


class AevbError(ValueError):
    """Bad input or an impossible request, phrased for the user.

    The message is a single sentence that says what is wrong and, where it
    can, what to do instead. The ``aevb`` command prints it and exits with
    status 2; from Python it is an ordinary ``ValueError``.
    """


class TrainingStopped(AevbError):
    """Training ended before its end: ``result`` describes the best model so far,
    whose weights the model holds again, and ``exit_code`` is the command's status."""

    exit_code = 2

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class TrainingDiverged(TrainingStopped):
    """A loss or gradient became NaN or infinite."""


class TrainingInterrupted(TrainingStopped):
    """SIGINT or SIGTERM arrived; a checkpoint was written first."""

    def __init__(self, message: str, result=None, signum: int = 2):
        super().__init__(message, result)
        self.exit_code = 128 + signum  # the shell's convention for "killed by signal N"
