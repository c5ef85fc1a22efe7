"""Continuous verify: chunk checksums while sync runs, each result kept with the positions it is
valid for, so a cutover re-verifies only the chunks changed since (dirty) or never found clean.

A check of one chunk (a "unit": a table's chunk, or a shared range of a merge without a source
column) reads, in this order: the source's binlog head B, the source checksum, the head again
(R), sync's applied position P (its checkpoint), then the target checksum. The result is valid
at V = min(B, P) per source:
  - equal checksums: the chunk stays clean while sync marks no change of it after V
    (sync/dirty.py); a change after V is applied by a batch ending after V, so it marks the chunk;
  - different checksums with rows in flight: re-checked once sync has passed R; a difference
    that remains while no change of the chunk was marked after V is confirmed (not in flight).
A chunk of one table whose checksums differ is read again row by row (key -> row hash on both
sides, in the same order of reads): its record then lists the differing keys (`diff`, up to
DIFF_KEEP). With sync's dirty keys (sync/dirty.py) that lets cutover re-verify such a chunk by
key inside its read-only window (`key_check`): the rows outside `diff` were equal at V, and the
rows sync did not change after V are still what they were at V on both sides, so comparing the
keys in `diff` plus the keys changed after V proves the whole chunk.
Results are appended to WorkDir.verify_chunks (JSON lines, fsync per batch, compacted); the last
record of a chunk wins, and carries the time and positions the chunk was last found clean.
A kill -9 loses at most unwritten results: those chunks are simply checked again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..db import query
from ..endpoint import Endpoint
from ..engine.locks import hold
from ..engine.pool import TARGET, Pool
from ..engine.scheduler import ChunkScheduler
from ..errors import MigratorError, StateError
from ..executor import LocalExecutor
from ..plan.model import Chunk, Plan
from ..progress import Progress, throttled_to
from ..state import read_json
from ..sync.dirty import DirtyView, applied_position
from ..throttle import Throttle, ThrottleOptions
from ..workdir import WorkDir
from .checksum import TableSide, chunk_checksum, decode_bound, row_hashes, rows_by_key
from .compare import select_tables
from .prepare import plan_merges, prepare
from .chunkstates import ChunkStates, _key
from .tablerun import TableRun, run_chunks

log = logging.getLogger(__name__)

PosKey = tuple[int, int]
T = TypeVar("T")
Checked = tuple[list[tuple["Unit", dict[str, Any]]], list[str]]  # (unit, record) of each check, errors by chunk
DIFF_KEEP = 256  # differing keys kept with a check; more: the chunk is checked whole again


@dataclass
class Unit:
    """One chunk as verify compares it: source reads (run, chunk) summed, one target read."""

    name: str  # table id, or "merged:db.table"
    chunk: Chunk
    readers: list[TableRun]
    tside: TableSide
    whole_table: bool = False  # dirty marks of any chunk of the readers' tables count (one range, merges)
    always: bool = False  # not synced (copy-only): sync marks nothing, so cutover always checks it

    @property
    def key(self) -> tuple[str, int]:
        return (self.name, self.chunk.id)

    @property
    def sources(self) -> list[str]:
        return sorted({r.tp.source for r in self.readers})

    def label(self) -> str:
        return f"{self.name} chunk {self.chunk.id}"


def build_units(runs: list[TableRun], groups: list[Any]) -> tuple[list[Unit], list[str]]:
    """Every unit of the prepared runs, and the errors of tables that could not be prepared."""
    units: list[Unit] = []
    errors: list[str] = []
    for run in runs:
        if run.sside is None or run.tside is None:
            if run.reported and run.result.error:
                errors.append(run.result.error)
            continue
        if run.group is not None or not run.reported:
            continue
        always = run.tp.mode != "copy+sync"
        for chunk in run_chunks(run):
            units.append(Unit(run.tp.id, chunk, [run], run.tside, whole_table=run.one_range, always=always))
    for group in groups:
        reads = [(r, {c.id for c in r.ranges}) for r in group.runs]
        for chunk in group.ranges:
            if chunk.id not in group.expected:
                continue
            readers = [r for r, ids in reads if chunk.id in ids]
            carrier = next(r for r in readers if chunk.id in r.carries)
            units.append(Unit(group.journal_key, chunk, readers, carrier.tside, whole_table=True,
                              always=any(r.tp.mode != "copy+sync" for r in readers)))
    return units, errors


def head_key(conn) -> PosKey:
    """The source's binlog end now, as BinlogPosition.key()."""
    rows = query(conn, "SHOW MASTER STATUS")
    if not rows:
        raise StateError("binary logging is off on a source (SHOW MASTER STATUS is empty)")
    return (int(str(rows[0][0]).rsplit(".", 1)[-1]), int(rows[0][1]))


def source_part(unit: Unit, pools: Pool) -> tuple[dict[str, PosKey], dict[str, PosKey], int, int]:
    """The unit's source checksum(s), each between two reads of that source's binlog head:
    (head before, head after, rows, hash sum)."""
    lo, hi = decode_bound(unit.chunk.lower), decode_bound(unit.chunk.upper)
    before_all: dict[str, PosKey] = {}
    after_all: dict[str, PosKey] = {}
    rows = total = 0
    for run in unit.readers:
        side = run.sside
        assert side is not None

        def on_source(conn, side: TableSide = side) -> tuple[PosKey, tuple[int, int], PosKey]:
            before = head_key(conn)
            sums = chunk_checksum(conn, side, lo, hi)
            return before, sums, head_key(conn)

        before, (n, s), after = pools.run(run.tp.source, on_source, what="checksum")
        src = run.tp.source
        before_all[src] = min(before_all.get(src, before), before)
        after_all[src] = max(after_all.get(src, after), after)
        rows, total = rows + n, total + s
    return before_all, after_all, rows, total


def target_part(unit: Unit, pools: Pool) -> tuple[int, int]:
    lo, hi = decode_bound(unit.chunk.lower), decode_bound(unit.chunk.upper)
    return tuple(pools.run(TARGET, lambda c: chunk_checksum(c, unit.tside, lo, hi), what="checksum"))  # type: ignore[return-value]


def unit_record(unit: Unit, src: tuple[dict[str, PosKey], dict[str, PosKey], int, int],
                applied: dict[str, PosKey | None], target: tuple[int, int], seconds: float | None) -> dict[str, Any]:
    before, after, rows, total = src
    valid = {s: list(min(b, applied[s])) if applied.get(s) is not None else None  # type: ignore[type-var]
             for s, b in before.items()}
    return {"u": unit.name, "c": unit.chunk.id, "same": (rows, total) == tuple(target), "at": time.time(),
            "valid": valid, "read": {k: list(v) for k, v in after.items()}, "rows": [rows, target[0]],
            "secs": round(seconds, 4) if seconds is not None else None}


def _applied(workdir: WorkDir, sources: list[str]) -> dict[str, PosKey | None]:
    out: dict[str, PosKey | None] = {}
    for s in sources:
        pos = applied_position(workdir, s)
        out[s] = pos.key() if pos is not None else None
    return out


def check_unit(unit: Unit, pools: Pool, workdir: WorkDir) -> dict[str, Any]:
    """Checksum one unit on its source(s), then read sync's applied position, then checksum the
    target: the record to keep (see module doc). A keyed unit that differs is read again row by
    row (row_check): its record names the differing keys."""
    started = time.monotonic()
    src = source_part(unit, pools)
    applied = _applied(workdir, unit.sources)  # read before the target: what it holds at least
    rec = unit_record(unit, src, applied, target_part(unit, pools), time.monotonic() - started)
    if not rec["same"] and keyed(unit):
        return row_check(unit, pools, workdir)
    return rec


def keyed(unit: Unit) -> bool:
    """One table's chunk with a key: it can be compared by key (merged ranges and copy-only tables cannot)."""
    return len(unit.readers) == 1 and not unit.whole_table and not unit.always and bool(unit.readers[0].tp.key)


def _listable(keys: list[tuple]) -> bool:
    return all(type(v) is int for k in keys for v in k)


def row_check(unit: Unit, pools: Pool, workdir: WorkDir) -> dict[str, Any]:
    """The unit's rows by key on the source (between two reads of its binlog head), sync's applied
    position, then the target's rows: a record whose `diff` lists the keys that differ."""
    started = time.monotonic()
    run = unit.readers[0]
    side, source = run.sside, run.tp.source
    assert side is not None
    lo, hi = decode_bound(unit.chunk.lower), decode_bound(unit.chunk.upper)

    def on_source(conn) -> tuple[PosKey, dict[tuple, int], PosKey]:
        before = head_key(conn)
        hashes = row_hashes(conn, side, lo, hi)
        return before, hashes, head_key(conn)

    before, src, after = pools.run(source, on_source, what="checksum")
    applied = _applied(workdir, [source])
    tgt = pools.run(TARGET, lambda c: row_hashes(c, unit.tside, lo, hi), what="checksum")
    diff = sorted(k for k in src.keys() | tgt.keys() if src.get(k) != tgt.get(k))
    at = applied.get(source)
    rec = {"u": unit.name, "c": unit.chunk.id, "same": not diff, "at": time.time(),
           "valid": {source: list(min(before, at)) if at is not None else None}, "read": {source: list(after)},
           "rows": [len(src), len(tgt)], "secs": round(time.monotonic() - started, 4)}
    if diff and len(diff) <= DIFF_KEEP and _listable(diff):
        rec["diff"] = [list(k) for k in diff]
    return rec


def window_keys(unit: Unit, rec: dict[str, Any] | None, view: DirtyView) -> set[tuple] | None:
    """The keys whose rows prove the unit identical now, given its last check `rec` and sync's
    dirty keys: the keys that differed in that check and those sync changed after it. None: the
    unit must be checked whole (no such check, not keyed, keys not all known)."""
    if rec is None or not keyed(unit):
        return None
    diff: list[Any] = []
    if not rec["same"]:
        if rec.get("diff") is None:
            return None
        diff = rec["diff"]
    source = unit.readers[0].tp.source
    since = view.keys_since(source, unit.readers[0].tp.id, unit.chunk.id, _key((rec.get("valid") or {}).get(source)))
    if since is None:
        return None
    return since | {tuple(k) for k in diff}


def key_check(units: list[tuple[Unit, set[tuple]]], pools: Pool, valid: dict[str, PosKey | None],
              live: bool = False) -> list[dict[str, Any]]:
    """Compare exactly these keys of one table's units on both sides (one lookup per side for the
    table); a record per unit. Static (cutover's window: sources read-only, sync drained): valid at
    `valid`. live (sources writable): `valid` holds sync's applied position read BEFORE the dirty
    keys were (marks are durable before a batch applies, so every change up to it is among the
    keys); the source is read between two reads of its binlog head B and R, the target after, and
    the record is valid at min(B, that position): a row outside the keys either is unchanged since
    the unit's previous check, which proved it equal, or changes after that position (and then is
    among the keys the next time)."""
    run = units[0][0].readers[0]
    source, side = run.tp.source, run.sside
    keys = sorted(set().union(*(ks for _, ks in units)))
    at, read = valid.get(source), valid.get(source)
    if not keys:
        src: dict[tuple, int] = {}
        tgt: dict[tuple, int] = {}
    elif live:
        def on_source(conn) -> tuple[PosKey, dict[tuple, int], PosKey]:
            before = head_key(conn)
            hashes = rows_by_key(conn, side, keys)
            return before, hashes, head_key(conn)

        before, src, read = pools.run(source, on_source, what="checksum")
        at = min(before, at) if at is not None else None
        tgt = pools.run(TARGET, lambda c: rows_by_key(c, units[0][0].tside, keys), what="checksum")
    else:
        src = pools.run(source, lambda c: rows_by_key(c, side, keys), what="checksum")
        tgt = pools.run(TARGET, lambda c: rows_by_key(c, units[0][0].tside, keys), what="checksum")
    out = []
    for unit, ks in units:
        diff = sorted(k for k in ks if src.get(k) != tgt.get(k))
        rec = {"u": unit.name, "c": unit.chunk.id, "same": not diff, "at": time.time(),
               "valid": {source: list(at) if at else None}, "read": {source: list(read) if read else None},
               "rows": None, "secs": None, "by_keys": len(ks)}
        if diff and len(diff) <= DIFF_KEEP and _listable(diff):
            rec["diff"] = [list(k) for k in diff]
        out.append(rec)
    return out


def classify(unit: Unit, rec: dict[str, Any] | None, view: DirtyView,
             applied: dict[str, PosKey | None]) -> str:
    """never | clean | dirty | waiting (differed in flight, sync not yet past the read) | differs."""
    if rec is None:
        return "never"
    # copy-only tables: sync marks nothing; their clean check stands for follow, cutover checks them always
    covered = unit.always or all(
        view.covers(r.tp.source, r.tp.id, None if unit.whole_table else unit.chunk.id,
                    _key((rec.get("valid") or {}).get(r.tp.source)))
        for r in unit.readers)
    if rec["same"]:
        return "clean" if covered else "dirty"
    passed = all(applied.get(s) is not None and applied[s] >= tuple(p)  # type: ignore[operator]
                 for s, p in (rec.get("read") or {}).items())
    if not passed:
        return "waiting"
    return "differs" if covered else "dirty"


@dataclass
class PassResult:
    counts: dict[str, int] = field(default_factory=dict)  # state after the pass -> chunks
    checked: int = 0
    differing: list[str] = field(default_factory=list)  # confirmed differences (labels)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Verifier:
    """Prepared units of a plan, their states, and a pool to check them with. Checks run through
    the engine's chunk scheduler: at most `parallel` at once, `per_source` on one source (default:
    no bound of its own), on local threads only: a check reads sync's applied position from the
    work directory between its source and target reads, which a Dask worker cannot."""

    def __init__(self, plan: Plan, workdir: WorkDir, *, tables: str | None = None, parallel: int = 4,
                 per_source: int | None = None, endpoints: dict[str, Endpoint] | None = None,
                 max_source_threads_running: int = 25, record: bool = True, progress: Progress | None = None,
                 max_replica_lag: float = 0.0, replicas: dict[str, list[Endpoint]] | None = None):
        self.plan, self.wd, self.parallel = plan, workdir, max(1, parallel)
        self.per_source = max(1, per_source) if per_source else self.parallel
        given = endpoints or {}
        sources = {s.name: given.get(s.name) or s.endpoint() for s in plan.sources}
        target = given.get("target") or plan.target.endpoint()
        self.throttle = Throttle(ThrottleOptions(max_threads_running=max_source_threads_running,
                                                 max_replica_lag=max_replica_lag, replicas=replicas,
                                                 workdir=workdir.root),  # WORKDIR/pause, limits.yaml
                                 notify=None if progress is None else throttled_to(progress, "verify"))
        self.pools = Pool(sources, target, target_limit=self.parallel, throttle=self.throttle, fail_fast=False)
        try:
            tgt = self.pools.dedicated(TARGET)
            runs, groups = prepare(plan, select_tables(plan, tables), tgt, self.pools)
            plan_merges(groups, self.pools)
            self.units, self.errors = build_units(runs, groups)
            self.states = ChunkStates(workdir, plan.fingerprint(), writable=record)
        except BaseException:
            self.pools.close_all()
            raise
        self._executor = LocalExecutor(self.parallel, "follow")
        self._closing = False

    def close(self) -> None:
        self._closing = True  # checks not begun are dropped; those running end
        self._executor.close()
        self.states.close()
        self.pools.close_all()
        self.throttle.close()

    def _schedule(self, tasks: list[T], source_of: Callable[[T], str],
                  fn: Callable[[T], Any]) -> Iterator[tuple[T, Any]]:
        """fn(task) for every task, begun now through the engine's scheduler: iterate for
        (task, future) as each ends."""
        scheduler = ChunkScheduler(tasks, source_of, parallel=self.parallel, per_source=self.per_source,
                                   executor=self._executor)
        ends = scheduler.start(lambda task: self._executor.submit(fn, task), stop=lambda: self._closing)
        return ((slot.task, fut) for slot, fut in ends)

    def applied(self) -> dict[str, PosKey | None]:
        out: dict[str, PosKey | None] = {}
        for sp in self.plan.sources:
            pos = applied_position(self.wd, sp.name)
            out[sp.name] = pos.key() if pos is not None else None
        return out

    def states_now(self, view: DirtyView | None = None) -> list[tuple[Unit, str]]:
        view, applied = view or DirtyView(self.wd, self.plan), self.applied()
        return [(u, classify(u, self.states.last.get(u.key), view, applied)) for u in self.units]

    def check_keys(self, units: list[tuple[Unit, set[tuple]]], valid: dict[str, PosKey | None],
                   live: bool = False) -> Callable[[], Checked]:
        """Start key_check of these units, one job per table; call the result to wait: (done, errors)."""
        by_table: dict[int, list[tuple[Unit, set[tuple]]]] = {}
        for unit, ks in units:
            by_table.setdefault(id(unit.readers[0]), []).append((unit, ks))
        ends = self._schedule(list(enumerate(by_table.values())), lambda job: job[1][0][0].readers[0].tp.source,
                              lambda job: key_check(job[1], self.pools, valid, live))

        def wait() -> Checked:
            done: list[tuple[int, Unit, dict[str, Any]]] = []
            errors: list[tuple[int, str]] = []
            for (i, group), fut in ends:
                try:
                    recs = fut.result()
                except MigratorError as exc:
                    errors += [(i, f"{u.label()}: {exc}") for u, _ in group]
                    continue
                done += [(i, u, r) for (u, _), r in zip(group, recs)]
            self.states.add([r for _, _, r in done])
            return _in_order(done, errors)

        return wait

    def check(self, units: list[Unit], static: bool = False) -> Checked:
        """Check units in parallel; results recorded as they come (every 64), errors by chunk.
        static: the sources are read-only and sync drained (cutover's window): nothing is in
        flight, so each unit's source and target checksums run at the same time."""
        return self.start(units, static)()

    def start(self, units: list[Unit], static: bool = False) -> Callable[[], Checked]:
        """`check` begun: the checks run meanwhile; call the result to wait for them."""
        if static:  # a task per side; the target's under its own name in the scheduler (the pool bounds it)
            applied = self.applied()
            halves = [(i, u, side) for i, u in enumerate(units) for side in ("source", "target")]
            ends = self._schedule(halves, lambda h: TARGET if h[2] == "target" else h[1].sources[0],
                                  lambda h: (source_part if h[2] == "source" else target_part)(h[1], self.pools))
        else:
            ends = self._schedule([(i, u, "") for i, u in enumerate(units)], lambda t: t[1].sources[0],
                                  lambda t: check_unit(t[1], self.pools, self.wd))

        def wait() -> Checked:
            done: list[tuple[int, Unit, dict[str, Any]]] = []
            errors: list[tuple[int, str]] = []
            pending: list[dict[str, Any]] = []
            halves: dict[int, dict[str, Any]] = {}
            for (i, unit, side), fut in ends:
                try:
                    if static:
                        got = halves.setdefault(i, {})
                        got[side] = fut
                        if len(got) < 2:
                            continue
                        rec = unit_record(unit, got["source"].result(), applied, got["target"].result(), None)
                    else:
                        rec = fut.result()
                except MigratorError as exc:
                    errors.append((i, f"{unit.label()}: {exc}"))
                    continue
                done.append((i, unit, rec))
                pending.append(rec)
                if len(pending) >= 64:
                    self.states.add(pending)
                    pending = []
            self.states.add(pending)
            return _in_order(done, errors)

        return wait

    def one_pass(self, refresh: float | None = None) -> PassResult:
        """Check every chunk that is not clean now (never checked, dirty, differing and re-checkable),
        and clean chunks last checked more than `refresh` seconds ago (a change made on the target
        behind sync's back marks nothing: only a new check finds it)."""
        started = time.monotonic()
        old = time.time() - refresh if refresh is not None else None
        todo = [u for u, st in self.states_now() if st in ("never", "dirty", "differs") or (
            st == "clean" and old is not None and self.states.last[u.key]["at"] <= old)]
        _, errors = self.check(todo)
        result = PassResult(checked=len(todo), errors=errors + self.errors)
        for unit, st in self.states_now():
            result.counts[st] = result.counts.get(st, 0) + 1
            if st == "differs":
                result.differing.append(unit.label())
        result.seconds = round(time.monotonic() - started, 3)
        return result


def _in_order(done: list[tuple[int, Unit, dict[str, Any]]], errors: list[tuple[int, str]]) -> Checked:
    """Results gathered as they ended, back in the order the units were given."""
    return ([(u, r) for _, u, r in sorted(done, key=lambda d: d[0])],
            [e for _, e in sorted(errors, key=lambda e: e[0])])


def ddl_applied(plan: Plan, workdir: WorkDir) -> int:
    """DDL statements sync applied so far (all sources): when it changes, table shapes are read again."""
    return sum(int((read_json(workdir.sync_checkpoint(sp.name), default={}) or {}).get("ddl_applied", 0))
               for sp in plan.sources)


def follow(plan: Plan, workdir: WorkDir, *, tables: str | None = None, parallel: int = 4,
           per_source: int | None = None, interval: float = 2.0,
           passes: int | None = None, duration: float | None = None, refresh: float | None = 600.0, stop: Callable[[], bool] = lambda: False,
           on_pass: Callable[[int, PassResult], None] = lambda n, r: None,
           max_source_threads_running: int = 25, max_replica_lag: float = 0.0,
           replicas: dict[str, list[Endpoint]] | None = None) -> PassResult:
    """`migrator verify PLAN --follow`: passes until stopped, `passes` done or `duration` spent;
    clean chunks are checked again after `refresh` seconds (None: never); at most `parallel` chunks
    at once, `per_source` on one source (None: no bound of its own). Returns the last pass."""
    lock = hold(workdir.verify_lock, busy=lambda _holder: StateError(
        f"another `migrator verify` is running on work directory {str(workdir.root)!r}"))
    def open_verifier() -> Verifier:
        return Verifier(plan, workdir, tables=tables, parallel=parallel, per_source=per_source,
                        max_source_threads_running=max_source_threads_running, max_replica_lag=max_replica_lag,
                        replicas=replicas)

    verifier = open_verifier()
    shapes_at = ddl_applied(plan, workdir)
    started = time.monotonic()
    last = PassResult()
    try:
        n = 0
        while not stop():
            n += 1
            if ddl_applied(plan, workdir) != shapes_at:  # sync replayed DDL: compare the tables as they are now
                shapes_at = ddl_applied(plan, workdir)
                verifier.close()
                verifier = open_verifier()
            last = verifier.one_pass(refresh)
            on_pass(n, last)
            if passes is not None and n >= passes:
                break
            if duration is not None and time.monotonic() - started >= duration:
                break
            end = time.monotonic() + interval
            while time.monotonic() < end and not stop():
                time.sleep(min(0.2, interval))
    finally:
        verifier.close()
        os.close(lock)
    return last


def describe_pass(n: int, r: PassResult) -> str:
    order = ("clean", "dirty", "never", "waiting", "differs")
    parts = ", ".join(f"{r.counts[k]} {k}" for k in order if r.counts.get(k))
    text = f"pass {n}: checked {r.checked} chunk(s) in {r.seconds:.1f}s; now {parts or 'no chunks'}"
    if r.differing:
        text += "; DIFFERING (sync past the read, no change since): " + ", ".join(r.differing[:10])
    for e in r.errors[:5]:
        text += f"\n  error: {e}"
    return text


def positions_now(pools: Pool, workdir: WorkDir, sources: list[str]) -> dict[str, list[int] | None]:
    """Per source min(binlog head, sync's applied position), read now: a position every chunk
    checksummed after this moment is valid at (both only grow). None: sync never ran there."""
    out: dict[str, list[int] | None] = {}
    for src in sources:
        head = pools.run(src, head_key, what="checksum", throttled=False)
        pools.release(src)  # a fleet's sources are not all held open until their chunks run
        applied = applied_position(workdir, src)
        out[src] = list(min(head, applied.key())) if applied is not None else None
    return out
