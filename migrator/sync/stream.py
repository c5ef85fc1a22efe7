"""One source's binlog -> the target: read, convert, batch, apply, checkpoint.

`SourceSync.run()` loops over passes: open the binlog at the checkpoint (by GTID where the
source has one, else file/offset), read to its current end, apply, checkpoint, and poll again.
The checkpoint (WorkDir.sync_checkpoint) names a transaction boundary and is written only after
the target committed everything before it, so a kill -9 anywhere replays a suffix of
idempotent changes: no loss, no duplicate.
"""

from __future__ import annotations

import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pymysql
from pydantic import BaseModel, Field
import struct

from pymysql.constants.COMMAND import COM_BINLOG_DUMP
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
from pymysqlreplication.gtid import Gtid, GtidSet
from pymysqlreplication.row_event import DeleteRowsEvent, PartialUpdateRowsEvent, UpdateRowsEvent, WriteRowsEvent

from ..db import describe_error, error_code, query
from ..endpoint import Endpoint
from ..errors import SourceError, StateError, TargetError
from ..plan.model import Column, Plan, TablePlan
from ..positions import BinlogPosition, read_head
from ..state import atomic_write_json, read_json
from ..workdir import WorkDir
from .apply import Applier, Route, RowChange, ddl_error_is_already_applied
from .cascade import NO_FOREIGN_KEY_CHECKS, foreign_keys_from_plan, load_cascades, unchecked
from .copystate import source_copy
from .ddl import (DdlRecord, DdlStatement, classify, column_from_def, columns_after, normalize, retarget,
                  rewrite_for_target)
from .rowdecode import RowDecoder
from .values import TableShape, fix_row, prepare_columns

log = logging.getLogger(__name__)

ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
KIND = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
# MariaDB's QUERY_COMPRESSED_EVENT and {WRITE,UPDATE,DELETE}_ROWS_COMPRESSED_EVENT(_V1)
MARIADB_COMPRESSED_EVENTS = frozenset(range(0xA5, 0xAC))
TRANSACTION_PAYLOAD_EVENT = 40  # MySQL 8.0.20+ binlog_transaction_compression=ON
# event types the library does not decode that carry no row change: anything else stops sync
HARMLESS_UNDECODED_EVENTS = frozenset({
    7,    # SLAVE_EVENT (never written)
    28,   # IGNORABLE_LOG_EVENT
    34,   # ANONYMOUS_GTID_LOG_EVENT (MySQL without GTIDs: a transaction's start marker)
    36,   # TRANSACTION_CONTEXT_EVENT (group replication)
    37,   # VIEW_CHANGE_EVENT (group replication)
    41,   # HEARTBEAT_LOG_EVENT_V2
})


def undecodable_event_reason(event_type: int) -> str | None:
    """Why an event the binlog reader cannot decode must stop sync (its changes would be lost
    silently), or None when it carries no row change."""
    if event_type in HARMLESS_UNDECODED_EVENTS:
        return None
    if event_type in MARIADB_COMPRESSED_EVENTS:
        return ("a compressed binlog event (log_bin_compress=ON) that sync cannot decode. SET GLOBAL "
                "log_bin_compress=OFF (and in the server config), then re-copy the tables written while it was on")
    if event_type == TRANSACTION_PAYLOAD_EVENT:
        return ("a compressed transaction payload (binlog_transaction_compression=ON) that sync cannot decode. "
                "SET GLOBAL binlog_transaction_compression=OFF (and in the server config), then re-copy the tables "
                "written while it was on")
    if event_type == 26:
        return ("an INCIDENT event: the source says changes may be missing from its binlog here. Re-copy the "
                "tables of this source")
    return (f"a binlog event of unknown type {event_type} (a newer server?) that sync cannot decode: it may carry "
            "row changes. Report it, or re-copy the tables written after it")
PURGED = 1236  # ER_MASTER_FATAL_ERROR_READING_BINLOG: the binlog asked for is gone
SOURCE_FATAL = {1045, 1044, 1698, 1227, 1236}
IDLE_CHECKPOINT_SECONDS = 5.0  # an idle source's checkpoint (its head, lag: `status`) is rewritten this often
DDL_KINDS = frozenset({"alter", "rename", "truncate", "create_index", "drop_index", "create_table", "drop_table"})


class SyncStopped(Exception):
    """Asked to stop before replay began (--duration ended, SIGTERM): a clean stop, not an error."""


class SyncOptions(BaseModel):
    until_caught_up: bool = False
    duration: float | None = None  # seconds; None = until stopped
    workers: int = 4  # target connections per source
    batch_rows: int = 5000  # row changes per applied batch (cut at transaction ends)
    flush_interval: float = 0.5  # seconds a batch may wait before it is applied
    poll_interval: float = 0.5  # pause between passes when the binlog is drained
    idle_poll_max: float = 2.0  # the pause grows to this after 10, 20, ... polls in a row found nothing new
    wait_for_copy: bool = False  # wait for unfinished tables instead of refusing
    skip_ddl: list[str] = Field(default_factory=list)  # "file:pos" of DDL the DBA handled by hand
    xa_warn_seconds: float = 300.0  # warn when a prepared XA transaction stays undecided this long
    use_gtid: bool = True  # start by GTID when the checkpoint has one (else, or when False, by file/offset)


class Checkpoint(BaseModel):
    """sync/SRC.json: where replay resumes, and what the last pass saw (for `migrator status`)."""

    source: str
    position: BinlogPosition  # a transaction boundary; everything before it is committed on the target
    event_time: float = 0.0  # binlog timestamp of the last applied event
    head: BinlogPosition | None = None  # the source's position when it was last read
    caught_up_at: float | None = None
    rows: dict[str, int] = Field(default_factory=lambda: {"insert": 0, "update": 0, "delete": 0})
    ddl_applied: int = 0
    # XA transactions prepared but not yet committed or rolled back, xid -> "file:pos" of their
    # group: `position` stays at the oldest so a restart re-reads their rows (see hold_for_xa)
    xa_prepared: dict[str, str] = Field(default_factory=dict)
    retries: int = 0
    updated_at: float = 0.0


class GtidStreamReader(BinLogStreamReader):
    """mysql-replication 1.0.x's reader with two fixes that make a MariaDB GTID start reliable.

    1. Its MariaDB COM_BINLOG_DUMP packet declares 14 payload bytes but sends 15 (a 4-byte
       "empty file name"). The stray byte stays unread on the server's socket, so when the server
       closes the dump connection the kernel sends a TCP reset instead of a FIN, and the events
       still buffered on our side are thrown away: "Lost connection (104, reset by peer)" a few
       MB into any replay longer than the socket buffers.
    2. On that error (2013/2006) the library reconnects silently with its ORIGINAL auto_position
       (it never advances it), so the replay starts over from the first GTID: with (1) this
       looped over the whole binlog (582k events) forever. A reconnect is refused here instead:
       the error reaches SourceSync, which flushes and resumes from its checkpoint, a transaction
       boundary, by the GTID of the last committed transaction (file/offset likewise).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connects = 0

    def _BinLogStreamReader__connect_to_stream(self) -> None:  # overrides the name-mangled private method
        self._connects += 1
        if self._connects > 1:
            raise pymysql.err.OperationalError(2013, "binlog stream lost; resuming from the sync checkpoint")
        BinLogStreamReader._BinLogStreamReader__connect_to_stream(self)  # type: ignore[attr-defined]

    def _BinLogStreamReader__set_mariadb_settings(self) -> bytes:  # overrides the name-mangled private method
        cur = self._stream_connection.cursor()
        if self.auto_position is not None:
            cur.execute("SET @slave_connect_state = %s", (self.auto_position,))
        cur.execute("SET @slave_gtid_strict_mode=1")
        cur.execute("SET @slave_gtid_ignore_duplicates=0")
        cur.close()
        flags = 0 if self._BinLogStreamReader__blocking else 0x01  # BINLOG_DUMP_NON_BLOCK
        # COM_BINLOG_DUMP: command, position 4, flags, server id, empty file name (= start by GTID)
        payload = bytes([COM_BINLOG_DUMP]) + struct.pack("<IHI", 4, flags, self._BinLogStreamReader__server_id)
        return struct.pack("<i", len(payload)) + payload  # 3-byte length + sequence id 0


# the overrides above lean on the 1.0.x private names: if they change, fail loudly, not silently
if not all(hasattr(BinLogStreamReader, f"_BinLogStreamReader__{n}") for n in ("set_mariadb_settings", "connect_to_stream")):
    raise ImportError("mysql-replication's private stream methods changed: GtidStreamReader needs updating")


def stream_server_id(workdir: WorkDir, source: str) -> int:
    """A replica server_id no real server uses: high range, distinct per work dir and source."""
    return 0x40000000 | (zlib.crc32(f"{workdir.root.resolve()}|{source}".encode()) & 0x3FFFFFFF)


def read_shape(conn: pymysql.connections.Connection, database: str, table: str) -> list[Column]:
    """The table's columns in ordinal order, as row images carry them."""
    rows = query(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_SET_NAME, COLLATION_NAME, "
        "COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
        "ORDER BY ORDINAL_POSITION",
        (database, table),
    )
    return [
        Column(name=r[0], data_type=str(r[1]).lower(), column_type=str(r[2]), nullable=r[3] == "YES",
               charset=r[4], collation=r[5], default=None if r[6] is None else str(r[6]), extra=str(r[7] or ""),
               generated=any(w in str(r[7] or "").upper() for w in ("GENERATED", "VIRTUAL", "STORED", "PERSISTENT")))
        for r in rows
    ]


def table_charset(conn: pymysql.connections.Connection, database: str, table: str) -> str | None:
    """The table's default character set (what a column added without one gets)."""
    rows = query(conn, "SELECT c.CHARACTER_SET_NAME FROM information_schema.TABLES t JOIN information_schema.COLLATIONS c "
                       "ON c.COLLATION_NAME = t.TABLE_COLLATION WHERE t.TABLE_SCHEMA=%s AND t.TABLE_NAME=%s", (database, table))
    return rows[0][0] if rows else None


def unique_keys(conn: pymysql.connections.Connection, database: str, table: str) -> int:
    """How many unique indexes (primary key included) the table has."""
    return int(query(conn, "SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
                           "AND TABLE_NAME=%s AND NON_UNIQUE=0", (database, table))[0][0])


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


@dataclass
class Txn:
    changes: list[RowChange] = field(default_factory=list)
    gtid: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    start: BinlogPosition | None = None  # where the event group began (never mutated: `safe` is replaced)
    began: bool = False  # a BEGIN was read: only COMMIT, XID, ROLLBACK, XA or real DDL ends the group


@dataclass
class PreparedXa:
    """An XA transaction's rows, binlogged at XA PREPARE, held until its XA COMMIT / ROLLBACK."""

    txn: Txn
    start: BinlogPosition  # where its XA PREPARE group begins: the checkpoint may not pass it
    held_since: float = field(default_factory=time.monotonic)
    warned: bool = False


def xa_key(text: str) -> tuple[str, bool]:
    """The xid of an XA statement's tail as the binlog prints it ("X'61',X'',1", any case), and
    whether it ends with ONE PHASE."""
    words = text.split()
    one_phase = [w.upper() for w in words[-2:]] == ["ONE", "PHASE"]
    if one_phase:
        words = words[:-2]
    return "".join(words).upper(), one_phase


def xa_key_of_event(event: XAPrepareEvent) -> str:
    """The same xid as xa_key gives for the statement text, from an XA_PREPARE event."""
    return f"X'{event.xid_gtrid.hex()}',X'{event.xid_bqual.hex()}',{event.xid_format_id}".upper()


class SourceSync:
    def __init__(self, plan: Plan, source: str, workdir: WorkDir, options: SyncOptions,
                 stop: Callable[[], bool] = lambda: False, report: Callable[[dict], None] = lambda d: None):
        self.plan = plan
        self.sp = plan.source(source)
        self.name = source
        self.workdir = workdir
        self.opts = options
        self.stop = stop
        self.report = report
        self.ep: Endpoint = self.sp.endpoint()
        self.target: Endpoint = plan.target.endpoint()
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
        self._resume: BinlogPosition | None = None  # where the next pass reads on (past held XA groups)
        self._head_conn: pymysql.connections.Connection | None = None  # kept open: polled every pass
        self._saved_at = 0.0  # monotonic time of the last checkpoint write
        self._idle_polls = 0  # polls in a row that found nothing new

    # ------------------------------------------------------------ setup

    def log_where(self) -> str:
        return f"source {self.name} ({self.ep.display()})"

    def start_checkpoint(self) -> Checkpoint:
        """The saved checkpoint, or the copy's start position when sync never ran."""
        saved = read_json(self.workdir.sync_checkpoint(self.name))
        if saved:
            try:
                return Checkpoint.model_validate(saved)
            except ValueError as exc:
                raise StateError(f"sync checkpoint {str(self.workdir.sync_checkpoint(self.name))!r} is not valid ({exc}); "
                                 "move it aside to replay from the copy's start position") from None
        copy = source_copy(self.workdir, self.plan, self.name)
        if copy.start is None:
            raise StateError(f"{self.log_where()}: copy has not recorded a start position: run `migrator copy` first")
        return Checkpoint(source=self.name, position=copy.start)

    def wait_for_copy(self) -> None:
        """A table's events are applied only once all its chunks are copied (DESIGN: the one race)."""
        while True:
            copy = source_copy(self.workdir, self.plan, self.name)
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
            columns = recorded or t.columns or read_shape(src, t.database, t.table)
            self.tables[(t.database, t.table)] = self.table_state(t, columns, tgt)

    def table_state(self, t: TablePlan, columns: list[Column], tgt: pymysql.connections.Connection) -> TableState:
        target_cols = {c.name.lower() for c in read_shape(tgt, t.target_database, t.target_table)}
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
                      serial=unique_keys(tgt, t.target_database, t.target_table) > 1)
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
        log.info("%s: replaying %d table(s) from %s:%s%s", self.log_where(), len(self.tables), self.cp.position.file,
                 self.cp.position.pos, f" (gtid {self.cp.position.gtid})" if self.by_gtid else "")
        self.applier = Applier(self.target, self.opts.workers, stop=self.stop, on_retry=self._count_retry)
        self.applier.cascades = self.cascades
        self._apply_thread = ThreadPoolExecutor(1, thread_name_prefix="batch")
        try:
            while not self.stop():
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
                if not idle or time.monotonic() - self._saved_at >= IDLE_CHECKPOINT_SECONDS:
                    self.save_checkpoint()
                else:
                    self.report({"checkpoint": self.cp.model_dump(mode="json"), "caught_up": self.caught_up,
                                 "pending_events": 0})
                if self.caught_up and self.opts.until_caught_up:
                    break
                if self.opts.duration is not None and time.monotonic() - started >= self.opts.duration:
                    break
                # an idle source is polled less and less often (up to idle_poll_max s), at once again after a change
                self._idle_polls = self._idle_polls + 1 if idle else 0
                time.sleep(min(self.opts.poll_interval * (1 + self._idle_polls // 10),
                               max(self.opts.poll_interval, self.opts.idle_poll_max)))
        finally:
            self._apply_thread.shutdown(wait=True)
            self.applier.close()
            self._close_head_conn()
        self.save_checkpoint()
        return self.cp

    def setup(self) -> None:
        with self._source_session() as src, self._target_session() as tgt:
            self.check_source(src)
            self.build_routes(src, tgt, self.cp.position.key())
            self.check_target_triggers(tgt)
            # FK actions the binlog does not hold
            self.cascades = load_cascades(src, self.tables, source_copy(self.workdir, self.plan, self.name).end,
                                          foreign_keys_from_plan(self.plan, self.name))
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
            except SourceError as exc:
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
            head, settings = read_head(self._head_conn, self.sp.flavor, self.cp.position.server_id)
            self.check_binlog_settings(settings["binlog_format"], settings["binlog_row_image"])
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
        settings = {"host": self.ep.host, "port": self.ep.port, "user": self.ep.user,
                    "passwd": self.ep.password.get_secret_value() if self.ep.password else "",
                    "connect_timeout": self.ep.connect_timeout}
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
            self.handle_ddl(stream, sql, schema)
            return None
        return txn  # rotate, heartbeats: no state change inside or outside a transaction

    # ------------------------------------------------------------ XA

    def prepare_xa(self, stream: BinLogStreamReader, event: XAPrepareEvent, txn: Txn | None) -> Txn | None:
        """XA PREPARE ends an event group holding the XA transaction's rows; whether they count is
        decided by a later XA COMMIT or XA ROLLBACK group. Hold them until then; the checkpoint
        stays at this group's start meanwhile (hold_for_xa), so a restart reads them again."""
        txn = txn if txn is not None else Txn(start=self.safe)
        if event.one_phase:  # MySQL's XA COMMIT ... ONE PHASE: this group commits
            self.commit_txn(txn)
            return None
        xid = xa_key_of_event(event)
        if txn.gtid:
            self.add_gtid(txn.gtid)  # the PREPARE group is read; its rows are not committed yet
        self.prepared[xid] = PreparedXa(Txn(changes=txn.changes, counts=txn.counts), txn.start or self.safe)
        if txn.changes:
            log.info("%s: XA transaction %s prepared at %s:%s with %d row change(s): held until its XA COMMIT or "
                     "XA ROLLBACK", self.log_where(), xid, stream.log_file, stream.log_pos, len(txn.changes))
        return None

    def warn_long_held_xa(self) -> None:
        """Say once per XA transaction when it stays undecided: it holds the checkpoint back."""
        now = time.monotonic()
        for xid, held in self.prepared.items():
            if not held.warned and now - held.held_since >= self.opts.xa_warn_seconds:
                held.warned = True
                log.warning("%s: XA transaction %s, prepared at %s:%s, is still undecided after %.0f s: the sync "
                            "checkpoint stays there (a restart re-reads from it) and its rows wait in memory. "
                            "`XA RECOVER` on the source lists it; XA COMMIT or XA ROLLBACK decides it",
                            self.log_where(), xid, held.start.file, held.start.pos, now - held.held_since)

    def handle_xa(self, stream: BinLogStreamReader, sql: str, txn: Txn | None) -> Txn | None:
        """XA statements as the binlog holds them: XA START/END inside a prepared group (MySQL
        logs START, MariaDB only END), XA COMMIT / XA ROLLBACK as a group of their own, and
        MySQL's one-phase XA COMMIT closing the group of its rows (MariaDB logs that as a plain
        transaction with an XID)."""
        words = sql.split(None, 2)
        verb = words[1].upper() if len(words) > 1 else ""
        xid, one_phase = xa_key(words[2] if len(words) > 2 else "")
        txn = txn if txn is not None else Txn(start=self.safe)
        if verb == "COMMIT" and one_phase:
            self.commit_txn(txn)
            return None
        if verb == "COMMIT":
            held = self.prepared.pop(xid, None)
            if held is None:
                self.unknown_xa_commit(stream, xid)
            else:
                self.commit_txn(held.txn)  # its rows take effect here, in commit order
            self.commit_txn(txn)
            return None
        if verb == "ROLLBACK":
            held = self.prepared.pop(xid, None)
            if held is not None and held.txn.changes:
                log.info("%s: XA transaction %s rolled back at %s:%s: its %d held row change(s) dropped",
                         self.log_where(), xid, stream.log_file, stream.log_pos, len(held.txn.changes))
            self.commit_txn(txn)
            return None
        return txn  # START / END: still inside the group

    def unknown_xa_commit(self, stream: BinLogStreamReader, xid: str) -> None:
        """An XA COMMIT whose PREPARE is before where sync started (the copy's start position):
        its rows are not in the binlog sync reads, and which tables it touched is unknown."""
        at = f"{stream.log_file}:{stream.log_pos}"
        if at in self.opts.skip_ddl:
            log.warning("%s: XA COMMIT %s at %s skipped as asked (--skip-ddl)", self.log_where(), xid, at)
            return
        raise SourceError(
            f"{self.log_where()}: XA COMMIT {xid} at {at} commits a transaction prepared before the position sync "
            f"started from, so its rows are not in the binlog sync replays; sync of this source stopped at "
            f"{self.cp.position.file}:{self.cp.position.pos}. If it changed migrated tables, re-copy them (or check "
            f"with `migrator verify`), then rerun with --skip-ddl {at}")

    def hold_for_xa(self, pos: BinlogPosition) -> BinlogPosition:
        """Where a restart must read from: `pos`, or the start of the oldest XA PREPARE group
        whose outcome is not read yet (its rows live only in memory until then)."""
        self.cp.xa_prepared = {xid: f"{p.start.file}:{p.start.pos}" for xid, p in self.prepared.items()}
        if not self.prepared:
            return pos
        oldest = min((p.start for p in self.prepared.values()), key=lambda p: p.key())
        return oldest.model_copy() if oldest.key() < pos.key() else pos

    def convert(self, stream: BinLogStreamReader, event: Any, state: TableState, txn: Txn) -> None:
        columns = stream.table_map[event.table_id].columns
        if len(columns) != len(state.shape.columns):
            self.refresh_table(state, len(columns), stream)
        kind = KIND[type(event)]
        shape, route = state.shape, state.route
        decoder = state.decoder(columns)
        if decoder is not None and decoder.readable(event):
            rows = decoder.rows(event)
            if kind == "update":
                txn.changes.extend(RowChange("update", route, before, after) for before, after in rows)
            elif kind == "insert":
                txn.changes.extend(RowChange("insert", route, None, row) for row in rows)
            else:
                txn.changes.extend(RowChange("delete", route, row, None) for row in rows)
            txn.counts[kind] = txn.counts.get(kind, 0) + len(rows)
            return
        prepare_columns(columns, shape)
        for row in event.rows:
            if kind == "update":
                before = fix_row(shape, row["before_values"], row["before_none_sources"])
                after = fix_row(shape, row["after_values"], row["after_none_sources"])
                txn.changes.append(RowChange("update", route, before, after))
            else:
                values = fix_row(shape, row["values"], row["none_sources"])
                txn.changes.append(RowChange(kind, route, values if kind == "delete" else None,
                                             values if kind == "insert" else None))
            txn.counts[kind] = txn.counts.get(kind, 0) + 1

    def refresh_table(self, state: TableState, n_columns: int, stream: BinLogStreamReader) -> None:
        t = state.plan
        with self._source_session() as src, self._target_session() as tgt:
            fresh = self.table_state(t, read_shape(src, t.database, t.table), tgt)
        if len(fresh.shape.columns) != n_columns:
            raise SourceError(
                f"{self.log_where()}: table {t.source_name} has {n_columns} columns in the binlog at "
                f"{stream.log_file}:{stream.log_pos} but {len(fresh.shape.columns)} on the source now (its DDL is not in "
                f"the replayed binlog); sync stopped at {self.cp.position.file}:{self.cp.position.pos}: re-copy the table")
        state.shape, state.route = fresh.shape, fresh.route

    def commit_txn(self, txn: Txn | None) -> None:
        if txn is None:
            return
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
            self._inflight = (self._apply_thread.submit(self.applier.apply, batch), pos, counts, batch)
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
            fut, pos, counts, batch = inflight
            try:
                fut.result()
            except TargetError as exc:
                self.reapply_after_merged_ddl(exc, batch)
            self._advance(pos, counts)

    def reapply_after_merged_ddl(self, exc: TargetError, batch: list[RowChange], attempts: int = 3) -> None:
        """Another shard's DDL dropped a column of the merged target table while this shard's
        batch still wrote it (error 1054): write the batch again with the columns the target has
        now (idempotent: REPLACE / DELETE by key). Any other error stands."""
        for _ in range(attempts):
            routes = {id(ch.route): ch.route for ch in batch if ch.route.merged}
            if error_code(exc.__context__ or exc) != 1054 or not routes:
                raise exc
            with self._target_session() as tgt:
                for route in list(routes.values()) + [s.route for s in self.tables.values() if s.route.merged]:
                    now = {c.name.lower() for c in read_shape(tgt, route.target_database, route.target_table)}
                    gone = [c for c in route.columns if c.lower() not in now]
                    if gone:
                        log.warning("%s: columns %s were dropped from %s by another shard's DDL: this shard's rows are "
                                    "written without them until it reaches that DDL itself", self.log_where(), gone,
                                    route.target_name)
                        route.columns = [c for c in route.columns if c.lower() in now]
            try:
                self.applier.apply(batch)
                return
            except TargetError as again:
                exc = again
        raise exc

    def _advance(self, pos: BinlogPosition, counts: dict[str, int]) -> None:
        for k, n in counts.items():
            self.cp.rows[k] = self.cp.rows.get(k, 0) + n
        self.cp.position = pos
        self.cp.event_time = pos.at or self.cp.event_time
        self.save_checkpoint()
        if counts:
            self.report({"rows": counts})

    def save_checkpoint(self) -> None:
        self.cp.updated_at = time.time()
        self._saved_at = time.monotonic()
        # what is held now (an XA COMMIT read since the position last moved is no longer held)
        self.cp.xa_prepared = {xid: f"{p.start.file}:{p.start.pos}" for xid, p in self.prepared.items()}
        atomic_write_json(self.workdir.sync_checkpoint(self.name), self.cp.model_dump(mode="json"))
        self.report({"checkpoint": self.cp.model_dump(mode="json"), "caught_up": self.caught_up,
                     "pending_events": self.pending_events})

    # ------------------------------------------------------------ GTID

    def gtid_state(self) -> str:
        return self._gtid

    def add_gtid(self, gtid: str) -> None:
        if not self._track_gtid:
            return
        current = self.gtid_state() or ""
        if self.sp.flavor == "mariadb":
            domains = {g.split("-", 1)[0]: g for g in current.split(",") if g}
            domains[gtid.split("-", 1)[0]] = gtid
            self._gtid = ",".join(domains[d] for d in sorted(domains, key=int))
        else:
            self._gtid = str(GtidSet(current) + Gtid(gtid)) if current else gtid

    # ------------------------------------------------------------ DDL

    def check_statement_event(self, stream: BinLogStreamReader, sql: str, schema: str) -> None:
        """A DML statement logged as text cannot be replayed safely: stop if it names a synced table."""
        stmt = classify(sql, schema)
        hits = [self.tables[n] for n in stmt.tables if n in self.tables]
        if stmt.kind == "dml" and hits:
            raise SourceError(f"{self.log_where()}: a statement-format event for {hits[0].plan.source_name} at "
                              f"{stream.log_file}:{stream.log_pos} (binlog_format switched away from ROW?); statement "
                              "events cannot be replayed safely: set binlog_format=ROW, re-copy the table, sync again")

    def handle_ddl(self, stream: BinLogStreamReader, sql: str, schema: str) -> None:
        stmt = classify(sql, schema)
        hits = [self.tables[n] for n in stmt.tables if n in self.tables]
        if stmt.kind == "dml":
            self.check_statement_event(stream, sql, schema)
            return
        if stmt.kind == "create_table" and not hits:
            for db, table in stmt.tables:
                if any(t.source == self.name and t.database == db for t in self.plan.tables):
                    log.warning("%s: new table %s.%s created on the source is not in the plan: ignored (re-plan to "
                                "migrate it)", self.log_where(), db, table)
            return
        if not hits:
            return
        self.flush()  # everything before the DDL is on the target before the DDL runs
        ddl_id = f"{stream.log_file}:{stream.log_pos}"
        keyed = stmt.kind in ("alter", "create_index", "drop_index") or (
            stmt.kind == "truncate" and not any(h.route.merged for h in hits))
        skip = ddl_id in self.opts.skip_ddl
        if skip:
            log.warning("%s: DDL at %s skipped as asked (--skip-ddl): %s", self.log_where(), ddl_id, sql)
        elif not keyed:
            self.stop_for_ddl(stmt, hits, ddl_id, f"{stmt.kind.replace('_', ' ').upper()} changes what the plan routes")
        if keyed:
            for state in hits:
                self.apply_ddl(stmt, state, ddl_id, skip=skip)
        self.refresh_after_ddl(hits, stmt, ddl_id)

    def apply_ddl(self, stmt: DdlStatement, state: TableState, ddl_id: str, skip: bool = False) -> None:
        """Run the statement on the target unless its occurrence already ran there (DdlRecord):
        sent by another shard of the merged table, or applied before a restart replayed it.
        skip: the DBA made the change by hand (--skip-ddl); recorded as applied for every shard."""
        route = state.route
        sql = retarget(stmt, route.target_database, route.target_table, self.parent_target_of(state),
                       state.plan.database)
        sql, blocking = rewrite_for_target(sql, self.plan.target.engine, self.sp.flavor)
        key, table = normalize(sql), state.plan.id
        record = self.ddl_record
        with record.locked():
            occ = record.occurrence(route.target_name, key, table, ddl_id)
            if occ.applied_by is not None:
                by = occ.applied_by
                if not occ.seen:
                    record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "already applied")
                    self.warn_if_behind(route.target_name, record.applied_after(route.target_name, by, table), table)
                log.info("%s: DDL (occurrence %d) already applied to %s by %s at %s: %s", self.log_where(), occ.k,
                         route.target_name, by.get("table") or by.get("source"), by.get("position"), key)
                return
            if skip:
                record.record_applied(route.target_name, key, occ.k, self.name, table, ddl_id + " (--skip-ddl)")
                record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "skipped (--skip-ddl)")
                return
            if blocking:
                self.stop_for_ddl(stmt, [state], ddl_id, "; ".join(blocking))
            try:
                self.applier.execute_ddl(sql)
            except TargetError as exc:
                # replayed after a crash between applying and recording: the change is already there
                if not ddl_error_is_already_applied(exc.__context__ or exc):
                    self.stop_for_ddl(stmt, [state], ddl_id, f"the target refused it: {exc}")
            record.record_applied(route.target_name, key, occ.k, self.name, table, ddl_id)
            record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "applied")
        self.cp.ddl_applied += 1
        log.warning("%s: applied DDL to %s (occurrence %d): %s", self.log_where(), route.target_name, occ.k, sql)

    def parent_target_of(self, state: TableState) -> Callable[[str, str], tuple[str, str]]:
        """(source db, table) of a REFERENCES clause -> its target table: the parent's route when
        the plan has it on this source, else the same name in the child's target database."""
        routed = {(t.database, t.table): (t.target_database, t.target_table)
                  for t in self.plan.tables if t.source == self.name}

        def target(db: str, table: str) -> tuple[str, str]:
            return routed.get((db, table), (state.route.target_database, table))
        return target

    def warn_if_behind(self, target_name: str, ahead: list[dict], table: str) -> None:
        """Shards of a merged table apply DDL optimistically: the first shard to meet an
        occurrence runs it, the others skip it. A shard a whole DDL behind another writes its rows
        into a table already changed further (e.g. values of a column this shard drops next,
        into the column another shard re-added): say so, the rows may differ until verified."""
        if not ahead:
            return
        shown = "; ".join(f"{r['statement']} (by {r.get('table') or r.get('source')} at {r.get('position')})"
                          for r in ahead[:3]) + (f" and {len(ahead) - 3} more" if len(ahead) > 3 else "")
        log.warning("%s: target table %s is ahead of shard %s by DDL other shards applied since: %s. Rows this "
                    "shard writes until it reaches those statements may differ from the source: run `migrator "
                    "verify` on %s after sync catches up (keep shards within one DDL of each other)",
                    self.log_where(), target_name, table, shown, target_name)

    def refresh_after_ddl(self, hits: list[TableState], stmt: DdlStatement, ddl_id: str) -> None:
        with self._source_session() as src, self._target_session() as tgt:
            for state in hits:
                t = state.plan
                columns = self.shape_after(stmt, state, read_shape(src, t.database, t.table), src)
                self.ddl_record.record_shape(t.id, ddl_id, columns)
                fresh = self.table_state(t, columns, tgt)
                state.shape, state.route = fresh.shape, fresh.route
            # a DDL may add or drop a foreign key: the cascades are read again, from the catalog as it is now
            self.cascades = self.applier.cascades = load_cascades(src, self.tables,
                                                                  source_copy(self.workdir, self.plan, self.name).end)

    def shape_after(self, stmt: DdlStatement, state: TableState, current: list[Column],
                    src: pymysql.connections.Connection) -> list[Column]:
        """The table's columns at this point of the binlog: the earlier shape changed by the
        statement (the source may have changed again since: ADD c / DROP c / ADD c), with the
        source's definitions of added or modified columns; its current shape when the statement
        cannot be followed."""
        entries = columns_after(stmt, state.shape.columns)
        if entries is None:
            return current
        now = {c.name.lower(): c for c in current}
        out: list[Column] = []
        charset: str | None = None
        for entry in entries:
            if isinstance(entry, Column):
                out.append(entry)
            elif entry.name.lower() in now:
                out.append(now[entry.name.lower()])
            else:  # added then dropped again later on the source: built from the statement
                charset = charset or table_charset(src, state.plan.database, state.plan.table)
                out.append(column_from_def(entry, charset))
        return out

    def stop_for_ddl(self, stmt: DdlStatement, hits: list[TableState], ddl_id: str, why: str) -> None:
        names = ", ".join(h.plan.source_name for h in hits)
        raise SourceError(
            f"{self.log_where()}: DDL on {names} cannot be applied safely ({why}): {stmt.sql.strip()[:300]!r}. "
            f"Sync of this source stopped; it resumes at {self.cp.position.file}:{self.cp.position.pos}. Apply the "
            f"equivalent change to the target by hand, then rerun with --skip-ddl {ddl_id} (or re-plan and re-copy)")


def is_savepoint_statement(sql: str) -> bool:
    """SAVEPOINT x, ROLLBACK TO [SAVEPOINT] x, RELEASE SAVEPOINT x: statements a row-format binlog
    keeps inside their transaction (between BEGIN and its XID)."""
    words = sql.split(None, 2)
    first = words[0].upper() if words else ""
    second = words[1].upper() if len(words) > 1 else ""
    return first == "SAVEPOINT" or (first == "ROLLBACK" and second in ("TO", "WORK")
                                    and "TO" in sql.upper().split()) or (first == "RELEASE" and second == "SAVEPOINT")


def is_ddl(stmt: DdlStatement) -> bool:
    """Statements that change a table's definition (and commit implicitly), by what they are."""
    return stmt.kind in DDL_KINDS


def source_unreachable(exc: BaseException) -> bool:
    """A connection-level failure (server restarting, network), as opposed to a refusal."""
    cause = exc.__context__ if isinstance(exc, SourceError) else exc
    return cause is not None and error_code(cause) in (2002, 2003, 2006, 2013, 1053, 1927) or isinstance(cause, OSError)


def status_line(cp: Checkpoint) -> dict[str, Any]:
    """Lag of one checkpoint against the source head it last saw."""
    head = cp.head
    behind = head is not None and cp.position.key() < head.key()
    lag_s = max(0.0, (head.at if head else time.time()) - cp.event_time) if behind and cp.event_time else 0.0
    lag_bytes = 0
    if behind and head is not None:
        lag_bytes = head.pos - cp.position.pos if head.file == cp.position.file else head.pos
    return {"lag_seconds": round(lag_s, 3), "lag_bytes": lag_bytes, "behind": behind}


def gtid_distance(applied: str, head: str, flavor: str) -> int | None:
    """Transactions between two MariaDB GTID positions (sequence numbers per domain); None if unknown."""
    if flavor != "mariadb" or not head:
        return None

    def seqs(pos: str) -> dict[str, int]:
        out = {}
        for g in filter(None, pos.split(",")):
            domain, _server, seq = g.strip().split("-")
            out[domain] = int(seq)
        return out

    a, h = seqs(applied), seqs(head)
    return sum(max(0, seq - a.get(d, 0)) for d, seq in h.items())
