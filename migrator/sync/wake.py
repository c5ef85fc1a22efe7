"""WORKDIR/sync/wake: a sync that waits between polls of an idle binlog looks again at once when
this file is touched. Cutover touches it as soon as the sources are read-only, so the drain inside
the write-downtime window does not wait out sync's poll pause (0.5 s while changes come in)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

STEP = 0.1  # seconds between looks at the file while napping (one stat each)
# longer naps (a source idle for several polls: nothing to drain) sleep through, so an idle fleet
# of hundreds of sources does not wake 10 times a second each
SHORT = 0.6


class Wake:
    def __init__(self, path: Path):
        self.path = path
        self._seen = self._stamp()

    def _stamp(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def nap(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """Sleep `seconds`, less when the file is touched meanwhile or `stop()`; True if woken.
        A nap longer than SHORT is not interrupted by the file."""
        if seconds > SHORT:
            time.sleep(seconds)
            return False
        end = time.monotonic() + seconds
        while not stop():
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(STEP, left))
            stamp = self._stamp()
            if stamp != self._seen:
                self._seen = stamp
                return True
        return False


def wake(path: Path) -> None:
    """Wake every sync of the work directory that is napping between polls."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a"):
        pass
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
