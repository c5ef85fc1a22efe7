"""Transaction assembly: binlog events folded into transactions (the row changes of one event
group), complete ones added to the batch. TxnAssembly is a mixin of SourceSync (stream.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, NotImplementedEvent, QueryEvent, XAPrepareEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, PartialUpdateRowsEvent, UpdateRowsEvent, WriteRowsEvent

from ..errors import SourceError
from ..positions import BinlogPosition
from .apply import RowChange
from .cascade import NO_FOREIGN_KEY_CHECKS, unchecked
from .ddl import classify
from .ddlreplay import is_ddl
from .packets import PacketRows
from .reader import is_savepoint_statement, undecodable_event_reason
from .rowdecode import event_changes

if TYPE_CHECKING:
    from .tables import TableState


@dataclass
class Txn:
    changes: list[RowChange] = field(default_factory=list)
    gtid: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    start: BinlogPosition | None = None  # where the event group began (never mutated: `safe` is replaced)
    began: bool = False  # a BEGIN was read: only COMMIT, XID, ROLLBACK, XA or real DDL ends the group


ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)
KIND = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}


class TxnAssembly:
    """SourceSync's transaction assembly: binlog events folded into transactions, complete ones
    added to the batch (uses its tables, safe, cp, cascades, window, batch, batch_counts)."""

    def handle(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        """Fold one event into the open transaction; returns None at a transaction boundary."""
        step = STEPS.get(type(event))
        if step is None:
            step = STEPS[type(event)] = step_for(type(event))
        return step(self, stream, event, txn)

    def _partial_update(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        raise SourceError(
            f"{self.log_where()}: a partial JSON update (binlog_row_value_options=PARTIAL_JSON) at {stream.log_file}:"
            f"{stream.log_pos}; sync needs full after-images and stopped at {self.cp.position.file}:"
            f"{self.cp.position.pos}. SET GLOBAL binlog_row_value_options='', then re-copy the tables updated meanwhile")

    def _undecodable(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        # an event the reader cannot decode is never skipped unless it is known to carry no rows
        # (MariaDB decompresses log_bin_compress events for a reader like ours, at least mostly: one still
        # compressed in the stream stops sync here, tests/test_sync_packets.py; MySQL's never are)
        why = undecodable_event_reason(event.event_type)
        if why is not None:
            raise SourceError(f"{self.log_where()}: at {stream.log_file}:{stream.log_pos} {why}; sync of this "
                              f"source stopped at {self.cp.position.file}:{self.cp.position.pos}")
        return txn

    def _gtid(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        if txn is not None and txn.changes:
            # the previous event group ended without XID, COMMIT or XA PREPARE: dropping its rows
            # would lose them silently, applying them could add rows never committed
            tables = ", ".join(sorted({ch.route.table_id for ch in txn.changes}))
            raise SourceError(
                f"{self.log_where()}: a transaction on {tables} before {stream.log_file}:{stream.log_pos} has no "
                f"commit sync recognises; sync of this source stopped at {self.cp.position.file}:"
                f"{self.cp.position.pos}. Re-copy the table(s), or report this binlog sequence")
        return Txn(gtid=str(event.gtid), start=self.safe)

    def _rows(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        state = self.tables.get((event.schema, event.table))
        if state is None:
            return txn if txn is not None else Txn()
        txn = txn if txn is not None else Txn()
        first = len(txn.changes)
        self.convert(stream, event, state, txn)
        if self.cascades is not None and getattr(event, "flags", 0) & NO_FOREIGN_KEY_CHECKS:
            unchecked(txn.changes, first)  # written with foreign_key_checks=0: InnoDB cascaded nothing
        return txn

    def _xid(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        self.commit_txn(txn)
        return None

    def _query(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
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

    def _other(self, stream: BinLogStreamReader, event: Any, txn: Txn | None) -> Txn | None:
        return txn  # rotate, heartbeats: no state change inside or outside a transaction

    def convert(self, stream: BinLogStreamReader, event: Any, state: TableState, txn: Txn) -> None:
        columns = stream.table_map[event.table_id].columns
        if len(columns) != len(state.shape.columns):
            self.refresh_table(state, len(columns), stream)
        kind = event.kind if isinstance(event, PacketRows) else KIND[type(event)]
        n = event_changes(event, kind, columns, state.shape, state.route, state.decoder(columns), txn.changes,
                          state.before_columns(self.cascades) if kind != "insert" else None)
        txn.counts[kind] = txn.counts.get(kind, 0) + n

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


def step_for(cls: type) -> Any:
    """The TxnAssembly step folding events of this class into transactions (the library's classes
    and packets.py's subclasses of them; checked in this order: a subclass before its base)."""
    if issubclass(cls, PartialUpdateRowsEvent):
        return TxnAssembly._partial_update
    if issubclass(cls, NotImplementedEvent):
        return TxnAssembly._undecodable
    if issubclass(cls, (MariadbGtidEvent, GtidEvent)):
        return TxnAssembly._gtid
    if issubclass(cls, XAPrepareEvent):
        return lambda sync, stream, event, txn: sync.prepare_xa(stream, event, txn)
    if issubclass(cls, ROW_EVENTS):
        return TxnAssembly._rows
    if issubclass(cls, XidEvent):
        return TxnAssembly._xid
    if issubclass(cls, QueryEvent):
        return TxnAssembly._query
    return TxnAssembly._other


STEPS: dict[type, Any] = {}  # event class -> its step (step_for), filled as classes are met
