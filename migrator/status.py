"""One view of a migration: copy, sync, verify and cutover state of every source.

Read from the work directory alone (no database), unless `live` asks sync for the sources'
current binlog positions to compute lag.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from .copy.state import CopyState
from .cutover_report import CutoverReport
from .plan.model import Plan
from .state import read_json
from .sync.runner import sync_status
from .verify.chunkstates import chunk_state_counts
from .verify.report import VerifyReport
from .workdir import WorkDir


def migration_status(plan: Plan, wd: WorkDir, *, live: bool = False) -> dict[str, Any]:
    copy = CopyState.load(wd, plan)
    progress = copy.progress()
    sync = {s.source: s.view() for s in sync_status(wd, plan, live=live)}
    verify = VerifyReport.load(wd.verify_report)
    cutover = CutoverReport.load(wd.cutover_report)
    verify_by_source: dict[str, dict[str, int]] = {}
    if verify:
        for t in verify.tables:
            src = t.table.split("/", 1)[0]
            counts = verify_by_source.setdefault(src, {"identical": 0, "different": 0, "error": 0})
            counts[t.status] += 1
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
            "cutover": (cutover.sources[sp.name].model_dump(mode="json", exclude_unset=True)
                        if cutover and sp.name in cutover.sources else None),
        })
    return {
        "workdir": str(wd.root),
        "sources": sources,
        "tables": [{**asdict(p), "complete": p.complete} for p in progress],
        "chunk_states": chunk_state_counts(plan, wd),  # verify's last check per chunk vs sync's changes since
        "verify": None if not verify else {
            "identical": verify.identical, "finished_at": verify.finished_at, "differences": verify.differences(),
        },
        "cutover": None if not cutover else cutover.model_dump(
            mode="json", include={"ok", "read_only_at", "finished_at", "write_downtime_seconds", "rolled_back_at",
                                  "next_step", "error"}),
    }


def _pos(p: Any) -> str | None:
    return f"{p.file}:{p.pos}" if p else None


STAGES = ("copy", "sync", "verify", "cutover")


def read_live(wd: WorkDir, now: float | None = None) -> dict[str, dict[str, Any]]:
    """The live files of the stages (WORKDIR/live/STAGE.json) with `running`: its process is alive
    and wrote the file within three intervals (a killed run leaves a stale file, not a running one)."""
    now = time.time() if now is None else now
    out = {}
    for stage in STAGES:
        doc = read_json(wd.live(stage), default=None)
        if not isinstance(doc, dict):
            continue
        fresh = now - float(doc.get("updated_at", 0)) <= max(3 * float(doc.get("interval", 10)), 30.0)
        doc["running"] = doc.get("state") == "running" and fresh and _alive(int(doc.get("pid", 0)))
        out[stage] = doc
    return out


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fleet_view(plan: Plan, wd: WorkDir, previous: dict[str, Any] | None = None, *, worst: int = 5) -> dict[str, Any]:
    """`migrator status --watch`: fleet totals, rates, ETA, lag percentiles, the worst sources,
    throttling reasons and errors. `previous` (the last view) gives rates when no stage reports one."""
    from .progress_lines import percentile

    now = time.time()
    doc = migration_status(plan, wd)
    live = read_live(wd, now)
    sources = doc["sources"]
    rows_done = sum(s["copy"]["rows"] for s in sources)
    rows_total = sum(max(p["estimated_rows"], p["rows"]) for p in doc["tables"])
    copy_live = live.get("copy") or {}
    if copy_live.get("running"):
        rate = float(copy_live.get("rows_per_second") or 0.0)
    elif previous and now > previous["at"]:
        rate = max(0.0, rows_done - previous["copy"]["rows"]) / (now - previous["at"])
    else:
        rate = 0.0
    eta = (rows_total - rows_done) / rate if rate > 0 and rows_total > rows_done else None
    lags = {s["source"]: s["sync"]["lag_seconds"] for s in sources if s["sync"].get("lag_seconds") is not None}
    sync_live = live.get("sync") or {}
    for name, info in (sync_live.get("sources") or {}).items() if sync_live.get("running") else ():
        if info.get("lag_seconds") is not None:
            lags[name] = info["lag_seconds"]
    values = list(lags.values())
    remaining = {s["source"]: sum(max(p["estimated_rows"], p["rows"]) - p["rows"] for p in doc["tables"]
                                  if p["source"] == s["source"]) for s in sources}
    ranked = sorted(sources, key=lambda s: (-(lags.get(s["source"]) or 0.0), -remaining[s["source"]],
                                            -len(s["copy"]["failed"])))
    worst_rows = [{"source": s["source"], "lag_seconds": lags.get(s["source"]), "copy_rows_left": remaining[s["source"]],
                   "copy": f"{s['copy']['tables_complete']}/{s['copy']['tables']}", "sync": s["sync"].get("state"),
                   "failed": len(s["copy"]["failed"])} for s in ranked[:worst]]
    throttled = {stage: d["throttled"] for stage, d in live.items() if d.get("running") and d.get("throttled")}
    if wd.pause_file.exists() and not any("paused" in r for r in throttled.values()):
        throttled["all"] = f"paused: {wd.pause_file} exists (remove it to go on)"
    errors = [f"{t['table_id']}: {t['error']}" for t in doc["tables"] if t.get("error")]
    for stage, d in live.items():
        if d.get("running"):
            errors += [f"{stage}: {w}" for w in (d.get("warnings") or []) if stage == "sync"]
    if doc["cutover"] and doc["cutover"].get("error"):
        errors.append(f"cutover: {doc['cutover']['error']}")
    verify = doc["verify"]
    return {
        "at": now, "workdir": doc["workdir"], "sources": len(sources),
        "running": sorted(stage for stage, d in live.items() if d.get("running")),
        "copy": {"rows": rows_done, "rows_total": rows_total,
                 "tables_complete": sum(1 for t in doc["tables"] if t["complete"]), "tables": len(doc["tables"]),
                 "rows_per_second": round(rate, 1), "eta_seconds": None if eta is None else round(eta, 1)},
        "sync": {"started": sum(1 for s in sources if s["sync"].get("state") not in (None, "not started")),
                 "rows_per_second": sync_live.get("rows_per_second") if sync_live.get("running") else None,
                 "lag_p50_seconds": percentile(values, 0.5), "lag_p95_seconds": percentile(values, 0.95),
                 "lag_max_seconds": max(values) if values else None},
        "verify": {**(verify or {}), **({"chunks_done": live["verify"].get("chunks_done"),
                                          "chunks_total": live["verify"].get("chunks_total")}
                                         if live.get("verify", {}).get("running") else {})} or None,
        "cutover": doc["cutover"],
        "worst": worst_rows, "throttled": throttled, "errors": errors[-20:],
        "stages": {stage: d.get("line") for stage, d in live.items() if d.get("running")},
    }
