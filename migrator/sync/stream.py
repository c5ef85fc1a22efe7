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
from dataclasses import dataclass
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import (
    NotImplementedEvent,
    GtidEvent,
    MariadbGtidEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import DeleteRowsEvent, PartialUpdateRowsEvent, UpdateRowsEvent, WriteRowsEvent

from ..db import describe_error, error_code, query, ssl_args
from ..endpoint import Endpoint
from ..errors import SourceError, StateError, TargetError
from ..plan.model import Column, Plan, TablePlan
from ..positions import BinlogPosition, read_head
from ..copy.faults import fault_point
from ..schema.catalog import read_columns, read_indexes
from ..throttle import PauseFile, Throttle, ThrottleOptions
from ..workdir import WorkDir
from .apply import Applier, Route, RowChange
from .cascade import NO_FOREIGN_KEY_CHECKS, foreign_keys_from_plan, load_cascades, unchecked
from .copystate import SourceCopy, source_copy
from .dirty import DirtyChunks
from .wake import Wake
from .ddl import (DdlRecord, classify)
from .contracts import Checkpoint, SyncOptions, SyncStopped, gtid_distance, status_line
from .reader import GtidStreamReader, is_savepoint_statement, stream_server_id, undecodable_event_reason
from .rowdecode import RowDecoder, event_changes
from .targetstate import TargetState, plan_identity
from .checkpointing import Checkpointing
from .txn import Txn
from .window import WindowReplay, WindowSweep, window_sweep
from .xa import PreparedXa, XaReplay, xa_key
from .ddlreplay import DdlReplay, is_ddl
from .values import TableShape

# re-exported: what callers import from here
__all__ = ["Checkpoint", "GtidStreamReader", "SourceSync", "SyncOptions", "SyncStopped", "gtid_distance",
           "status_line", "stream_server_id", "undecodable_event_reason", "xa_key"]

log = logging.getLogger(__name__)

ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
KIND = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
PURGED = 1236  # ER_MASTER_FATAL_ERROR_READING_BINLOG: the binlog asked for is gone
SOURCE_FATAL = {1045, 1044, 1698, 1227, 1236}
IDLE_CHECKPOINT_SECONDS = 30.0  # an idle source's checkpoint (updated_at: `status`) is rewritten this often


@dataclass
class TableState:
    plan: TablePlan
    shape: TableShape
    route: Route
    _decoder: tuple[Any, TableShape, RowDecoder | None] | None = None

    def decoder(self, lib_columns: list[Any]) -> RowDecoder | None:
        """The fast row decoder for this table map (rebuilt when the map or the shape changes)."""
        cached = self._decoder
        if cached is None or cached[0] is not lib_columns or cached[1] is not self.shape:
            cached = self._decoder = (lib_columns, self.shape, RowDecoder.for_table(lib_columns, self.shape))
        return cached[2]


class SourceSync(Checkpointing, WindowReplay, XaReplay, DdlReplay):
    def __init__(self, plan: Plan, source: str, workdir: WorkDir, options: SyncOptions,
                 stop: Callable[[], bool] = lambda: False, report: Callable[[dict], None] = lambda d: None,
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
        self.ddl_record = DdlRecord(workdir.sync_ddl_journal, workdir.sync_ddl_seen(source))
        self.retries = 0
        self.errors = 0
        self.caught_up = False
        self.pending_events = 0
        self._inflight: tuple | None = None
        self.prepared: dict[str, PreparedXa] = {}  # xid -> rows held until XA COMMIT / ROLLBACK
        self.cascades = None  # cascade.Cascades, read at setup
        self.window: WindowSweep | None = None  # the orphan sweep owed at the copy's end (window.py)
        self._resume: BinlogPosition | None = None  # where the next pass reads on (past held XA groups)
        self._head_conn: pymysql.connections.Connection | None = None  # kept open: polled every pass
        self._saved_at = 0.0  # monotonic time of the last checkpoint write
        # the checkpoint and lease held in the target (keyed by the plan's fingerprint)
        self.held = TargetState(plan_identity(plan), source, workdir.root, lease_seconds=options.lease_seconds)
        self._idle_polls = 0  # polls in a row that found nothing new
        self.pause = PauseFile(workdir.pause_file)  # the operator's WORKDIR/pause
        self.wake = Wake(workdir.sync_wake)  # touched by cutover: poll again at once
        self._reported_caught_up: bool | None = None  # as last told to the coordinator
        self._head_seen: tuple[BinlogPosition, dict[str, str]] | None = None  # the last head poll's answer

    # ------------------------------------------------------------ setup

    def log_where(self) -> str:
        return f"source {self.name} ({self.ep.display()})"

    def copy_state(self) -> SourceCopy:
        """Where copy started and ended for this source, and its unfinished tables."""
        return source_copy(self.workdir, self.plan, self.name)

    def wait_for_copy(self) -> None:
        """A table's events are applied only once all its chunks are copied (DESIGN: the one race)."""
        while True:
            copy = self.copy_state()
            if not copy.incomplete:
                return
            shown = ", ".join(copy.incomplete[:10]) + (f" and {len(copy.incomplete) - 10} more" if len(copy.incomplete) > 10 else "")
            if not self.opts.wait_for_copy:
                raise StateError(f"{self.log_where()}: copy has not finished table(s) {shown}; finish `migrator copy` "
                                 "first, or run sync with --wait-for-copy")
            log.warning("%s: waiting for copy to finish %s", self.log_where(), shown)
            self.report({"state": f"waiting for copy: {shown}"})
            if self.stop():
                raise SyncStopped(f"{self.log_where()}: stopped while waiting for copy")
            time.sleep(2.0)

    def check_source(self, conn: pymysql.connections.Connection) -> None:
        fmt, image = query(conn, "SELECT @@global.binlog_format, @@global.binlog_row_image")[0]
        self.check_binlog_settings(fmt, image)
        if self.sp.flavor != "mariadb":  # MySQL 8 can log JSON updates as partial diffs
            rows = query(conn, "SHOW GLOBAL VARIABLES LIKE 'binlog_row_value_options'")
            if rows and "PARTIAL_JSON" in str(rows[0][1] or "").upper():
                raise SourceError(f"{self.log_where()}: binlog_row_value_options=PARTIAL_JSON logs JSON updates as "
                                  "partial diffs; sync needs full after-images: SET GLOBAL binlog_row_value_options='' "
                                  "(and in the server config)")

    def check_binlog_settings(self, fmt: str, image: str) -> None:
        if str(fmt).upper() != "ROW" or str(image).upper() != "FULL":
            raise SourceError(f"{self.log_where()}: binlog_format={fmt}, binlog_row_image={image}; sync needs ROW and "
                              "FULL: SET GLOBAL binlog_format='ROW', binlog_row_image='FULL' (and in the server config)")

    def check_available(self, conn: pymysql.connections.Connection, pos: BinlogPosition) -> None:
        files = [r[0] for r in query(conn, "SHOW BINARY LOGS")]
        if pos.file not in files:
            raise SourceError(self.purged_message(pos, files[0] if files else "none"))

    def purged_message(self, pos: BinlogPosition, oldest: str = "?") -> str:
        ids = ", ".join(sorted({t.plan.id for t in self.tables.values()})) or "its tables"
        return (f"{self.log_where()}: the binlog sync needs ({pos.file}:{pos.pos}"
                f"{', gtid ' + pos.gtid if pos.gtid else ''}) has been purged (oldest kept: {oldest}); changes since then "
                f"cannot be replayed. Recover: re-copy this source's tables ({ids}): remove "
                f"{self.workdir.sync_checkpoint(self.name)} and this source's copy state, run `migrator copy` again, then "
                "`migrator sync`; keep binlogs longer (expire_logs_days / binlog_expire_logs_seconds)")

    def build_routes(self, src: pymysql.connections.Connection, tgt: pymysql.connections.Connection,
                     at: tuple[int, int] | None = None) -> None:
        """Routes and shapes of this source's tables; `at` (the checkpoint's position key): a
        table's shape recorded by the last DDL replayed before it (else the plan's)."""
        by_target: dict[str, int] = {}
        for t in self.plan.tables:
            if t.mode != "skip":
                by_target[t.target_name] = by_target.get(t.target_name, 0) + 1
        self.merged = {name for name, n in by_target.items() if n > 1}
        for t in self.plan.tables:
            if t.source != self.name or t.mode != "copy+sync":
                continue
            if not t.key:
                raise StateError(f"{self.log_where()}: table {t.source_name} has no usable key in the plan; sync cannot "
                                 "apply its changes safely: add a key, or set its mode to copy-only or skip")
            recorded = self.ddl_record.shape_at(t.id, at) if at is not None else None
            columns = recorded or t.columns or read_columns(src, t.database, t.table)
            self.tables[(t.database, t.table)] = self.table_state(t, columns, tgt)

    def table_state(self, t: TablePlan, columns: list[Column], tgt: pymysql.connections.Connection) -> TableState:
        target_cols = {c.name.lower() for c in read_columns(tgt, t.target_database, t.target_table)}
        if not target_cols:
            raise TargetError(f"target table {t.target_name} (for {t.id}) does not exist: run `migrator schema --apply`")
        write = [c.name for c in columns if not c.generated and c.name.lower() in target_cols]
        missing = [c.name for c in columns if not c.generated and c.name.lower() not in target_cols]
        if missing:
            log.warning("%s: %s columns %s are not on target table %s: their values are not written",
                        self.log_where(), t.source_name, missing, t.target_name)
        key = list(t.key)
        if t.source_column:
            if t.source_column not in key:
                key.append(t.source_column)
            if t.source_column not in write:
                write.append(t.source_column)
        route = Route(table_id=t.id, target_database=t.target_database, target_table=t.target_table, key=key,
                      columns=write, source_value=f"{self.name}/{t.database}" if t.source_column else None,
                      source_column=t.source_column, merged=t.target_name in self.merged,
                      serial=sum(i.unique for i in read_indexes(tgt, t.target_database, t.target_table)) > 1)
        return TableState(t, TableShape(columns), route)

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
        self.applier = Applier(self.target, self.opts.workers, stop=self.stop, on_retry=self._count_retry)
        self.applier.cascades = self.cascades
        self.dirty = DirtyChunks(self.workdir, self.plan, self.name, self.cp.position)
        self.dirty.cascades = self.cascades
        self.applier.guard = self.held.guard
        # the target's stall throttle as copy has it (the pause file is handled by wait_while_paused)
        self.applier.throttle = Throttle(ThrottleOptions(max_threads_running=0, min_samples=10),
                                         notify=self._on_target_throttle)
        self._apply_thread = ThreadPoolExecutor(1, thread_name_prefix=f"{threading.current_thread().name}/batch")
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

    def check_target_triggers(self, tgt: pymysql.connections.Connection) -> None:
        """Rows a source trigger changed are in the binlog as row events of their own: a trigger
        on the target table would change them a second time on replay."""
        names = sorted({(s.route.target_database, s.route.target_table) for s in self.tables.values()})
        if not names:
            return
        pairs = " OR ".join(["(EVENT_OBJECT_SCHEMA=%s AND EVENT_OBJECT_TABLE=%s)"] * len(names))
        rows = query(tgt, f"SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM "
                          f"information_schema.TRIGGERS WHERE {pairs}", tuple(v for n in names for v in n))
        if rows:
            shown = ", ".join(f"{r[0]}.{r[1]} on {r[2]}.{r[3]}" for r in rows[:5]) + (
                f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            raise TargetError(
                f"target trigger(s) {shown} would fire again for rows sync replays (the source's triggers' changes "
                "are in the binlog already): drop them on the target until cutover, and create them after it "
                "(`migrator schema convert` output has them)")

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

    def _source_session(self):
        from ..db import session

        return session(self.ep, "source")

    def _target_session(self):
        from ..db import session

        return session(self.target, "target")

    def _read_head(self) -> BinlogPosition | None:
        """The source's current position (what 'caught up' means now), on one connection kept
        for the process's life; backs off while the source is down."""
        from ..db import connect

        try:
            if self._head_conn is None:
                self._head_conn = connect(self.ep, "source")
                self.check_source(self._head_conn)  # the full check once per connection
            head, settings = read_head(self._head_conn, self.sp.flavor, self.cp.position.server_id, self._head_seen)
            self.check_binlog_settings(settings["binlog_format"], settings["binlog_row_image"])
            self._head_seen = (head, settings)
        except (SourceError, pymysql.err.MySQLError, OSError) as exc:
            self._close_head_conn()
            if isinstance(exc, SourceError) and not source_unreachable(exc):
                raise
            if isinstance(exc, pymysql.err.MySQLError) and error_code(exc) in SOURCE_FATAL:
                raise SourceError(describe_error(self.ep, "source", exc)) from None
            self._backoff(exc)
            return None
        self.cp.head = head
        return head

    def _close_head_conn(self) -> None:
        conn, self._head_conn = self._head_conn, None
        self._head_seen = None  # a new connection reads everything again
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass

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

    def one_pass(self) -> None:
        """Read from the checkpoint to the binlog's current end, applying in batches."""
        gtid_start = self.by_gtid
        stream = self.open_stream()
        self.batch: list[RowChange] = []
        self.batch_counts: dict[str, int] = {}
        self.batch_started = time.monotonic()
        self.safe = self.read_from.model_copy()
        self.pending_events = 0
        txn: Txn | None = None
        t0, n_events = time.monotonic(), 0
        try:
            while not self.stop():
                if self.pause.is_set():  # end the pass (an open transaction is replayed after the pause)
                    break
                event = stream.fetchone()
                if event is None:
                    if txn is None:
                        self.follow_consumed_events(stream)
                    break
                self.pending_events += 1
                n_events += 1
                txn = self.handle(stream, event, txn)
                # a GTID start opens with a fake rotate to offset 4 of the file holding the GTID: that
                # offset is before our point, so it must not become the checkpoint's file/offset
                if txn is None and not (gtid_start and isinstance(event, RotateEvent) and not event.timestamp):
                    self.safe = self._position_now(stream)
                    self.safe.at = getattr(event, "timestamp", 0) or self.safe.at
                    if len(self.batch) >= self.opts.batch_rows or (
                            self.batch and time.monotonic() - self.batch_started >= self.opts.flush_interval):
                        self.flush(wait=False)
                    elif not self.batch and self._inflight is None:
                        self.cp.position = self.hold_for_xa(self.safe.model_copy())
        except pymysql.err.MySQLError as exc:
            self.handle_stream_error(exc)
        except (ConnectionError, OSError) as exc:
            self._backoff(exc)
        except SourceError as exc:  # a schema lookup met a restarting source: replay from the checkpoint
            if not source_unreachable(exc):
                raise
            self.flush()
            self._backoff(exc)
        finally:
            stream.close()
        self.flush()  # complete transactions only: an open `txn` is replayed next pass
        # the next pass reads on from here, with the held XA rows still in memory (the checkpoint,
        # for a restart, stays at the oldest prepared XA group)
        self._resume = self.safe.model_copy()
        self.warn_long_held_xa()
        log.info("%s: pass read %d event(s) in %.2fs, now at %s:%s", self.log_where(), n_events,
                 time.monotonic() - t0, self.cp.position.file, self.cp.position.pos)

    def follow_consumed_events(self, stream: BinLogStreamReader) -> None:
        """At the binlog's end, outside a transaction: the position follows every event the reader
        consumed, those sync never sees included (rotate, format description, GTID list, binlog
        checkpoint). Else, after a rotation on a source that then stays idle (FLUSH BINARY LOGS, a
        restart, read-only sources at cutover), the checkpoint would stay in the old file forever
        and `--until-caught-up` would never return. Never backwards: a GTID start's artificial
        events carry the start of the file."""
        if not stream.log_file or not stream.log_pos:
            return
        now = self._position_now(stream)
        if now.key() > self.safe.key():
            now.at = self.safe.at
            self.safe = now
            if not self.batch and self._inflight is None:
                self.cp.position = self.hold_for_xa(self.safe.model_copy())

    def handle_stream_error(self, exc: pymysql.err.MySQLError) -> None:
        code = error_code(exc)
        if code == PURGED:
            self.flush()
            raise SourceError(self.purged_message(self.cp.position) + f" [server said: {exc.args[-1]}]") from None
        if code in SOURCE_FATAL:
            raise SourceError(describe_error(self.ep, "source", exc) + " (reading the binlog; needs REPLICATION SLAVE "
                              "and REPLICATION CLIENT)") from None
        self.flush()
        self._backoff(exc)  # restart / lost connection: reconnect from the checkpoint next pass

    @property
    def read_from(self) -> BinlogPosition:
        """Where the next pass reads: past what this process already read, even when held XA
        transactions keep the checkpoint further back."""
        return self._resume or self.cp.position

    def open_stream(self) -> BinLogStreamReader:
        pos = self.read_from
        settings = stream_connection_settings(self.ep)
        kwargs: dict[str, Any] = dict(
            connection_settings=settings, server_id=stream_server_id(self.workdir, self.name), blocking=False,
            resume_stream=True, only_events=[RotateEvent, XidEvent, QueryEvent, GtidEvent, MariadbGtidEvent,
                                             XAPrepareEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent,
                                             NotImplementedEvent, PartialUpdateRowsEvent],  # to refuse them, not skip
            freeze_schema=True, is_mariadb=self.sp.flavor == "mariadb", enable_logging=False,
            filter_non_implemented_events=False,  # else the library drops them before handle() can refuse them
            # row events of tables outside the plan are skipped before their rows are decoded (the
            # library matches schema and table name separately: handle() still checks the pair)
            only_schemas=sorted({db for db, _ in self.tables}), only_tables=sorted({t for _, t in self.tables}),
        )
        if self.by_gtid:
            kwargs["auto_position"] = pos.gtid
        else:
            # the library's MariaDB mode always asks for a GTID start; file/offset is the classic dump
            kwargs.update(log_file=pos.file, log_pos=pos.pos, is_mariadb=False)
        return GtidStreamReader(**kwargs)

    @property
    def by_gtid(self) -> bool:
        """Start by GTID when the checkpoint carries a complete one (see run: tracked from the start)."""
        return self.opts.use_gtid and self._track_gtid and bool(self.read_from.gtid)

    def _position_now(self, stream: BinLogStreamReader) -> BinlogPosition:
        return BinlogPosition(file=stream.log_file, pos=int(stream.log_pos), gtid=self.gtid_state(),
                              flavor=self.sp.flavor, server_id=self.cp.position.server_id, at=self.safe.at)

    # ------------------------------------------------------------ events

    def handle(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        """Fold one event into the open transaction; returns None at a transaction boundary."""
        if isinstance(event, PartialUpdateRowsEvent):
            raise SourceError(
                f"{self.log_where()}: a partial JSON update (binlog_row_value_options=PARTIAL_JSON) at {stream.log_file}:"
                f"{stream.log_pos}; sync needs full after-images and stopped at {self.cp.position.file}:"
                f"{self.cp.position.pos}. SET GLOBAL binlog_row_value_options='', then re-copy the tables updated meanwhile")
        if isinstance(event, NotImplementedEvent):
            # an event the reader cannot decode is never skipped unless it is known to carry no rows
            # (MariaDB decompresses log_bin_compress events for a reader like ours; MySQL does not)
            why = undecodable_event_reason(event.event_type)
            if why is not None:
                raise SourceError(f"{self.log_where()}: at {stream.log_file}:{stream.log_pos} {why}; sync of this "
                                  f"source stopped at {self.cp.position.file}:{self.cp.position.pos}")
            return txn
        if isinstance(event, (MariadbGtidEvent, GtidEvent)):
            if txn is not None and txn.changes:
                # the previous event group ended without XID, COMMIT or XA PREPARE: dropping its rows
                # would lose them silently, applying them could add rows never committed
                tables = ", ".join(sorted({ch.route.table_id for ch in txn.changes}))
                raise SourceError(
                    f"{self.log_where()}: a transaction on {tables} before {stream.log_file}:{stream.log_pos} has no "
                    f"commit sync recognises; sync of this source stopped at {self.cp.position.file}:"
                    f"{self.cp.position.pos}. Re-copy the table(s), or report this binlog sequence")
            return Txn(gtid=str(event.gtid), start=self.safe)
        if isinstance(event, XAPrepareEvent):
            return self.prepare_xa(stream, event, txn)
        if isinstance(event, ROW_EVENTS):
            state = self.tables.get((event.schema, event.table))
            if state is None:
                return txn if txn is not None else Txn()
            txn = txn if txn is not None else Txn()
            first = len(txn.changes)
            self.convert(stream, event, state, txn)
            if self.cascades is not None and getattr(event, "flags", 0) & NO_FOREIGN_KEY_CHECKS:
                unchecked(txn.changes, first)  # written with foreign_key_checks=0: InnoDB cascaded nothing
            return txn
        if isinstance(event, XidEvent):
            self.commit_txn(txn)
            return None
        if isinstance(event, QueryEvent):
            sql = event.query if isinstance(event.query, str) else event.query.decode("utf-8", "replace")
            word = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
            if word == "XA":
                return self.handle_xa(stream, sql, txn)
            if word == "BEGIN":
                txn = txn if txn is not None else Txn(start=self.safe)
                txn.began = True
                return txn
            if word == "COMMIT":
                self.commit_txn(txn)
                return None
            if is_savepoint_statement(sql):  # Django atomic(), Rails requires_new: inside its transaction
                return txn if txn is not None else Txn(start=self.safe, began=True)
            if word == "ROLLBACK":  # logged only for rows of non-transactional tables: they happened
                self.commit_txn(txn)
                return None
            schema = event.schema.decode() if isinstance(event.schema, bytes) else (event.schema or "")
            if txn is not None and txn.began and not is_ddl(classify(sql, schema)):
                # a statement logged inside BEGIN ... COMMIT that is not DDL never ends the transaction
                self.check_statement_event(stream, sql, schema)
                return txn
            self.commit_txn(txn)  # DDL commits implicitly
            self.sweep_window_if_due(self.safe)
            self.handle_ddl(stream, sql, schema)
            return None
        return txn  # rotate, heartbeats: no state change inside or outside a transaction

    def convert(self, stream: BinLogStreamReader, event: Any, state: TableState, txn: Txn) -> None:
        columns = stream.table_map[event.table_id].columns
        if len(columns) != len(state.shape.columns):
            self.refresh_table(state, len(columns), stream)
        kind = KIND[type(event)]
        n = event_changes(event, kind, columns, state.shape, state.route, state.decoder(columns), txn.changes)
        txn.counts[kind] = txn.counts.get(kind, 0) + n

    def refresh_table(self, state: TableState, n_columns: int, stream: BinLogStreamReader) -> None:
        t = state.plan
        with self._source_session() as src, self._target_session() as tgt:
            fresh = self.table_state(t, read_columns(src, t.database, t.table), tgt)
        if len(fresh.shape.columns) != n_columns:
            raise SourceError(
                f"{self.log_where()}: table {t.source_name} has {n_columns} columns in the binlog at "
                f"{stream.log_file}:{stream.log_pos} but {len(fresh.shape.columns)} on the source now (its DDL is not in "
                f"the replayed binlog); sync stopped at {self.cp.position.file}:{self.cp.position.pos}: re-copy the table")
        state.shape, state.route = fresh.shape, fresh.route

    def commit_txn(self, txn: Txn | None) -> None:
        if txn is None:
            return
        if self.window is not None and not self.window.done:
            self.sweep_window_if_due(txn.start or self.safe)
            if not self.window.done:
                self.window.note(txn.changes)
        self.batch.extend(txn.changes)
        if self.cascades is not None:
            self.cascades.watch_reuse(txn.changes, txn.start or self.safe, self.log_where())
        for k, n in txn.counts.items():
            self.batch_counts[k] = self.batch_counts.get(k, 0) + n
        if txn.gtid:
            self.add_gtid(txn.gtid)

    def flush(self, wait: bool = True) -> None:
        """Hand the batch to the applier; the checkpoint moves to the batch's end position only
        once the target committed it. wait=False keeps reading while the batch applies (one
        batch in flight: parsing and applying overlap, order between batches is kept)."""
        self.settle()
        batch = getattr(self, "batch", None)
        if not hasattr(self, "safe"):
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
        else:
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
                fut.result()
            except TargetError as exc:
                self.reapply_after_merged_ddl(exc, batch, mark)
            fault_point("sync_batch_committed")  # crash tests: between the target's commit and the file
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



def stream_connection_settings(ep: Endpoint) -> dict[str, Any]:
    """pymysql arguments of the binlog reader's connections (it opens them itself): the URL's
    credentials and ssl-mode, on the process's shared TLS context (left to pymysql, every pass's
    two connections tried TLS unverified whatever the URL said, loading the CA store each time:
    ~35 ms of CPU, serialised across the threads of a process serving several sources)."""
    ep = ep.resolved()  # a password sent by reference (Dask credentials=worker) is read here
    return {"host": ep.host, "port": ep.port, "user": ep.user,
            "passwd": ep.password.get_secret_value() if ep.password else "", "connect_timeout": ep.connect_timeout,
            **ssl_args(ep)}


def source_unreachable(exc: BaseException) -> bool:
    """A connection-level failure (server restarting, network), as opposed to a refusal."""
    cause = exc.__context__ if isinstance(exc, SourceError) else exc
    return cause is not None and error_code(cause) in (2002, 2003, 2006, 2013, 1053, 1927) or isinstance(cause, OSError)
