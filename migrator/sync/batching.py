"""Batches of committed source transactions on their way to the target: one batch applies while
the next is read, the checkpoint moves to a batch's end only once the target committed it, and a
batch broken by another shard's DDL on a merged table is written again. A mixin of SourceSync
(stream.py)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from ..copy.faults import fault_point
from ..db import error_code
from ..errors import TargetError
from ..schema.catalog import read_columns
from .apply import RowChange

PROGRESS_WAIT = 2.0  # seconds between progress reports while a batch waits for the target

log = logging.getLogger("migrator.sync.stream")


class Batching:
    """SourceSync's batching (uses its batch, safe, applier, dirty, held, window, _inflight)."""

    def flush(self, wait: bool = True) -> None:
        """Hand the batch to the applier; the checkpoint moves to the batch's end position only
        once the target committed it. wait=False keeps reading while the batch applies (one
        batch in flight: parsing and applying overlap, order between batches is kept)."""
        self.settle()
        batch = self.batch
        if self.safe is None:  # no pass read anything yet
            return
        pos, counts = self.hold_for_xa(self.safe.model_copy()), dict(self.batch_counts)
        if batch:
            self.dirty.note(batch, self.safe)  # durable before the target commits: kill -9 over-reports only
            if self.held.stale():  # read for a while: the rows go only while the lease has time left
                self.applier.on_connection(self.held.renew, what="renewing this source's lease")
            # the target's checkpoint never reaches the copy's end before the orphan sweep ran (window.py):
            # a batch ending there commits without it, and a restart replays the window from its start
            mark = None if self.window is not None and self.window.due(pos) else self.mark(pos, counts)
            self._inflight = (self._apply_thread.submit(self.applier.apply, batch, mark), pos, counts, batch, mark)
            self.read_since_flush = None  # events read from here on come after this batch
        else:
            self.cp.pending_since = self.read_since_flush = None  # nothing read since changes the target
            self._advance(pos, counts)
        self.batch, self.batch_counts = [], {}
        self.batch_started = time.monotonic()
        self.pending_events = 0
        if wait:
            self.settle()

    def settle(self) -> None:
        """Wait for the batch in flight (its errors surface here), then checkpoint after it."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            fut, pos, counts, batch, mark = inflight
            try:
                while True:  # a stalled target: the lag still grows where the coordinator sees it
                    try:
                        fut.result(timeout=PROGRESS_WAIT)
                        break
                    except FutureTimeout:
                        self.report_progress()
            except TargetError as exc:
                self.reapply_after_merged_ddl(exc, batch, mark)
            fault_point("sync_batch_committed")  # crash tests: between the target's commit and the file
            self.cp.pending_since = self.read_since_flush  # the oldest event read after that batch, if any
            self._advance(pos, counts, held=True)

    def reapply_after_merged_ddl(self, exc: TargetError, batch: list[RowChange], mark: Any, attempts: int = 3) -> None:
        """Another shard's DDL dropped a column of the merged target table while this shard's
        batch still wrote it (error 1054): write the batch again with the columns the target has
        now (idempotent: REPLACE / DELETE by key). Any other error stands."""
        for _ in range(attempts):
            routes = {id(ch.route): ch.route for ch in batch if ch.route.merged}
            if error_code(exc.__context__ or exc) != 1054 or not routes:
                raise exc
            with self._target_session() as tgt:
                for route in list(routes.values()) + [s.route for s in self.tables.values() if s.route.merged]:
                    now = {c.name.lower() for c in read_columns(tgt, route.target_database, route.target_table)}
                    gone = [c for c in route.columns if c.lower() not in now]
                    if gone:
                        log.warning("%s: columns %s were dropped from %s by another shard's DDL: this shard's rows are "
                                    "written without them until it reaches that DDL itself", self.log_where(), gone,
                                    route.target_name)
                        route.columns = [c for c in route.columns if c.lower() in now]
            try:
                self.applier.apply(batch, mark)
                return
            except TargetError as again:
                exc = again
        raise exc
