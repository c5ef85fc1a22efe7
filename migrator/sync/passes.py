"""Reading a source's binlog: one pass opens the reader at the position sync has read to, folds
events into transactions and hands complete ones to batching, until the binlog's current end; the
source's head is polled on one connection kept for the process's life. A mixin of SourceSync
(stream.py)."""

from __future__ import annotations

import logging
import time
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

from ..db import describe_error, error_code, ssl_args
from ..endpoint import Endpoint
from ..errors import SourceError
from ..positions import BinlogPosition, read_head
from .packets import PacketReader
from .reader import GtidStreamReader, stream_server_id
from .txn import Txn

log = logging.getLogger("migrator.sync.stream")

PURGED = 1236  # ER_MASTER_FATAL_ERROR_READING_BINLOG: the binlog asked for is gone
SOURCE_FATAL = {1045, 1044, 1698, 1227, 1236}
PROGRESS_SECONDS = 2.0  # a long pass or a stalled batch still reports its lag this often


class BinlogPasses:
    """SourceSync's reading (uses its ep, sp, cp, opts, tables, pause, stop, handle and flush)."""

    def one_pass(self) -> None:
        """Read from the checkpoint to the binlog's current end, applying in batches."""
        gtid_start = self.by_gtid
        self.caught_up = False  # behind the head this poll saw: said while the pass runs (report_progress)
        self.cp.pending_since = self.read_since_flush = None  # the last pass ended with everything applied
        stream = self.open_stream()
        self.batch = []
        self.batch_counts = {}
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
                self.note_read(getattr(event, "timestamp", 0))
                txn = self.handle(stream, event, txn)
                # a GTID start opens with a fake rotate to offset 4 of the file holding the GTID: that
                # offset is before our point, so it must not become the checkpoint's file/offset
                if txn is None and not (gtid_start and isinstance(event, RotateEvent) and not event.timestamp):
                    self.safe = self._position_now(stream, getattr(event, "timestamp", 0) or self.safe.at)
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

    def note_read(self, timestamp: float) -> None:
        """An event read, not yet on the target: the lag counts from the oldest such (a pass reading one
        big transaction for minutes is that far behind, not as far as the head was when it started);
        the coordinator hears where this source stands every PROGRESS_SECONDS meanwhile."""
        if timestamp:
            if self.cp.pending_since is None:
                self.cp.pending_since = float(timestamp)
            if self.read_since_flush is None:
                self.read_since_flush = float(timestamp)
        if time.monotonic() - self.progress_at >= PROGRESS_SECONDS:
            self.report_progress()

    def report_progress(self) -> None:
        self.progress_at = time.monotonic()
        self.report_checkpoint(self.cp.model_dump(mode="json"))

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
        if self.opts.packet_reader:  # sync reads the packets itself (packets.py)
            return PacketReader(table_maps=self.table_maps, **kwargs)
        return GtidStreamReader(**kwargs)

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


def stream_connection_settings(ep: Endpoint) -> dict[str, Any]:
    """pymysql arguments of the binlog reader's connections (it opens them itself): the URL's
    credentials and ssl-mode, on the process's shared TLS context (left to pymysql, every pass's
    two connections tried TLS unverified whatever the URL said, loading the CA store each time:
    ~35 ms of CPU, serialised across the threads of a process serving several sources)."""
    ep = ep.resolved()  # a password sent by reference (Dask credentials=worker) is read here
    return {"host": ep.host, "port": ep.port, "user": ep.user,
            "passwd": ep.password.get_secret_value() if ep.password else "", "connect_timeout": ep.connect_timeout,
            **ssl_args(ep, remembered=True)}


def source_unreachable(exc: BaseException) -> bool:
    """A connection-level failure (server restarting, network), as opposed to a refusal."""
    cause = exc.__context__ if isinstance(exc, SourceError) else exc
    return cause is not None and error_code(cause) in (2002, 2003, 2006, 2013, 1053, 1927) or isinstance(cause, OSError)
