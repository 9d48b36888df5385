"""One writer per run folder, and nothing but regular files where aevb writes in it.

Two ``aevb fit --out R`` at once would each exit 0, leaving the model of one and a
metrics.csv spliced from both; so a fit holds an exclusive ``flock`` on ``R/.aevb.lock``
(released by the kernel when the process ends, however it ends) and a second one is
refused with the holder's pid and host. And a link planted in the folder
(``R/metrics.csv -> /etc/hostname``) must not redirect a write: the files aevb writes
there must be absent or regular files, and are opened with O_NOFOLLOW or replaced by
rename (:mod:`aevb.store.atomic`), which replaces a link instead of following it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
from pathlib import Path
from typing import Iterator

from ..errors import AevbError

LOCK_FILE = ".aevb.lock"


def no_follow(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` that refuses to open ``path`` through a symbolic link."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def check_regular_files(folder: Path, names: tuple[str, ...]) -> None:
    """Raise unless each of ``names`` in ``folder`` is absent or a regular file (not a link,
    a folder, a FIFO, a device)."""
    for name in names:
        path = Path(folder) / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as error:
            raise AevbError(f"cannot inspect {path}: {error.strerror or error}") from None
        if not stat.S_ISREG(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise AevbError(
                f"{path} is {what}; aevb writes only regular files into a run folder: "
                f"remove it or choose another folder"
            )


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold the run folder ``folder`` (which exists) for this process, or raise AevbError
    naming the process that holds it."""
    path = Path(folder) / LOCK_FILE
    check_regular_files(folder, (LOCK_FILE,))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    except OSError as error:
        raise AevbError(f"cannot lock the run folder {folder}: {error.strerror or error}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise AevbError(
                f"the run folder {folder} is in use by another aevb process ({holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock
