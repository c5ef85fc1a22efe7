"""When a source's sync waits: while the operator's pause file exists, while the target's stall
throttle holds it, and while the source is unreachable (a restart: back off and retry), each
counted and reported. A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pymysql

from ..errors import SourceError
from .passes import source_unreachable

log = logging.getLogger("migrator.sync.stream")


class SourceWaits:
    """SourceSync's pauses and back-off (uses its pause, stop, report, retries, cp)."""

    def _backoff(self, exc: BaseException) -> None:
        self.retries += 1
        self.cp.retries = self.retries
        self.report({"retry": True})
        log.warning("%s: %s; retrying in 1s", self.log_where(), exc)
        time.sleep(1.0)

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

    def with_source_back_off(self, fn: Callable[[], Any], *, what: str, window: float = 120.0) -> Any:
        """Run fn; while the source is unreachable (a restart), back off and retry for `window` s."""
        deadline = time.monotonic() + window
        while True:
            try:
                return fn()
            except (SourceError, pymysql.err.OperationalError) as exc:
                # a query (not only a connect) can lose the server mid-setup: both are a restart
                if not source_unreachable(exc) or time.monotonic() > deadline or self.stop():
                    raise
                log.warning("%s: unreachable while %s; retrying", self.log_where(), what)
                self._backoff(exc)
