"""The last check of every chunk (WorkDir.verify_chunks, JSON lines): kept by `verify` and
`verify --follow`, read by cutover and `migrator status --tables`. See follow.py for what a
record proves and when."""

from __future__ import annotations

import time
from typing import Any

from ..plan.model import Plan
from ..state import Journal
from ..sync.dirty import DirtyView
from ..workdir import WorkDir
from .tablerun import TableRun, run_chunks

PosKey = tuple[int, int]


class ChunkStates:
    """The last check of every chunk (WorkDir.verify_chunks), for one plan."""

    def __init__(self, workdir: WorkDir, fingerprint: str, *, writable: bool = True):
        self.journal = Journal(workdir.verify_chunks)
        self.fingerprint = fingerprint
        self.writable = writable
        self.last: dict[tuple[str, int], dict[str, Any]] = {}
        self.lines = 0
        ok = False
        for r in self.journal.replay():
            self.lines += 1
            if r.get("type") == "plan":
                ok = r.get("fingerprint") == fingerprint
                self.last.clear()
            elif ok and "u" in r:
                self.last[(r["u"], r["c"])] = r
        if writable and not ok:
            self.journal.rewrite([{"type": "plan", "fingerprint": fingerprint}])
            self.lines = 1

    def add(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            prev = self.last.get((r["u"], r["c"]))
            if r["same"]:
                r["clean_at"], r["clean_valid"] = r["at"], r["valid"]
            elif prev is not None and prev.get("clean_at"):
                r["clean_at"], r["clean_valid"] = prev["clean_at"], prev.get("clean_valid")
            self.last[(r["u"], r["c"])] = r
        if not self.writable or not records:
            return
        self.journal.append_many(records)
        self.lines += len(records)
        if self.lines > 4 * len(self.last) + 1000:  # compaction keeps the file O(chunks)
            self.journal.rewrite([{"type": "plan", "fingerprint": self.fingerprint}, *self.last.values()])
            self.lines = len(self.last) + 1

    def close(self) -> None:
        self.journal.close()


def _key(v: Any) -> PosKey | None:
    return tuple(v) if v else None  # type: ignore[return-value]


def record_verify_run(workdir: WorkDir, fingerprint: str, runs: list[TableRun], groups: list[Any],
                      valid: dict[str, list[int] | None], read: dict[str, list[int]],
                      resumed: set[tuple[str, int]]) -> int:
    """A plain `migrator verify` pass as chunk states (valid at the positions read before it, read
    up to the heads after it), so a cutover after it re-verifies only what changed since. Chunks
    of failed tables and chunks resumed from an interrupted run (checked at unknown positions) are
    not recorded. Returns the number recorded."""
    now = time.time()
    records: list[dict[str, Any]] = []

    def add(name: str, chunk_id: int, same: bool, sources: set[str]) -> None:
        if (name, chunk_id) in resumed:
            return
        records.append({"u": name, "c": chunk_id, "same": same, "at": now,
                        "valid": {s: valid.get(s) for s in sources}, "read": {s: read[s] for s in sources},
                        "rows": None, "secs": None})

    for run in runs:
        if run.group is not None or not run.reported or run.sside is None or run.result.status == "error":
            continue
        differing = {c.id for c, _, _ in run.differing}
        for chunk in run_chunks(run):
            add(run.tp.id, chunk.id, chunk.id not in differing and not run.shape_diffs, {run.tp.source})
    for group in groups:
        if any(r.result.status == "error" for r in group.runs):
            continue
        differing = {c.id for c, _, _ in group.differing}
        for chunk in group.ranges:
            if chunk.id in group.expected and not group.expected[chunk.id]:
                add(group.journal_key, chunk.id, chunk.id not in differing, {r.tp.source for r in group.runs})
    states = ChunkStates(workdir, fingerprint)
    try:
        states.add(records)
    finally:
        states.close()
    return len(records)


def chunk_state_counts(plan: Plan, workdir: WorkDir) -> dict[str, dict[str, int]]:
    """Per table (a merge without a source column: per `merged:DB.TABLE`) how many chunks are
    clean / dirty / differs / never checked, from the work directory alone (no database): the last
    check of each chunk (verify/chunks.jsonl) against sync's dirty marks since. A chunk whose check
    differed is "differs" here whether or not rows were in flight then. Chunks of a table verified
    as one range are counted as one."""
    from .tablerun import plan_chunks

    states = ChunkStates(workdir, plan.fingerprint(), writable=False)
    states.close()
    view = DirtyView(workdir, plan)
    tables = plan.active_tables()
    members: dict[str, list[Any]] = {}
    for tp in tables:
        members.setdefault(tp.target_name, []).append(tp)

    def state(rec: dict[str, Any] | None, tps: list[Any], chunk: int | None) -> str:
        if rec is None:
            return "never"
        covered = all(tp.mode != "copy+sync" or view.covers(tp.source, tp.id, chunk,
                                                             _key((rec.get("valid") or {}).get(tp.source)))
                      for tp in tps)
        return ("clean" if covered else "dirty") if rec["same"] else "differs"

    out: dict[str, dict[str, int]] = {}
    for tp in tables:
        counts = out.setdefault(tp.id, {})
        recs = [(c.id, states.last.get((tp.id, c.id))) for c in plan_chunks(tp)]
        if len(recs) > 1 and all(r is None for _, r in recs) and (tp.id, 0) in states.last:
            recs = [(0, states.last[(tp.id, 0)])]  # verified as one range (a key collation note)
        for cid, rec in recs:
            st = state(rec, [tp], cid if len(recs) > 1 else None)
            counts[st] = counts.get(st, 0) + 1
    for (name, cid), rec in states.last.items():
        if name.startswith("merged:"):
            tps = members.get(name[len("merged:"):], [])
            counts = out.setdefault(name, {})
            st = state(rec, tps, None)
            counts[st] = counts.get(st, 0) + 1
    return out
