"""One source's binlog -> the target: read, convert, batch, apply, checkpoint.

`SourceSync.run()` loops over passes: open the binlog at the checkpoint (by GTID where the
source has one, else file/offset), read to its current end, apply, checkpoint, and poll again.
The checkpoint names a transaction boundary. It is held in the target (targetstate.py), written
in the transaction of the batch it covers where that batch commits on one connection, else right
after all its parts committed; the work directory's copy (WorkDir.sync_checkpoint) follows it, as
a view for `status`. A kill -9 anywhere therefore replays at most a suffix of idempotent
changes: no loss, no duplicate; a restart (on any machine) resumes from the furthest of the two.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable

import pymysql

from ..endpoint import Endpoint
from ..errors import SourceError
from ..plan.model import Plan
from ..positions import BinlogPosition
from ..progress import SyncWire
from ..throttle import PauseFile, Throttle, ThrottleOptions
from ..workdir import WorkDir
from .apply import Applier, RowChange
from .batching import Batching
from .cascade import foreign_keys_from_plan, load_cascades
from .checkpointing import Checkpointing
from .contracts import Checkpoint, SyncOptions, SyncStopped, gtid_distance, status_line
from .ddl import DdlRecord
from .ddlreplay import DdlReplay
from .dirty import DirtyChunks
from .wake import Wake
from .passes import BinlogPasses, source_unreachable, stream_connection_settings
from .position import ReadPosition
from .preconditions import SourceChecks
from .reader import GtidStreamReader, stream_server_id, undecodable_event_reason
from .tables import SourceTables, TableState
from .targetstate import TargetState, plan_identity
from .txn import TxnAssembly
from .waits import SourceWaits
from .window import WindowReplay, WindowSweep, window_sweep
from .xa import PreparedXa, XaReplay, xa_key

# re-exported: what callers import from here
__all__ = ["Checkpoint", "GtidStreamReader", "SourceSync", "SyncOptions", "SyncStopped", "TableState", "gtid_distance",
           "source_unreachable", "status_line", "stream_connection_settings", "stream_server_id",
           "undecodable_event_reason", "xa_key"]

log = logging.getLogger(__name__)

IDLE_CHECKPOINT_SECONDS = 30.0  # an idle source's checkpoint (updated_at: `status`) is rewritten this often


class SourceSync(SourceChecks, SourceTables, SourceWaits, BinlogPasses, ReadPosition, TxnAssembly, Batching,
                 Checkpointing, WindowReplay, XaReplay, DdlReplay):
    """One source's sync: the poll loop here; each part of it in the mixin named after it
    (preconditions, tables, waits, passes, position, txn, batching, checkpointing, window, xa,
    ddlreplay)."""

    def __init__(self, plan: Plan, source: str, workdir: WorkDir, options: SyncOptions,
                 stop: Callable[[], bool] = lambda: False, report: Callable[[SyncWire], None] = lambda d: None,
                 endpoints: tuple[Endpoint, Endpoint] | None = None):
        self.plan = plan
        self.sp = plan.source(source)
        self.name = source
        self.workdir = workdir
        self.opts = options
        self.stop = stop
        self.report = report
        # endpoints given: a Dask task's, as the coordinator shipped them (dasksync.py)
        self.ep: Endpoint = endpoints[0] if endpoints else self.sp.endpoint()
        self.target: Endpoint = endpoints[1] if endpoints else plan.target.endpoint()
        self.tables: dict[tuple[str, str], TableState] = {}
        self.merged: set[str] = set()
        self.ddl_record = DdlRecord(workdir.sync_ddl_journal, workdir.sync_ddl_seen(source), workdir.sync_ddl_lock)
        self.retries = 0
        self.errors = 0
        self.caught_up = False
        self.read_since_flush: float | None = None  # binlog time of the first event read after the batch in flight
        self.progress_at = 0.0  # monotonic time of the last progress report (passes.py)
        self.pending_events = 0
        self._inflight: tuple | None = None
        self.prepared: dict[str, PreparedXa] = {}  # xid -> rows held until XA COMMIT / ROLLBACK
        self.cascades = None  # cascade.Cascades, read at setup
        self.window: WindowSweep | None = None  # the orphan sweep owed at the copy's end (window.py)
        self._resume: BinlogPosition | None = None  # where the next pass reads on (past held XA groups)
        self._head_conn: pymysql.connections.Connection | None = None  # kept open: polled every pass
        self.table_maps: dict[tuple, dict[bytes, object]] = {}  # the binlog's table maps parsed (packets.py)
        self._saved_at = 0.0  # monotonic time of the last checkpoint write
        # the checkpoint and lease held in the target (keyed by the plan's fingerprint)
        self.held = TargetState(plan_identity(plan), source, workdir.root, lease_seconds=options.lease_seconds)
        self._idle_polls = 0  # polls in a row that found nothing new
        self.pause = PauseFile(workdir.pause_file)  # the operator's WORKDIR/pause
        self.wake = Wake(workdir.sync_wake)  # touched by cutover: poll again at once
        self._reported_caught_up: bool | None = None  # as last told to the coordinator
        self._head_seen: tuple[BinlogPosition, dict[str, str]] | None = None  # the last head poll's answer
        # what a run reads and builds: the checkpoint (read by run(): claiming it takes the lease),
        # the read position (position.py), the batch being filled and the one in flight (batching.py)
        self.cp: Checkpoint | None = None
        self._gtid = ""  # the GTID state read up to (position.py)
        self._track_gtid = False
        self.safe: BinlogPosition | None = None  # the last transaction boundary read
        self.batch: list[RowChange] = []
        self.batch_counts: dict[str, int] = {}
        self.batch_started = 0.0
        self.dirty: DirtyChunks | None = None  # the chunks sync changed (dirty.py), from the checkpoint on
        self.applier = Applier(self.target, options.workers, stop=stop, on_retry=self._count_retry)
        self.applier.guard = self.held.guard
        # the target's stall throttle as copy has it (the pause file is handled by wait_while_paused)
        self.applier.throttle = Throttle(ThrottleOptions(max_threads_running=0, min_samples=10),
                                         notify=self._on_target_throttle)
        # applies one batch while the next is read (batching.py)
        self._apply_thread = ThreadPoolExecutor(1, thread_name_prefix=f"{threading.current_thread().name}/batch")

    def log_where(self) -> str:
        return f"source {self.name} ({self.ep.display()})"

    # ------------------------------------------------------------ main loop

    def run(self) -> Checkpoint:
        started = time.monotonic()
        self.wait_for_copy()
        self.cp = self.start_checkpoint()
        self._gtid = self.cp.position.gtid
        # GTIDs are tracked only from a start that had the source's full GTID position: a state
        # built from nothing would miss the domains not seen since, so it stays on file/offset
        self._track_gtid = bool(self._gtid)
        try:
            self.with_source_back_off(self.setup, what="setting up")
        except SourceError:
            if self.stop():  # stopped while the source was still unreachable at start
                raise SyncStopped(f"{self.log_where()}: stopped while setting up") from None
            raise
        if self.rewind_into_window():
            self.with_source_back_off(self.setup, what="setting up")
        log.info("%s: replaying %d table(s) from %s:%s%s", self.log_where(), len(self.tables), self.cp.position.file,
                 self.cp.position.pos, f" (gtid {self.cp.position.gtid})" if self.by_gtid else "")
        self.applier.cascades = self.cascades
        self.dirty = DirtyChunks(self.workdir, self.plan, self.name, self.cp.position)
        self.dirty.cascades = self.cascades
        try:
            while not self.stop():
                self.wait_while_paused()
                head = self._read_head()
                if head is None:
                    continue
                idle = self.read_from.key() >= head.key()
                if not idle:  # an idle source costs one head query per poll, no binlog connection
                    self.one_pass()
                # read up to the head (the checkpoint itself may stay behind, at a prepared XA group)
                self.caught_up = self.read_from.key() >= head.key()
                if self.caught_up:
                    self.cp.caught_up_at = time.time()
                if not idle or time.monotonic() - self._saved_at >= min(IDLE_CHECKPOINT_SECONDS,
                                                                        self.opts.lease_seconds / 3):
                    self.save_checkpoint()
                elif self.caught_up != self._reported_caught_up:
                    self.report_checkpoint(self.cp.model_dump(mode="json"))
                else:  # idle, the checkpoint unchanged: only that this poll found it caught up
                    self.report({"caught_up": self.caught_up})
                if self.caught_up and self.opts.until_caught_up:
                    break
                if self.opts.duration is not None and time.monotonic() - started >= self.opts.duration:
                    break
                # an idle source is polled less and less often (the pause doubles every 4 empty polls, up to
                # idle_poll_max s), at once again after a change
                self._idle_polls = self._idle_polls + 1 if idle else 0
                self.wake.nap(min(self.opts.poll_interval * (1 << min(self._idle_polls // 4, 8)),
                                  max(self.opts.poll_interval, self.opts.idle_poll_max)), self.stop)
            self._apply_thread.shutdown(wait=True)
            self.save_checkpoint(in_target=True, release=True)  # a clean stop frees the lease at once
        finally:
            self._apply_thread.shutdown(wait=True)
            self.applier.close()
            self._close_head_conn()
        return self.cp

    def setup(self) -> None:
        with self._source_session() as src, self._target_session() as tgt:
            self.check_source(src)
            self.build_routes(src, tgt, self.cp.position.key())
            self.check_target_triggers(tgt)
            # FK actions the binlog does not hold
            copy_end = self.copy_state().end
            self.cascades = load_cascades(src, self.tables, copy_end, foreign_keys_from_plan(self.plan, self.name))
            self.window = window_sweep(self.cascades, copy_end, self.cp.position)
            self.check_available(src, self.cp.position)

    def _source_session(self):
        from ..db import session

        return session(self.ep, "source")

    def _target_session(self):
        from ..db import session

        return session(self.target, "target")
