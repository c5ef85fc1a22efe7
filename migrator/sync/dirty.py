"""Which chunks, and which keys in them, sync changed, and when: what a cutover re-verifies.

Per source one append-only journal, WorkDir.sync_dirty(SRC) (JSON lines, fsync per append),
one line per applied batch that touched a synced table, appended BEFORE the batch is handed to
the target:

    {"at": [file_no, offset], "m": {table id: {chunk id | "*": [[key values], ...] | null}}}

`at` is the binlog position (BinlogPosition.key()) where the batch ends; each chunk it touched
lists the keys of the rows it changed (null: keys not listed, as for keys that are not integers);
"*" marks a whole table (DDL, keys this module cannot order like the databases, foreign key
cascades into a child table). A chunk's key is looked up by the plan's chunk bounds (bisect); an
update that changes the key marks the chunks (and keys) of both images. The first line is a head,
{"type": "head", "version", "source", "plan", "tracked_from", ...}: `tracked_from` is the position
sync started from when the journal was created (changes before it were not tracked); a compaction
rewrites the journal as one head holding the summary (every chunk's last mark, its last KEEP keys
with their positions, and its `floor`: the latest position of a change whose key is no longer
listed). Each head has a new generation id (`_gen`, first in the line): verify and cutover, which
read the journals on every pass, read only what was appended since their last pass unless the
generation changed (DirtyView).

Why a kill -9 can only over-report: the marks are durable before the target commits the batch,
and the checkpoint moves only after that commit, so a replayed batch marks its chunks again (a
torn last line belongs to a batch never handed to the target). A chunk checked clean with the
source at position V (verify/follow.py) is still clean while every mark of it is <= V and
V >= tracked_from; the rows changed since are exactly `keys_since(V)` when the chunk's floor is
<= V and no whole-table mark is after V. When in doubt (no journal, another plan, a key type that
cannot be ordered here, keys dropped) a chunk counts as dirty, and its keys as unknown.
"""

from __future__ import annotations

import re
import threading
import uuid
from bisect import bisect_left
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..plan.model import Plan, TablePlan
from ..positions import BinlogPosition
from ..state import Journal, read_json
from ..workdir import WorkDir
from .apply import RowChange

VERSION = 2
WHOLE = "*"
# key types whose order in Python is the databases' order (numbers); other keys mark whole tables
ORDERED = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year", "decimal", "numeric"}
# key types whose values are listed per chunk (they read back from both databases as Python ints)
LISTED = ORDERED - {"decimal", "numeric"}
KEEP = 256  # keys listed per chunk; beyond that the oldest half is dropped and the chunk's floor raised
COMPACT_LINES = 4000  # the journal is rewritten as its summary after this many batches

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
        self.listed = bool(self.key) and all(types.get(k) in LISTED for k in self.key)
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

    def listed_key(self, row: dict[str, Any]) -> list[int] | None:
        """The row's key as listed in the journal (integers), or None when it is not listed."""
        if not self.listed:
            return None
        key = [row.get(k) for k in self.key]
        return key if all(type(v) is int for v in key) else None


class Marks:
    """One source's dirty set in memory: replayed from the journal (readers) or kept (the writer)."""

    def __init__(self, tracked_from: PosKey):
        self.tracked_from = tracked_from
        self.tables: dict[str, dict[str, PosKey]] = {}  # table id -> chunk name -> last mark
        self.keys: dict[str, dict[str, dict[tuple, PosKey]]] = {}  # table id -> chunk -> key -> last mark
        self.floors: dict[str, dict[str, PosKey]] = {}  # table id -> chunk -> last change whose key is not listed

    @classmethod
    def from_head(cls, head: dict[str, Any]) -> Marks:
        m = cls(tuple(head["tracked_from"]))  # type: ignore[arg-type]
        for tid, chunks in (head.get("tables") or {}).items():
            m.tables[tid] = {c: tuple(p) for c, p in chunks.items()}  # type: ignore[misc]
        for tid, chunks in (head.get("floors") or {}).items():
            m.floors[tid] = {c: tuple(p) for c, p in chunks.items()}  # type: ignore[misc]
        for tid, chunks in (head.get("keys") or {}).items():
            m.keys[tid] = {c: {tuple(k): tuple(p) for k, p in pairs} for c, pairs in chunks.items()}  # type: ignore[misc]
        return m

    def head(self, source: str, fingerprint: str) -> dict[str, Any]:
        return {"_gen": uuid.uuid4().hex, "type": "head", "version": VERSION, "source": source, "plan": fingerprint,
                "tracked_from": list(self.tracked_from),
                "tables": {t: {c: list(p) for c, p in cs.items()} for t, cs in self.tables.items()},
                "floors": {t: {c: list(p) for c, p in cs.items()} for t, cs in self.floors.items()},
                "keys": {t: {c: [[list(k), list(p)] for k, p in ks.items()] for c, ks in cs.items()}
                         for t, cs in self.keys.items()}}

    def add(self, at: PosKey, touched: dict[str, dict[str, Any]]) -> None:
        """One batch's marks: table id -> chunk name -> key lists (None: keys not listed)."""
        for tid, chunks in touched.items():
            marks = self.tables.setdefault(tid, {})
            for name, keys in chunks.items():
                if marks.get(name, (0, 0)) < at:
                    marks[name] = at
                if name == WHOLE:
                    continue
                if keys is None:
                    self._raise_floor(tid, name, at)
                    continue
                listed = self.keys.setdefault(tid, {}).setdefault(name, {})
                for k in keys:
                    listed[tuple(k)] = at
                if len(listed) > KEEP:  # the oldest half goes; a check older than them sees the chunk dirty
                    by_age = sorted(listed.items(), key=lambda kv: kv[1])
                    dropped = by_age[:len(listed) - KEEP // 2]
                    for k, _ in dropped:
                        del listed[k]
                    self._raise_floor(tid, name, max(p for _, p in dropped))

    def _raise_floor(self, tid: str, name: str, at: PosKey) -> None:
        floors = self.floors.setdefault(tid, {})
        if floors.get(name, (0, 0)) < at:
            floors[name] = at

    def last_change(self, table_id: str, chunk: int | None) -> PosKey | None:
        marks = self.tables.get(table_id) or {}
        found = list(marks.values()) if chunk is None else [m for m in (marks.get(WHOLE), marks.get(str(chunk))) if m]
        return max(found) if found else None

    def keys_since(self, table_id: str, chunk: int, valid_at: PosKey) -> set[tuple] | None:
        """The keys of the chunk changed after `valid_at`, or None when they are not all known."""
        if valid_at < self.tracked_from:
            return None
        whole = (self.tables.get(table_id) or {}).get(WHOLE)
        floor = (self.floors.get(table_id) or {}).get(str(chunk))
        if (whole is not None and whole > valid_at) or (floor is not None and floor > valid_at):
            return None
        listed = (self.keys.get(table_id) or {}).get(str(chunk)) or {}
        return {k for k, p in listed.items() if p > valid_at}


def _marks_of(records: list[dict[str, Any]], fingerprint: str, marks: Marks | None = None) -> Marks | None:
    """`marks` with the journal records applied in order (None: no usable head yet, or another
    plan's or version's)."""
    for r in records:
        if r.get("type") == "head":
            ok = r.get("version") == VERSION and r.get("plan") == fingerprint and r.get("tracked_from")
            marks = Marks.from_head(r) if ok else None
        elif marks is not None and "at" in r:
            marks.add(tuple(r["at"]), r.get("m") or {})  # type: ignore[arg-type]
    return marks


def _replay(path: Path, fingerprint: str) -> tuple[Marks | None, int]:
    """The journal's marks (None: no journal, or another plan's or version's) and its line count."""
    records, _, _ = Journal(path).tail()
    return _marks_of(records, fingerprint), len(records)


@dataclass
class _Followed:
    """A journal as this process last read it: its first line's generation, how far, the marks."""

    generation: bytes  # '{"_gen": "<hex>"': a rewritten journal starts otherwise
    fingerprint: str
    offset: int
    marks: Marks | None


_GENERATION = re.compile(rb'\{"_gen": "[0-9a-f]{32}"')
_followed: dict[Path, _Followed] = {}
_followed_lock = threading.Lock()


def _follow(path: Path, fingerprint: str) -> Marks | None:
    """The journal's marks, reading only the lines appended since this process last read it when
    it was not rewritten since (same generation); else replayed from its start. The returned
    Marks may keep growing with later reads: marks only ever add dirtiness."""
    with _followed_lock:
        seen = _followed.get(path)
        if seen is not None and seen.fingerprint != fingerprint:
            seen = None
        records, end, first = Journal(path).tail(seen.offset if seen else 0, head=seen.generation if seen else b"")
        generation = _GENERATION.match(first)
        same = seen is not None and generation is not None and generation.group(0) == seen.generation
        marks = _marks_of(records, fingerprint, seen.marks if same else None)  # type: ignore[union-attr]
        if generation is not None:
            _followed[path] = _Followed(generation.group(0), fingerprint, end, marks)
        else:
            _followed.pop(path, None)  # no journal, or one written before generations: read it whole each time
        return marks


class DirtyChunks:
    """One source's dirty set, owned by its sync process (the only writer of the journal)."""

    def __init__(self, workdir: WorkDir, plan: Plan, source: str, start: BinlogPosition):
        self.path = workdir.sync_dirty(source)
        self.source = source
        self.fingerprint = plan.fingerprint()
        self.plans = {t.id: t for t in plan.tables if t.source == source}
        self._index: dict[str, ChunkIndex] = {}
        self.journal = Journal(self.path)
        marks, self.lines = _replay(self.path, self.fingerprint)
        if marks is None:  # no journal, or another plan's: only what is replayed from here on is known
            marks = Marks(start.key())
            self.journal.rewrite([marks.head(source, self.fingerprint)])
            self.lines = 1
        self.marks = marks
        self.cascades: Any = None  # cascade.Cascades of the stream: children it changes are marked too

    @property
    def tracked_from(self) -> PosKey:
        return self.marks.tracked_from

    def index(self, table_id: str) -> ChunkIndex | None:
        idx = self._index.get(table_id)
        if idx is None and table_id in self.plans:
            idx = self._index[table_id] = ChunkIndex(self.plans[table_id])
        return idx

    def note(self, changes: list[RowChange], at: BinlogPosition) -> None:
        """Mark the chunks and keys a batch touches (before the batch is applied), ending at `at`."""
        if not changes:
            return
        touched: dict[str, dict[str, Any]] = {}
        indexes: dict[str, ChunkIndex | None] = {}
        cascades = self.cascades if self.cascades else None  # falsy: no cascading foreign keys
        last_tid, fast = None, None
        for ch in changes:
            tid = ch.route.table_id
            chunks = touched.setdefault(tid, {})  # a cascade's child may be in `touched` already
            if tid is not last_tid:
                if tid not in indexes:
                    indexes[tid] = self.index(tid)
                idx = indexes[tid]
                last_tid = tid
                # one listed integer key column (the common key): chunk_of and listed_key inline below
                fast = (idx.key[0], idx.flat, idx.ids) if idx is not None and idx.flat is not None and idx.listed \
                    and len(idx.key) == 1 else None
            for row in (ch.before, ch.after):
                if row is None:
                    continue
                if fast is not None:
                    v = row.get(fast[0])
                    if type(v) is int:  # the same as chunk_of, then listed_key's [v]
                        name = str(fast[2][bisect_left(fast[1], v)])
                        listed = chunks.setdefault(name, [])
                        if listed is None:
                            continue
                        if len(listed) >= KEEP:
                            chunks[name] = None
                        else:
                            listed.append([v])
                        continue
                chunk = idx.chunk_of(row) if idx is not None else None
                if chunk is None:
                    chunks[WHOLE] = None
                    continue
                name = str(chunk)
                listed = chunks.setdefault(name, [])
                if listed is None:  # keys of this chunk not listed in this batch
                    continue
                key = idx.listed_key(row)  # type: ignore[union-attr]
                if key is None or len(listed) >= KEEP:  # a bulk change: the chunk is checked whole again
                    chunks[name] = None
                else:
                    listed.append(key)
            if cascades is not None and ch.kind != "insert" and cascades.cascading(ch):
                for child in self.children(tid):
                    touched.setdefault(child, {})[WHOLE] = None
        self._write(at.key(), touched)

    def note_tables(self, table_ids: list[str], at: BinlogPosition) -> None:
        """DDL: the whole table is dirty from here."""
        self._write(at.key(), {tid: {WHOLE: None} for tid in table_ids})

    def _write(self, at: PosKey, touched: dict[str, dict[str, Any]]) -> None:
        self.marks.add(at, touched)
        if self.lines >= COMPACT_LINES:  # the summary instead of the history: the file stays O(chunks * KEEP)
            self.journal.rewrite([self.marks.head(self.source, self.fingerprint)])
            self.lines = 1
        else:
            self.journal.append({"at": list(at), "m": touched})
            self.lines += 1

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

    def close(self) -> None:
        self.journal.close()


class DirtyView:
    """What verify and cutover read: every source's marks (None: the source has no usable journal)."""

    def __init__(self, workdir: WorkDir, plan: Plan):
        fp = plan.fingerprint()
        self.sources: dict[str, Marks | None] = {sp.name: _follow(workdir.sync_dirty(sp.name), fp)
                                                 for sp in plan.sources}

    def tracked_from(self, source: str) -> PosKey | None:
        m = self.sources.get(source)
        return m.tracked_from if m else None

    def last_change(self, source: str, table_id: str, chunk: int | None) -> PosKey | None:
        """The latest mark touching the chunk (chunk None: any chunk of the table); None if none."""
        m = self.sources.get(source)
        return m.last_change(table_id, chunk) if m else None

    def covers(self, source: str, table_id: str, chunk: int | None, valid_at: PosKey | None) -> bool:
        """Whether a clean check with the source at `valid_at` still holds: tracking began no
        later and no change to the chunk was marked after it."""
        start = self.tracked_from(source)
        if start is None or valid_at is None or tuple(valid_at) < start:
            return False
        last = self.last_change(source, table_id, chunk)
        return last is None or last <= tuple(valid_at)

    def keys_since(self, source: str, table_id: str, chunk: int, valid_at: PosKey | None) -> set[tuple] | None:
        """The keys of the chunk sync changed after `valid_at` (None: not all of them are known)."""
        m = self.sources.get(source)
        if m is None or valid_at is None:
            return None
        return m.keys_since(table_id, chunk, tuple(valid_at))  # type: ignore[arg-type]


def applied_position(workdir: WorkDir, source: str) -> BinlogPosition | None:
    """Where sync's checkpoint says the target is complete for this source (None: never ran)."""
    raw = read_json(workdir.sync_checkpoint(source), default=None)
    if not raw or not raw.get("position"):
        return None
    return BinlogPosition.model_validate(raw["position"])
