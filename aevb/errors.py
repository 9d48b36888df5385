"""The one exception type that the command line turns into a one-line message."""

from __future__ import annotations

import stat
from pathlib import Path


class AevbError(ValueError):
    """Bad input or an impossible request, phrased for the user.

    The message is a single sentence that says what is wrong and, where it
    can, what to do instead. The ``aevb`` command prints it and exits with
    status 2; from Python it is an ordinary ``ValueError``.
    """


class AevbWarning(UserWarning):
    """Data or a result that aevb can use but the user should know about; the ``aevb``
    command prints it as one line, ``aevb: warning: ...``."""


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


def first_line(error: BaseException) -> str:
    """What went wrong, on one line, to quote inside an AevbError: the first line of the
    error's message (an OSError's reason where it has one), or its type's name."""
    detail = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return (detail.strip().splitlines() or [type(error).__name__])[0]
def check_regular_file(path: Path) -> None:
    """Raise AevbError unless ``path`` is a regular file (after links): a FIFO or device would
    block a reader forever, a folder or a dangling or looping link cannot be read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if path.is_symlink():
            raise AevbError(f"{path} is a broken or looping link ({error.strerror or error})") from None
        raise AevbError(f"no such file: {path}") from None
    if stat.S_ISDIR(mode):
        raise AevbError(f"{path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise AevbError(f"{path} is not a regular file (a pipe or device?); aevb reads only files")


def unreadable(path: Path, what: str):
    """A context that turns any failure to parse ``path`` into one AevbError line."""
    return _Unreadable(path, what)


class _Unreadable:
    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, AevbError) or not isinstance(error, Exception):
            return False
        # Parsers of damaged bytes fail in many ways (ValueError, EOFError, SyntaxError,
        # tokenize.TokenError, zlib.error, ...); to the user each means "not readable".
        raise AevbError(f"cannot read {self.path} as {self.what} ({first_line(error)})") from None
