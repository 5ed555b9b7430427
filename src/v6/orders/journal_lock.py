"""One journal, one owner: an exclusive lock on a sidecar file (``<journal>.lock``).

Two processes on one journal (a rolling deploy, a supervisor restarting too early, two managers
given one path) would each keep their own copy of what was delivered and hand a fill out twice.
So the journal takes ``fcntl.flock(LOCK_EX)`` on ``<journal>.lock`` when it opens and writes its
pid there; a second opener waits up to ``timeout`` seconds, then raises
:class:`~v6.errors.JournalLocked` naming the path and the holder's pid. The lock belongs to the
open file: the OS releases it when the holder closes it or dies (a crash, ``kill -9``), so a
stale lock never needs cleaning up. (The lock is advisory and local: a journal on a network file
system shared by two hosts is not protected.) A sidecar rather than the database file itself,
because sqlite takes and drops its own POSIX locks on the database file, and those would be
released by any close of that file in this process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable

from v6.errors import JournalLocked

#: How long a second opener waits for the lock by default. A rolling deploy starts the new
#: process while the old one stops; the old one's stop() lets callbacks finish for one second,
#: then closes the journal. Ten seconds covers that on a slow host, without hiding a real second
#: owner for long.
DEFAULT_JOURNAL_LOCK_TIMEOUT = 10.0
#: How often a waiting opener tries again.
LOCK_POLL_INTERVAL = 0.05


class JournalLock:
    """The exclusive lock of one journal path (see the module docstring)."""

    def __init__(
        self,
        journal_path: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.journal_path = journal_path
        self.path = f"{journal_path}.lock"
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (blocking: this runs when the
        journal opens, before there is anything to serve); else raise JournalLocked."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = self._clock() + timeout
        try:
            while not _try_lock(fd):
                if self._clock() >= deadline:
                    raise JournalLocked(self.journal_path, _holder(fd), timeout)
                self._sleep(min(LOCK_POLL_INTERVAL, max(0.0, deadline - self._clock())))
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the next owner in (closing the file releases the lock)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> int | None:
    """The pid the holder wrote (None while it is writing it, or if unreadable)."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None
