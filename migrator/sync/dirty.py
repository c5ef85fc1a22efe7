"""Which chunks sync changed, and when: the dirty set a cutover re-verifies.

Per source one file, WorkDir.sync_dirty(SRC), rewritten atomically (temp file, fsync, rename)
once per applied batch that touched a synced table, BEFORE the batch is handed to the target:

    {"version": 1, "source": SRC, "plan": fingerprint, "tracked_from": [file_no, offset],
     "tables": {table id: {chunk id | "*": [file_no, offset]}}}

Each mark is the binlog position (BinlogPosition.key()) where the batch that last touched the
chunk ends; "*" marks a whole table (DDL, keys this module cannot order like the databases, foreign
key cascades into a child table). A chunk's key is looked up by the plan's chunk bounds (bisect);
an update that changes the key marks the chunks of both images. `tracked_from` is the position
sync started from when the file was created: changes before it were not tracked.

Why a kill -9 can only over-report: the marks are durable before the target commits the batch,
and the checkpoint moves only after that commit, so a replayed batch marks its chunks again.
A chunk checked clean with the source at position V (verify/follow.py) is still clean while
every mark of it is <= V and V >= tracked_from; when in doubt (no file, another plan, a key type
that cannot be ordered here) the chunk counts as dirty.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from decimal import Decimal, InvalidOperation
from typing import Any

from ..plan.model import Plan, TablePlan
from ..positions import BinlogPosition
from ..state import atomic_write_json, read_json
from ..workdir import WorkDir
from .apply import RowChange

VERSION = 1
WHOLE = "*"
# key types whose order in Python is the databases' order (numbers); other keys mark whole tables
ORDERED = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "decimal", "numeric"}

PosKey = tuple[int, int]


def _number(v: Any) -> int | Decimal:
    if isinstance(v, bool) or v is None:
        raise TypeError("not a number")
    if isinstance(v, (int, Decimal)):
        return v
    try:
        return Decimal(str(v))
    except InvalidOperation:
        raise TypeError(f"not a number: {v!r}") from None


class ChunkIndex:
    """A table's chunks by their upper bounds: key -> chunk id, or None when the key cannot be
    placed here (then the whole table is marked)."""

    def __init__(self, tp: TablePlan):
        self.key = list(tp.key)
        self.ids: list[int] = []
        self.uppers: list[tuple] = []
        types = {c.name: c.data_type.lower() for c in tp.columns}
        chunks = sorted(tp.chunks, key=lambda c: c.id)
        self.usable = bool(self.key) and len(chunks) > 1 and all(types.get(k) in ORDERED for k in self.key)
        self.flat: list[Any] | None = None
        if not self.usable:
            self.single = chunks[0].id if len(chunks) == 1 and self.key else None
            return
        self.single = None
        try:
            for c in chunks[:-1]:
                if c.upper is None or len(c.upper) != len(self.key):
                    raise TypeError("open chunk inside the table")
                self.uppers.append(tuple(_number(v) for v in c.upper))
            self.ids = [c.id for c in chunks]
            if chunks[0].lower is not None or chunks[-1].upper is not None or self.uppers != sorted(self.uppers):
                raise TypeError("chunks do not cover the key space in order")
        except TypeError:
            self.usable = False

        # one integer column (the common key): bisect over plain numbers
        self.flat = [u[0] for u in self.uppers] if self.usable and len(self.key) == 1 else None

    def chunk_of(self, row: dict[str, Any]) -> int | None:
        if self.flat is not None:
            v = row.get(self.key[0])
            if type(v) is int:
                return self.ids[bisect_left(self.flat, v)]
        if self.single is not None:
            return self.single
        if not self.usable:
            return None
        try:
            key = tuple(_number(row[k]) for k in self.key)
        except (KeyError, TypeError):
            return None
        return self.ids[bisect_left(self.uppers, key)]


class DirtyChunks:
    """One source's dirty set, owned by its sync process (the only writer of the file)."""

    def __init__(self, workdir: WorkDir, plan: Plan, source: str, start: BinlogPosition):
        self.path = workdir.sync_dirty(source)
        self.source = source
        self.fingerprint = plan.fingerprint()
        self.plans = {t.id: t for t in plan.tables if t.source == source}
        self._index: dict[str, ChunkIndex] = {}
        saved = read_json(self.path, default=None) or {}
        if saved.get("version") == VERSION and saved.get("plan") == self.fingerprint and saved.get("tracked_from"):
            self.tracked_from: PosKey = tuple(saved["tracked_from"])  # type: ignore[assignment]
            self.tables: dict[str, dict[str, list[int]]] = saved.get("tables") or {}
        else:  # no file, or another plan's: only what is replayed from here on is known
            self.tracked_from = start.key()
            self.tables = {}
            self.save()
        self.cascades: Any = None  # cascade.Cascades of the stream: children it changes are marked too

    def index(self, table_id: str) -> ChunkIndex | None:
        idx = self._index.get(table_id)
        if idx is None and table_id in self.plans:
            idx = self._index[table_id] = ChunkIndex(self.plans[table_id])
        return idx

    def _mark(self, table_id: str, chunk: int | None, at: list[int]) -> None:
        marks = self.tables.setdefault(table_id, {})
        name = WHOLE if chunk is None else str(chunk)
        if marks.get(name, [0, 0]) < at:
            marks[name] = at

    def note(self, changes: list[RowChange], at: BinlogPosition) -> None:
        """Mark the chunks a batch touches (before the batch is applied), ending at `at`."""
        if not changes:
            return
        pos = list(at.key())
        touched: dict[str, set[int | None]] = {}
        indexes: dict[str, ChunkIndex | None] = {}
        cascades = self.cascades if self.cascades else None  # falsy: no cascading foreign keys
        for ch in changes:
            tid = ch.route.table_id
            chunks = touched.setdefault(tid, set())  # a cascade's child may be in `touched` already
            if tid not in indexes:
                indexes[tid] = self.index(tid)
            idx = indexes[tid]
            if ch.before is not None:
                chunks.add(idx.chunk_of(ch.before) if idx is not None else None)
            if ch.after is not None:
                chunks.add(idx.chunk_of(ch.after) if idx is not None else None)
            if cascades is not None and ch.kind != "insert" and cascades.cascading(ch):
                for child in self.children(tid):
                    touched.setdefault(child, set()).add(None)
        for tid, chunks in touched.items():
            for chunk in chunks:
                self._mark(tid, chunk, pos)
        self.save()

    def note_tables(self, table_ids: list[str], at: BinlogPosition) -> None:
        """DDL: the whole table is dirty from here."""
        pos = list(at.key())
        for tid in table_ids:
            self._mark(tid, None, pos)
        self.save()

    def children(self, table_id: str) -> list[str]:
        """Synced tables that foreign-key cascades from this table can change, transitively."""
        c = self.cascades
        out: list[str] = []
        todo = [c.table_of.get(table_id)]
        seen = set()
        while todo:
            parent = todo.pop()
            if parent is None or parent in seen:
                continue
            seen.add(parent)
            for fk in c.referencing.get(parent, []):
                route = c.routes(fk.child)
                if route is not None:
                    out.append(route.table_id)
                    todo.append(fk.child)
        return out

    def save(self) -> None:
        atomic_write_json(self.path, {"version": VERSION, "source": self.source, "plan": self.fingerprint,
                                      "tracked_from": list(self.tracked_from), "tables": self.tables,
                                      "written_at": time.time()})


class DirtyView:
    """What verify and cutover read: every source's marks (None: the source has no usable file)."""

    def __init__(self, workdir: WorkDir, plan: Plan):
        fp = plan.fingerprint()
        self.sources: dict[str, dict[str, Any] | None] = {}
        for sp in plan.sources:
            raw = read_json(workdir.sync_dirty(sp.name), default=None) or None
            ok = raw is not None and raw.get("version") == VERSION and raw.get("plan") == fp
            self.sources[sp.name] = raw if ok else None

    def tracked_from(self, source: str) -> PosKey | None:
        raw = self.sources.get(source)
        return tuple(raw["tracked_from"]) if raw else None  # type: ignore[return-value]

    def last_change(self, source: str, table_id: str, chunk: int | None) -> PosKey | None:
        """The latest mark touching the chunk (chunk None: any chunk of the table); None if none."""
        raw = self.sources.get(source)
        marks = ((raw or {}).get("tables") or {}).get(table_id) or {}
        if chunk is None:
            found = list(marks.values())
        else:
            found = [m for m in (marks.get(WHOLE), marks.get(str(chunk))) if m]
        return tuple(max(found)) if found else None  # type: ignore[return-value]

    def covers(self, source: str, table_id: str, chunk: int | None, valid_at: PosKey | None) -> bool:
        """Whether a clean check with the source at `valid_at` still holds: tracking began no
        later and no change to the chunk was marked after it."""
        start = self.tracked_from(source)
        if start is None or valid_at is None or tuple(valid_at) < start:
            return False
        last = self.last_change(source, table_id, chunk)
        return last is None or last <= tuple(valid_at)


def applied_position(workdir: WorkDir, source: str) -> BinlogPosition | None:
    """Where sync's checkpoint says the target is complete for this source (None: never ran)."""
    raw = read_json(workdir.sync_checkpoint(source), default=None)
    if not raw or not raw.get("position"):
        return None
    return BinlogPosition.model_validate(raw["position"])
