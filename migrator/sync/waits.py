"""When a source's sync waits: while the operator's pause file exists, while the target's stall
throttle holds it, and while the source is unreachable (a restart: back off and retry, by the
engine's retry loop), each counted and reported. A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pymysql

from ..engine.retry import with_retry
from ..errors import SourceError
from .passes import source_unreachable

log = logging.getLogger("migrator.sync.stream")

# While a source restarts: a step is tried again every RESTART_DELAY seconds (no doubling: the
# source is back within seconds, and sync should notice at once), for RESTART_WINDOW seconds.
RESTART_DELAY = 1.0
RESTART_WINDOW = 120.0


class SourceWaits:
    """SourceSync's pauses and back-off (uses its pause, stop, report, retries, cp)."""

    def _backoff(self, exc: BaseException) -> None:
        """The main loop met a restart: count it, then wait before its next pass."""
        self._count_retry(exc)
        log.warning("%s: %s; retrying in %.0fs", self.log_where(), exc, RESTART_DELAY)
        time.sleep(RESTART_DELAY)

    def _count_retry(self, exc: BaseException) -> None:
        self.retries += 1
        self.cp.retries = self.retries
        self.report({"retry": True})

    def _on_target_throttle(self, why: str | None) -> None:
        if why:
            log.warning("%s: %s", self.log_where(), why)
        self.report({"state": f"paused: {why}" if why else "resumed"})

    def wait_while_paused(self) -> None:
        """While WORKDIR/pause exists nothing is read or applied (the checkpoint is where it was)."""
        self.pause.wait(self.stop, on_change=lambda reason: self.report({"state": reason or "resumed"}))

    def with_source_back_off(self, fn: Callable[[], Any], *, what: str, window: float = RESTART_WINDOW) -> Any:
        """Run fn; while the source is unreachable (a restart), retry it every RESTART_DELAY s for
        `window` s (each retry counted and reported); a stop asked meanwhile raises the error."""
        def restarting(exc: BaseException) -> bool:
            # a query (not only a connect) can lose the server mid-setup: both are a restart
            return (isinstance(exc, (SourceError, pymysql.err.OperationalError)) and source_unreachable(exc)
                    and not self.stop())

        return with_retry(fn, what=f"{self.log_where()}: {what}", attempts=None,
                          base_delay=RESTART_DELAY, max_delay=RESTART_DELAY, jitter=False, window=window,
                          retryable=restarting, warn=lambda m: log.warning("%s", m),
                          on_retry=lambda _n, exc: self._count_retry(exc))
