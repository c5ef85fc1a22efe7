"""One view of a migration: copy, sync, verify and cutover state of every source.

Read from the work directory alone (no database), unless `live` asks sync for the sources'
current binlog positions to compute lag.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .copy.state import CopyState
from .plan.model import Plan
from .state import read_json
from .sync.runner import sync_status
from .workdir import WorkDir


def migration_status(plan: Plan, wd: WorkDir, *, live: bool = False) -> dict[str, Any]:
    copy = CopyState.load(wd, plan)
    progress = copy.progress()
    sync = {s["source"]: s for s in sync_status(wd, plan, live=live)}
    verify = read_json(wd.verify_report, default=None)
    cutover = read_json(wd.cutover_report, default=None)
    verify_by_source: dict[str, dict[str, int]] = {}
    if verify:
        for t in verify.get("tables", []):
            src = t["table"].split("/", 1)[0]
            counts = verify_by_source.setdefault(src, {"identical": 0, "different": 0, "error": 0})
            counts[t["status"]] = counts.get(t["status"], 0) + 1
    sources = []
    for sp in plan.sources:
        mine = [p for p in progress if p.source == sp.name]
        s = sync.get(sp.name, {})
        sources.append({
            "source": sp.name,
            "copy": {
                "tables_complete": sum(p.complete for p in mine), "tables": len(mine),
                "rows": sum(p.rows for p in mine), "failed": [p.table_id for p in mine if p.error],
                "start": _pos(copy.start_position(sp.name)), "end": _pos(copy.end_position(sp.name)),
            },
            "sync": {k: s.get(k) for k in ("state", "position", "lag_seconds", "lag_transactions", "rows", "runs_on")},
            "verify": verify_by_source.get(sp.name),
            "cutover": (cutover.get("sources", {}).get(sp.name) if cutover else None),
        })
    return {
        "workdir": str(wd.root),
        "sources": sources,
        "tables": [{**asdict(p), "complete": p.complete} for p in progress],
        "verify": None if not verify else {
            "identical": verify.get("identical"), "finished_at": verify.get("finished_at"),
            "differences": sum(t.get("differences", 0) for t in verify.get("tables", [])),
        },
        "cutover": None if not cutover else {
            k: cutover.get(k) for k in ("ok", "read_only_at", "finished_at", "write_downtime_seconds",
                                        "rolled_back_at", "next_step", "error")
        },
    }


def _pos(p: Any) -> str | None:
    return f"{p.file}:{p.pos}" if p else None
