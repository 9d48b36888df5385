"""Replacing a file so that a crash at any instant leaves either the old or the new one.

The new contents go to a temporary file in the same folder (so the rename
cannot cross file systems), are flushed and fsynced, then renamed over the
target; the folder itself is fsynced so the rename survives a power cut.
The commands' outputs (scores, codes, samples, filled tables) are written the
same way (:func:`write_output`): a killed or failed command leaves the earlier
file, never a whole-looking one with rows missing or zero.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import AevbError

TEMP_SUFFIX = ".tmp"
# An output's temporary file keeps the output's suffix, which chooses its format.
PARTIAL = ".partial"


def replace_atomically(path: Path, write: Callable[[str], None], suffix: str = TEMP_SUFFIX) -> None:
    """Call ``write(temp_path)`` on a file beside ``path`` (its name ending in ``suffix``),
    then rename it over ``path``."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the model from other users
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_output(path: Path, write: Callable[[str], None]) -> None:
    """Write a command's output ``path`` whole or not at all: ``write(temp_path)`` fills a
    file beside it with the same suffix, which replaces ``path`` only once complete. A
    failure (a full disk, bad rows, a kill) leaves an earlier ``path`` as it was, and an
    OSError becomes one line naming ``path``."""
    path = Path(path)
    try:
        replace_atomically(path, write, suffix=PARTIAL + path.suffix)
    except OSError as error:
        raise AevbError(f"cannot write {path}: {error.strerror or error}") from None


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that a killed writer of ``path`` left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*{TEMP_SUFFIX}"):
        stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open a folder; the rename is still atomic there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
