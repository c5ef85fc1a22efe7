"""Copy checkpoint: what is copied, read back from the work directory alone.

Files (paths from WorkDir):
- copy/positions/SRC.json  {"start": BinlogPosition, "end": BinlogPosition | null}: written before
  the source's first chunk is read (sync starts there) and when its copy finished.
- copy/journal.jsonl       one record per page committed on the target, appended after the
  target commit: {"t": table id, "c": chunk id, "after": last key written (plan encoding),
  "rows": n, "bytes": n, "done": bool}; a failure is {"t": id, "error": message}.
- context.json             plan fingerprint and, under "copy", each table's live source shape.

The journal is compacted when a copy run starts (`compact_journal`, under the writer lock): one
record per chunk with its totals, plus errors of unfinished tables, replaces the page history
through a rename, so a kill at any instant leaves a journal giving the same CopyState.

`CopyState` is what `status`, sync and cutover read; the runner writes through `CopyJournal`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..plan.model import KeyValue, Plan, TablePlan
from ..positions import BinlogPosition
from ..state import Journal, atomic_write, atomic_write_json, read_json
from ..workdir import WorkDir

log = logging.getLogger(__name__)

def chunk_ids(table: TablePlan) -> list[int]:
    """A table without plan chunks is one chunk (id 0) covering the whole table."""
    return [c.id for c in table.chunks] or [0]


@dataclass
class ChunkProgress:
    rows: int = 0
    bytes: int = 0
    after: list[KeyValue] | None = None  # last key committed on the target
    done: bool = False
    at: float | None = None  # when its last page was journaled (for a human reading the journal)


@dataclass
class TableProgress:
    table_id: str
    source: str
    rows: int
    bytes: int
    chunks_done: int
    chunks_total: int
    estimated_rows: int
    error: str | None = None

    @property
    def complete(self) -> bool:
        return self.chunks_done >= self.chunks_total


@dataclass
class CopyState:
    plan: Plan
    positions: dict[str, dict[str, BinlogPosition | None]] = field(default_factory=dict)
    chunks: dict[tuple[str, int], ChunkProgress] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    journal_records: int = field(default=0, compare=False)  # complete lines replayed (compaction's yardstick)

    @classmethod
    def load(cls, workdir: WorkDir, plan: Plan) -> CopyState:
        state = cls(plan=plan)
        for src in plan.sources:
            raw = read_json(workdir.copy_position(src.name))
            if raw:
                state.positions[src.name] = {
                    k: (BinlogPosition.model_validate(raw[k]) if raw.get(k) else None) for k in ("start", "end")
                }
        for rec in Journal(workdir.copy_journal).replay():
            state.apply(rec)
            state.journal_records += 1
        return state

    def apply(self, rec: dict[str, Any]) -> None:
        tid = rec["t"]
        if "error" in rec:
            self.errors[tid] = rec["error"]
            return
        cp = self.chunks.setdefault((tid, int(rec["c"])), ChunkProgress())
        cp.rows += int(rec.get("rows", 0))
        cp.bytes += int(rec.get("bytes", 0))
        if rec.get("after") is not None:
            cp.after = rec["after"]
        cp.done = cp.done or bool(rec.get("done"))
        if rec.get("at") is not None:
            cp.at = rec["at"]

    def compacted_records(self) -> list[dict[str, Any]]:
        """The shortest journal that replays to this state: per chunk its totals and last key;
        errors only of tables not finished since (a finished table shows none)."""
        out: list[dict[str, Any]] = []
        for (tid, cid), cp in self.chunks.items():
            rec = {"t": tid, "c": cid, "after": cp.after, "rows": cp.rows, "bytes": cp.bytes, "done": cp.done}
            if cp.at is not None:
                rec["at"] = cp.at
            out.append(rec)
        out += [{"t": tid, "error": msg} for tid, msg in self.errors.items() if not self._table_done(tid)]
        return out

    # ---- what sync and cutover ask
    def start_position(self, source: str) -> BinlogPosition | None:
        return self.positions.get(source, {}).get("start")

    def end_position(self, source: str) -> BinlogPosition | None:
        return self.positions.get(source, {}).get("end")

    def chunk(self, table_id: str, chunk_id: int) -> ChunkProgress:
        return self.chunks.get((table_id, chunk_id)) or ChunkProgress()

    def _table(self, table_id: str) -> TablePlan:
        for t in self.plan.tables:
            if t.id == table_id:
                return t
        raise StateError(f"table {table_id!r} is not in the plan")

    def _table_done(self, table_id: str) -> bool:
        try:
            table = self._table(table_id)
        except StateError:
            return False
        return all(self.chunk(table_id, c).done for c in chunk_ids(table))

    def table_complete(self, table_id: str) -> bool:
        return self._table_done(table_id)

    def incomplete_tables(self) -> list[str]:
        return [t.id for t in self.plan.active_tables() if not self.table_complete(t.id)]

    def source_complete(self, source: str) -> bool:
        return all(self.table_complete(t.id) for t in self.plan.active_tables() if t.source == source)

    def table_progress(self, table_id: str) -> TableProgress:
        table = self._table(table_id)
        ids = chunk_ids(table)
        parts = [self.chunk(table_id, c) for c in ids]
        complete = all(p.done for p in parts)
        return TableProgress(
            table_id=table_id, source=table.source, rows=sum(p.rows for p in parts),
            bytes=sum(p.bytes for p in parts), chunks_done=sum(p.done for p in parts),
            chunks_total=len(ids), estimated_rows=table.estimated_rows, error=None if complete else self.errors.get(table_id),
        )

    def progress(self) -> list[TableProgress]:
        return [self.table_progress(t.id) for t in self.plan.active_tables()]


class CopyJournal:
    """The runner's thread-safe writer: one fsynced line per committed page."""

    def __init__(self, workdir: WorkDir):
        self._journal = Journal(workdir.copy_journal)
        self._lock = threading.Lock()

    def page(self, table_id: str, chunk_id: int, after: list[KeyValue] | None, rows: int, nbytes: int,
             done: bool) -> None:
        rec = {"t": table_id, "c": chunk_id, "after": after, "rows": rows, "bytes": nbytes, "done": done,
               "at": round(time.time(), 3)}
        with self._lock:
            self._journal.append(rec)

    def error(self, table_id: str, message: str) -> None:
        with self._lock:
            self._journal.append({"t": table_id, "error": message, "at": round(time.time(), 3)})

    def close(self) -> None:
        with self._lock:
            self._journal.close()


def compact_journal(workdir: WorkDir, state: CopyState,
                    before_rename: Callable[[], None] = lambda: None) -> tuple[int, int] | None:
    """Replace the copy journal by `state.compacted_records()`, atomically: a temp file in the same
    directory, fsynced, renamed over the journal, directory fsynced. A kill leaves the old or the new
    journal (same CopyState) and at most a temp file, removed by the next run. The caller holds the
    work directory's writer lock and loaded `state` under it. Returns (bytes before, after), or None
    when the journal is already minimal."""
    path = workdir.copy_journal
    _remove_stale_temps(path)
    records = state.compacted_records()
    if state.journal_records <= len(records) and not _torn_tail(path):
        return None
    before = path.stat().st_size
    after = atomic_write(path, (json.dumps(r, sort_keys=True, default=str).encode() + b"\n" for r in records),
                         temp_prefix=_temp_prefix(path), before_rename=before_rename)
    log.info("copy journal compacted: %d records (%d bytes) -> %d records (%d bytes)",
             state.journal_records, before, len(records), after)
    return before, after


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.compact."


def _remove_stale_temps(path: Path) -> None:
    """Temp files of a compaction killed before its rename (never read: the journal is intact)."""
    if path.parent.is_dir():
        for stale in path.parent.glob(_temp_prefix(path) + "*"):
            stale.unlink(missing_ok=True)


def _torn_tail(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except FileNotFoundError:
        return False


def write_position(workdir: WorkDir, source: str, start: BinlogPosition | None, end: BinlogPosition | None) -> None:
    atomic_write_json(workdir.copy_position(source), {
        "start": start.model_dump(mode="json") if start else None,
        "end": end.model_dump(mode="json") if end else None,
    })
