"""Progress that works anywhere: a ticker per long-running stage.

Every `interval` seconds a stage's snapshot (rows, rows/s, ETA, lag, throttling) is
  - logged as one line on `migrator.progress` when the output is not a terminal (pipe, file,
    nohup, systemd, CI), in text or JSON (`--log-format json`: the fields as numbers);
  - written to WORKDIR/live/STAGE.json, whatever the output, for `migrator status --watch`.
A terminal keeps its rich progress view; the ticker then only writes the live file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .logsetup import progress_log
from .progress import SyncProgress, Throttled, VerifyProgress
from .state import atomic_write_json
from .sync.contracts import status_line

LIVE_ONLY = ("sources", "warnings")  # in the live file, not in every log line
LIVE_STALE_SECONDS = 60.0  # a live file older than this (or of a dead pid) is not "running"


def fmt_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class RateMeter:
    """rows/s over the last tick, smoothed (so one slow page does not swing the ETA)."""

    def __init__(self, smoothing: float = 0.5):
        self.smoothing = smoothing
        self._last: tuple[float, int] | None = None
        self.rate: float | None = None

    def update(self, count: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self._last is not None and now > self._last[0]:
            current = max(0, count - self._last[1]) / (now - self._last[0])
            self.rate = current if self.rate is None else self.smoothing * current + (1 - self.smoothing) * self.rate
        self._last = (now, count)
        return self.rate or 0.0


class Ticker:
    """Calls `snapshot()` every `interval` seconds in a daemon thread (and once at stop):
    the snapshot is a dict with `line` (the text) and fields; logged when `log_lines`, written to
    `live_path` when given."""

    def __init__(self, stage: str, interval: float, snapshot: Callable[[], dict[str, Any]], *,
                 live_path: Path | None = None, log_lines: bool = True):
        self.stage, self.interval, self.snapshot = stage, interval, snapshot
        self.live_path, self.log_lines = live_path, log_lines
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = time.time()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"progress-{self.stage}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self, state: str = "running") -> None:
        try:
            snap = self.snapshot()
        except Exception:  # a display must never stop the work  # noqa: BLE001
            return
        line = snap.pop("line", "")
        if self.log_lines and line:
            fields = {k: v for k, v in snap.items() if k not in LIVE_ONLY}
            progress_log(f"{self.stage}: {line}", stage=self.stage, state=state, **fields)
        if self.live_path is not None:
            doc = {"stage": self.stage, "state": state, "pid": os.getpid(), "started_at": self.started_at,
                   "updated_at": time.time(), "interval": self.interval, "line": line, **snap}
            try:
                self.live_path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(self.live_path, doc)
            except OSError:
                pass

    def stop(self, state: str = "finished") -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.tick(state)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[k]


class SyncTracker:
    """A Progress sink fed with the sync processes' reports (run_sync's progress): rows applied, lag per source."""

    def __init__(self, sources: list[str], metrics: Any = None):
        self.metrics = metrics
        self.rows: dict[str, int] = {s: 0 for s in sources}
        self.lag: dict[str, float] = {}
        self.caught_up: dict[str, bool] = {s: False for s in sources}
        self.state: dict[str, str] = {}
        self.retries = 0
        self.errors: list[str] = []
        self.rate = RateMeter()
        self.throttled: str | None = None
        self._lock = threading.Lock()

    def emit(self, event: Any) -> None:
        """A Progress sink (migrator.progress): SyncProgress events from run_sync."""
        if not isinstance(event, SyncProgress):
            return
        source = event.source
        with self._lock:
            for _kind, n in (event.rows or {}).items():
                self.rows[source] = self.rows.get(source, 0) + int(n)
            if event.retry:
                self.retries += 1
            if event.error:
                self.errors = (self.errors + [f"{source}: {event.error}"])[-20:]
            if event.state:
                self.state[source] = event.state
                if self.state[source] == "resumed":
                    self.state.pop(source)
                paused = sorted(s for s, st in self.state.items() if st.startswith("paused"))
                self.throttled = None if not paused else (
                    f"{len(paused)} source(s) {self.state[paused[0]]}")
                if self.metrics is not None:
                    self.metrics.set_throttled("sync", self.throttled)
            if event.checkpoint is not None:
                try:
                    self.lag[source] = status_line(event.checkpoint)["lag_seconds"]
                except Exception:  # noqa: BLE001 - a display must not stop sync
                    pass
                self.caught_up[source] = bool(event.caught_up)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            rows = sum(self.rows.values())
            lags = dict(self.lag)
            caught = sum(self.caught_up.values())
            n = len(self.caught_up)
            sources = {s: {"rows": self.rows.get(s, 0), "lag_seconds": lags.get(s), "caught_up": self.caught_up.get(s),
                           "state": self.state.get(s)} for s in self.caught_up}
            errors, retries = list(self.errors), self.retries
        rate = self.rate.update(rows)
        values = list(lags.values())
        worst = sorted(lags, key=lambda s: -lags[s])[:3]
        p50, p95, top = percentile(values, 0.5), percentile(values, 0.95), max(values) if values else None
        line = f"{rows:,} row changes applied, {rate:,.0f} rows/s, {caught}/{n} source(s) caught up"
        if values:
            line += f", lag p50 {p50:.1f}s p95 {p95:.1f}s max {top:.1f}s"
            if top and top > 0:
                line += " (" + ", ".join(f"{s} {lags[s]:.1f}s" for s in worst if lags[s] > 0) + ")"
        if self.throttled:
            line += f"; throttled: {self.throttled}"
        if errors:
            line += f"; {len(errors)} error(s), last: {errors[-1]}"
        return {"line": line, "rows": rows, "rows_per_second": round(rate, 1), "sources_caught_up": caught,
                "sources_total": n, "lag_p50_seconds": p50, "lag_p95_seconds": p95, "lag_max_seconds": top,
                "worst_sources": [{"source": s, "lag_seconds": lags[s]} for s in worst], "retries": retries,
                "throttled": self.throttled, "errors": len(errors), "sources": sources, "warnings": errors}


class VerifyTracker:
    """A Progress sink fed with verify's VerifyProgress (chunks done, chunks total, rows) and
    Throttled events."""

    def __init__(self, metrics: Any = None):
        self.done = self.total = self.rows = 0
        self.rate = RateMeter()
        self.chunk_rate = RateMeter()
        self.throttled: str | None = None
        self.metrics = metrics

    def emit(self, event: Any) -> None:
        if isinstance(event, VerifyProgress):
            self.update(event.done, event.total, event.rows)
        elif isinstance(event, Throttled):
            self.throttled = event.reason
            if self.metrics is not None:
                self.metrics.set_throttled(event.stage, event.reason)

    def update(self, done: int, total: int, rows: int) -> None:
        self.done, self.total, self.rows = done, total, rows
        if self.metrics is not None:
            self.metrics.verify_chunks_done.set(done)
            self.metrics.verify_chunks_total.set(total)
            self.metrics.verify_rows.set(rows)

    def snapshot(self) -> dict[str, Any]:
        rate = self.rate.update(self.rows)
        chunk_rate = self.chunk_rate.update(self.done)
        eta = (self.total - self.done) / chunk_rate if chunk_rate > 0 else None
        line = (f"{self.done:,}/{self.total:,} chunks, {self.rows:,} rows, {rate:,.0f} rows/s, ETA {fmt_eta(eta)}"
                + (f"; throttled: {self.throttled}" if self.throttled else ""))
        return {"line": line, "chunks_done": self.done, "chunks_total": self.total, "rows": self.rows,
                "rows_per_second": round(rate, 1), "eta_seconds": None if eta is None else round(eta, 1),
                "throttled": self.throttled}
