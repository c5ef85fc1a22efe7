"""Where sync has read to in a source's binlog: the transaction boundary last passed (`safe`),
the next pass's start, and the GTID state a resume by GTID needs. A mixin of SourceSync
(stream.py); the checkpoint (checkpointing.py) moves to these positions once the target
committed what they cover."""

from __future__ import annotations

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.gtid import Gtid, GtidSet

from ..positions import BinlogPosition

class ReadPosition:
    """SourceSync's read position (uses its cp, safe, batch, _resume, _gtid, _track_gtid, opts)."""

    @property
    def read_from(self) -> BinlogPosition:
        """Where the next pass reads: past what this process already read, even when held XA
        transactions keep the checkpoint further back."""
        return self._resume or self.cp.position

    @property
    def by_gtid(self) -> bool:
        """Start by GTID when the checkpoint carries a complete one (see run: tracked from the start)."""
        return self.opts.use_gtid and self._track_gtid and bool(self.read_from.gtid)

    def _position_now(self, stream: BinLogStreamReader, at: float | None = None) -> BinlogPosition:
        """Where the stream is now; `at`: the binlog time there (else the last boundary's)."""
        return BinlogPosition(file=stream.log_file, pos=int(stream.log_pos), gtid=self.gtid_state(),
                              flavor=self.sp.flavor, server_id=self.cp.position.server_id,
                              at=self.safe.at if at is None else at)

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

    def gtid_state(self) -> str:
        return self._gtid

    def add_gtid(self, gtid: str) -> None:
        if not self._track_gtid:
            return
        current = self.gtid_state() or ""
        if self.sp.flavor == "mariadb":
            domain = gtid[:gtid.index("-") + 1]
            if current.startswith(domain) and "," not in current:  # one domain (the usual): replaced
                self._gtid = gtid
                return
            domains = {g.split("-", 1)[0]: g for g in current.split(",") if g}
            domains[gtid.split("-", 1)[0]] = gtid
            self._gtid = ",".join(domains[d] for d in sorted(domains, key=int))
        else:
            self._gtid = str(GtidSet(current) + Gtid(gtid)) if current else gtid
