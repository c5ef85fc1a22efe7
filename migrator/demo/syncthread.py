"""Sync in the background of the demo: run_sync on a thread, stoppable, telling when every source
was last caught up."""

from __future__ import annotations

import threading
import time

from ..errors import StateError
from ..plan.model import Plan
from ..progress import SyncProgress
from ..sync.contracts import SyncOptions
from ..sync.runner import run_sync
from ..workdir import WorkDir

CAUGHT_UP_TIMEOUT = 180.0


class _StopSync(Exception):
    """Raised from run_sync's progress sink: run_sync then stops every source cleanly."""


class SyncThread(threading.Thread):
    """run_sync in the background, stoppable, tracking when each source was last caught up."""

    def __init__(self, plan: Plan, wd: WorkDir):
        super().__init__(name="demo-sync", daemon=True)
        self.plan, self.wd = plan, wd
        self.stop_requested = threading.Event()
        self.caught_up_at: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.error: BaseException | None = None
        self.source_errors: dict[str, str] = {}  # a source that stopped on an error while the others go on

    def run(self) -> None:
        try:
            run_sync(self.plan, self.wd, SyncOptions(workers=2), progress=self)
        except _StopSync:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            self.error = exc

    def emit(self, event: SyncProgress) -> None:
        """A Progress sink (migrator.progress) for run_sync's events."""
        if event.checkpoint is not None:
            self.rows[event.source] = sum(event.checkpoint.rows.values())
        if event.error is not None:
            self.source_errors[event.source] = event.error
        if event.caught_up:  # an idle source's poll says only this
            self.caught_up_at[event.source] = time.monotonic()
        if self.stop_requested.is_set():
            raise _StopSync

    def wait_caught_up(self, since: float, timeout: float = CAUGHT_UP_TIMEOUT) -> None:
        """Until every source reported being caught up at a moment after `since`."""
        names = [s.name for s in self.plan.sources]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_error()
            if all(self.caught_up_at.get(n, 0) > since for n in names):
                return
            time.sleep(0.2)
        late = [n for n in names if self.caught_up_at.get(n, 0) <= since]
        raise StateError(f"sync did not catch up within {timeout:.0f}s on source(s) {', '.join(late)}; "
                         f"see `migrator sync` logs for the work directory {self.wd.root}")

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
        if self.source_errors:  # run_sync keeps the other sources going; the demo cannot catch up without this one
            raise StateError("; ".join(f"sync of {name} stopped: {error}" for name, error in self.source_errors.items()))
        if not self.is_alive() and not self.stop_requested.is_set():
            raise StateError("sync stopped unexpectedly")

    def stop(self) -> None:
        self.stop_requested.set()
        self.join(timeout=60)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())
