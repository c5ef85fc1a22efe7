"""Exclusive file locks (flock): one writer per work directory, per verify, per sync source, and
around sync's shared DDL journal. A lock lasts as long as its file descriptor is open, so a
process killed with -9 releases it.

    hold(path, busy=...)              refuse at once when held (busy(holder) is raised)
    hold(path, busy=..., wait=60)     wait up to 60 s, telling `waiting(holder)` once
    with locked(path): ...            block until free (short critical sections)

`note` is written into the lock file once held (e.g. the pid): the next contender reads it as
`holder` for its message.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_SECONDS = 0.1


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def hold(path: str | Path, *, busy: Callable[[str], Exception], wait: float = 0.0,
         waiting: Callable[[str], None] | None = None, note: str | None = None) -> int:
    """Take the lock on `path` and return its descriptor (release: os.close, or process exit).
    While another process holds it: wait up to `wait` seconds, then raise busy(holder's note)."""
    fd = _open(Path(path))
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            if time.monotonic() >= deadline:
                os.close(fd)
                raise busy(holder) from None
            if waiting is not None and not told:
                waiting(holder)
                told = True
            time.sleep(POLL_SECONDS)
    if note is not None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
    return fd


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the lock on `path` for the block, waiting as long as it takes."""
    fd = _open(Path(path))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
