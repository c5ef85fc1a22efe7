"""XA transactions in the binlog: rows logged at XA PREPARE wait in memory until their XA COMMIT
(applied there, in commit order) or XA ROLLBACK (dropped); the checkpoint never passes the
oldest undecided PREPARE, so a restart reads it again. A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import XAPrepareEvent

from ..errors import SourceError
from ..positions import BinlogPosition
from .txn import Txn

log = logging.getLogger("migrator.sync.stream")


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


class XaReplay:
    """SourceSync's XA handling (uses its prepared, safe, cp, opts and commit_txn)."""


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
