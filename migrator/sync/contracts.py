"""What sync takes and leaves: its options, the per-source checkpoint file, and the lag figures
`status` and the metrics derive from a checkpoint."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..positions import BinlogPosition


class SyncStopped(Exception):
    """Asked to stop before replay began (--duration ended, SIGTERM): a clean stop, not an error."""


class SyncOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until_caught_up: bool = False
    duration: float | None = None  # seconds; None = until stopped
    workers: int = 4  # target connections per source
    batch_rows: int = 5000  # row changes per applied batch (cut at transaction ends)
    flush_interval: float = 0.5  # seconds a batch may wait before it is applied
    poll_interval: float = 0.5  # pause between passes when the binlog is drained
    idle_poll_max: float = 2.0  # the pause doubles every 4 polls in a row that found nothing new, up to this
    wait_for_copy: bool = False  # wait for unfinished tables instead of refusing
    skip_ddl: list[str] = Field(default_factory=list)  # "file:pos" of DDL the DBA handled by hand
    xa_warn_seconds: float = 300.0  # warn when a prepared XA transaction stays undecided this long
    use_gtid: bool = True  # start by GTID when the checkpoint has one (else, or when False, by file/offset)
    lease_seconds: float = 30.0  # a source's lease in the target lasts this long unless renewed (targetstate.py)
    # sync reads the binlog's packets itself (packets.py); False (or MIGRATOR_SYNC_READER=library):
    # every packet through mysql-replication's classes, as before issue 16
    packet_reader: bool = Field(default_factory=lambda: os.environ.get("MIGRATOR_SYNC_READER", "").strip().lower()
                                != "library")


class Checkpoint(BaseModel):
    """sync/SRC.json: where replay resumes, and what the last pass saw (for `migrator status`)."""

    source: str
    position: BinlogPosition  # a transaction boundary; everything before it is committed on the target
    event_time: float = 0.0  # binlog timestamp of the last applied event
    # binlog timestamp of the oldest event read but not yet on the target (None: nothing waiting)
    pending_since: float | None = None
    head: BinlogPosition | None = None  # the source's position when it was last read
    caught_up_at: float | None = None
    rows: dict[str, int] = Field(default_factory=lambda: {"insert": 0, "update": 0, "delete": 0})
    ddl_applied: int = 0
    # XA transactions prepared but not yet committed or rolled back, xid -> "file:pos" of their
    # group: `position` stays at the oldest so a restart re-reads their rows (see hold_for_xa)
    xa_prepared: dict[str, str] = Field(default_factory=dict)
    retries: int = 0
    updated_at: float = 0.0
    runs_on: str = ""  # where the source's sync runs, from its lease in the target (Dask: the worker)


class SourceStatus(BaseModel):
    """One source's sync as `status` shows it and cutover decides on it (runner.sync_status)."""

    source: str
    state: str  # what a user reads: not started, synced, behind, source unreachable: WHY (+ a held-XA note)
    started: bool = Field(True, exclude=True)  # a checkpoint exists
    unreachable: str | None = Field(None, exclude=True)  # live only: why the source's position could not be read
    xa_prepared: dict[str, str] = Field(default_factory=dict)
    position: str | None = None  # file:pos of the checkpoint
    gtid: str = ""
    head: str | None = None  # file:pos of the source's head, as last read
    lag_seconds: float = 0.0
    lag_bytes: int = 0
    lag_transactions: int | None = None  # GTID sources only
    rows: dict[str, int] = Field(default_factory=dict)
    ddl_applied: int = 0
    retries: int = 0
    updated_at: float = 0.0
    runs_on: str = ""  # Dask: the worker running this source (dasksync.py)

    def view(self) -> dict[str, Any]:
        """The JSON form (`status --json`): a source sync never ran has its name and state only."""
        return self.model_dump(mode="json", exclude_unset=True)


def status_line(cp: Checkpoint) -> dict[str, Any]:
    """Lag of one checkpoint against the source head it last saw."""
    head = cp.head
    # changes read and not yet on the target: behind, even when a pass read on past the head it
    # began with (the head is then older than what waits for the target)
    pending = bool(cp.pending_since)
    behind = pending or (head is not None and cp.position.key() < head.key())
    if pending:  # how old the oldest change the target lacks is, now
        lag_s = max(0.0, time.time() - cp.pending_since)  # type: ignore[operator]
    else:
        lag_s = max(0.0, (head.at if head else time.time()) - cp.event_time) if behind and cp.event_time else 0.0
    lag_bytes = 0
    if behind and head is not None:
        lag_bytes = max(0, head.pos - cp.position.pos) if head.file == cp.position.file else head.pos
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
