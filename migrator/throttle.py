"""Self-throttling of copy and verify: back off when a source is busy or the target stalls.

Source load: before reading, a task asks `source_wait(source, conn)`. Every `sample_seconds`
per source one caller reads `Threads_running`; while it is above `max_threads_running` the
source's tasks sleep (with growing pauses) and re-sample: the application keeps its server.
Only that source's tasks wait, so one busy instance never stalls the others.

Target stalls: every commit's latency is recorded; a commit `stall_factor` times slower than
the running median (and slower than `stall_floor` seconds) pauses all writers of this process
for about that latency, giving the target's compaction/flush time to catch up.

Replica lag (`max_replica_lag` > 0): reading hundreds of primaries hard lags their replicas.
Before reading from a source, its replicas' Seconds_Behind_Master is sampled (every
`sample_seconds`; the replicas given per source, or discovered with SHOW SLAVE HOSTS and reached
with the source's credentials); while the largest is above the limit, or a replica does not
answer or does not replicate (NULL), only that source's reads wait.

Operator control while running (`workdir` given):
  - WORKDIR/pause: while the file exists, reads and writes wait (`touch` it to pause, `rm` it to
    go on; checked every 0.25 s). Sync obeys it too (migrator.sync.stream).
  - WORKDIR/limits.yaml: limits re-read when the file changes, e.g.
        max_source_threads_running: 10
    (keys: LIMIT_KEYS). A change is logged; a bad file is logged and the previous limits kept.

Each throttling reason is passed to `notify(reason | None)` when it starts and ends: the
progress view shows it; without a TTY it is logged.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from .workdir import WorkDir

log = logging.getLogger(__name__)


@dataclass
class ThrottleOptions:
    max_threads_running: int = 25  # 0: never wait on source load (pt-osc's default max-load is 25)
    sample_seconds: float = 1.0
    max_pause: float = 5.0
    stall_factor: float = 5.0
    stall_floor: float = 0.5
    window: int = 200  # commits in the running median
    min_samples: int = 20
    workdir: Path | None = None  # WORKDIR/pause and WORKDIR/limits.yaml
    max_replica_lag: float = 0.0  # seconds; 0: replicas are not looked at
    replicas: dict[str, list[Any]] | None = None  # source name -> replica Endpoints


PAUSE_CHECK_SECONDS = 0.25
LIMITS_CHECK_SECONDS = 1.0
LIMIT_KEYS = {"max_source_threads_running": int, "max_replica_lag": float}


class PauseFile:
    """WORKDIR/pause: set while the file exists. `is_set` stats it at most every PAUSE_CHECK_SECONDS."""

    def __init__(self, path: Path):
        self.path = path
        self._checked = 0.0
        self._set = False

    def is_set(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= PAUSE_CHECK_SECONDS:
            self._checked, self._set = now, self.path.exists()
        return self._set

    def reason(self) -> str:
        return f"paused: {self.path} exists (remove it to go on)"

    def wait(self, stop: Callable[[], bool] = lambda: False,
             on_change: Callable[[str | None], None] | None = None) -> float:
        """Sleep while paused (or until `stop()`); seconds waited."""
        if not self.is_set():
            return 0.0
        t0 = time.monotonic()
        if on_change:
            on_change(self.reason())
        while self.is_set() and not stop():
            time.sleep(PAUSE_CHECK_SECONDS / 2)
        if on_change:
            on_change(None)
        return time.monotonic() - t0


class LimitsFile:
    """WORKDIR/limits.yaml, re-read when its modification time changes (checked every second)."""

    def __init__(self, path: Path):
        self.path = path
        self._checked = 0.0
        self._mtime: float | None = None
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        now = time.monotonic()
        if now - self._checked >= LIMITS_CHECK_SECONDS:
            self._checked = now
            self._reload()
        return self.values.get(key, default)

    def _reload(self) -> None:
        import yaml

        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            if self.values:
                log.warning("limits: %s removed; back to the command's limits", self.path)
            self.values = {}
            return
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
            if not isinstance(raw, dict):
                raise ValueError("not a mapping of limit: value")
            values = {}
            for key, value in raw.items():
                if key not in LIMIT_KEYS:
                    raise ValueError(f"unknown limit {key!r} (known: {', '.join(sorted(LIMIT_KEYS))})")
                values[key] = LIMIT_KEYS[key](value)
        except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
            log.warning("limits: %s ignored (%s); the previous limits stay", self.path, exc)
            return
        if values != self.values:
            log.warning("limits: %s now says %s", self.path,
                        ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "nothing")
        self.values = values


class Throttle:
    """Thread-safe; one per coordinating process (and one per Dask worker process)."""

    def __init__(self, opts: ThrottleOptions | None = None, notify: Callable[[str | None], None] | None = None):
        self.opts = opts or ThrottleOptions()
        self.notify = notify or _log_reason
        self._lock = threading.Lock()
        self._sampled: dict[str, tuple[float, int]] = {}  # source -> (monotonic time, Threads_running)
        self._latencies: deque[float] = deque(maxlen=self.opts.window)
        self._pause_until = 0.0
        self._reasons: dict[str, str] = {}
        self.waited: dict[str, float] = {"source": 0.0, "target": 0.0, "pause": 0.0}
        self.events: list[str] = []  # every reason that started (tests, worker results)
        self._replicas: dict[str, list[Any]] = {k: list(v) for k, v in (self.opts.replicas or {}).items()}
        self._replica_conns: dict[str, Any] = {}
        self._replica_lock = threading.Lock()
        self._replica_sampled: dict[str, tuple[float, float | None, str]] = {}
        wd = WorkDir(self.opts.workdir) if self.opts.workdir is not None else None
        self.pause = PauseFile(wd.pause_file) if wd is not None else None
        self.limits = LimitsFile(wd.limits_file) if wd is not None else None

    # ---- operator's pause file
    def pause_wait(self) -> float:
        """Before a read or a write: sleep while WORKDIR/pause exists."""
        if self.pause is None:
            return 0.0
        waited = self.pause.wait(on_change=lambda reason: self._set_reason("pause", reason))
        if waited:
            with self._lock:
                self.waited["pause"] += waited
        return waited

    # ---- source load
    def source_wait(self, source: str, conn: pymysql.connections.Connection) -> float:
        """Block while paused, then while `source` runs more than max_threads_running threads
        (WORKDIR/limits.yaml may change it while running); seconds waited."""
        paused = self.pause_wait() + self.replica_wait(source, conn)
        limit = self.opts.max_threads_running
        if self.limits is not None:
            limit = self.limits.get("max_source_threads_running", limit)
        if limit <= 0:
            return paused
        def busy() -> str | None:
            running = self._threads_running(source, conn)
            return None if running is None or running <= limit else (
                f"source {source} busy: Threads_running {running} > {limit}")

        def resample() -> None:
            with self._lock:
                self._sampled.pop(source, None)  # re-sample after the pause

        return self._wait_while(f"source:{source}", busy, after_pause=resample)

    # ---- replica lag
    def replica_wait(self, source: str, conn: pymysql.connections.Connection) -> float:
        """Block while a replica of `source` lags more than max_replica_lag; seconds waited."""
        def lagging() -> str | None:
            limit = self.opts.max_replica_lag
            if self.limits is not None:
                limit = self.limits.get("max_replica_lag", limit)
            if limit <= 0:
                return None
            lag, why = self._replica_lag(source, conn)
            return None if lag is not None and lag <= limit else f"source {source}: {why} (--max-replica-lag {limit:g}s)"

        return self._wait_while(f"replica:{source}", lagging)

    def _wait_while(self, key: str, blocked: Callable[[], str | None],
                    after_pause: Callable[[], None] | None = None) -> float:
        """Sleep, 0.2 s doubling up to max_pause, while blocked() names a reason (shown under `key`);
        the seconds waited, counted as source waits."""
        waited, pause = 0.0, 0.2
        while True:
            why = blocked()
            self._set_reason(key, why)
            if why is None:
                with self._lock:
                    self.waited["source"] += waited
                return waited
            time.sleep(pause)
            waited += pause
            pause = min(self.opts.max_pause, pause * 2)
            if after_pause is not None:
                after_pause()

    def _replica_lag(self, source: str, conn: pymysql.connections.Connection) -> tuple[float | None, str]:
        """The largest Seconds_Behind_Master over the source's replicas (sampled every
        sample_seconds): (lag, why); lag None when a replica cannot tell (then `why` says so)."""
        with self._replica_lock:  # one sampler at a time (the replica connections are shared)
            now = time.monotonic()
            last = self._replica_sampled.get(source)
            if last and now - last[0] < self.opts.sample_seconds:
                return last[1], last[2]
            worst = self._sample_replicas(source, conn)
            self._replica_sampled[source] = (time.monotonic(), worst[0], worst[1])
            return worst

    def _sample_replicas(self, source: str, conn: pymysql.connections.Connection) -> tuple[float | None, str]:
        replicas = self._replicas_of(source, conn)
        worst: tuple[float | None, str] = (0.0, "no replica")
        for ep in replicas:
            lag, why = self._one_replica_lag(ep)
            if lag is None:
                worst = (None, why)
                break
            if lag > (worst[0] or 0.0) or worst[1] == "no replica":
                worst = (lag, why)
        return worst

    def _replicas_of(self, source: str, conn: pymysql.connections.Connection) -> list[Any]:
        with self._lock:
            return list(self._replicas.get(source) or [])

    def _one_replica_lag(self, ep: Any) -> tuple[float | None, str]:
        from .db import connect

        where = f"replica {ep.host}:{ep.port}"
        key = f"{ep.host}:{ep.port}"
        try:
            rconn = self._replica_conns.get(key)
            if rconn is None:
                rconn = self._replica_conns[key] = connect(ep, "source")
            with rconn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute("SHOW SLAVE STATUS")
                rows = cur.fetchall()
        except Exception as exc:  # noqa: BLE001 - unreachable replica: wait, say why
            conn = self._replica_conns.pop(key, None)
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001
                    pass
            return None, f"{where} does not answer ({exc})"
        if not rows:
            return None, f"{where} is not a replica (SHOW SLAVE STATUS is empty)"
        lags = [r.get("Seconds_Behind_Master") for r in rows]
        if any(v is None for v in lags):
            return None, f"{where} does not replicate (Seconds_Behind_Master is NULL)"
        lag = float(max(lags))
        return lag, f"{where} lags {lag:.0f}s"

    def close(self) -> None:
        for conn in self._replica_conns.values():
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self._replica_conns.clear()

    def _threads_running(self, source: str, conn: pymysql.connections.Connection) -> int | None:
        now = time.monotonic()
        with self._lock:
            last = self._sampled.get(source)
            if last and now - last[0] < self.opts.sample_seconds:
                return last[1]
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_running'")
                row = cur.fetchone()
        except pymysql.err.MySQLError:
            return None  # the read that follows meets the same error and handles it
        # The SHOW itself is one running thread: count only the others.
        running = max(0, int(row[1]) - 1) if row else 0
        with self._lock:
            self._sampled[source] = (now, running)
        return running

    # ---- target stalls
    def target_wait(self) -> float:
        """Before a target write: sleep while paused, and while a detected stall's pause lasts."""
        self.pause_wait()
        delay = self._pause_until - time.monotonic()
        if delay <= 0:
            if "target" in self._reasons and time.monotonic() >= self._pause_until:
                self._set_reason("target", None)
            return 0.0
        time.sleep(delay)
        with self._lock:
            self.waited["target"] += delay
        if time.monotonic() >= self._pause_until:  # said at once, not at the next write after the pause
            self._set_reason("target", None)
        return delay

    def commit_took(self, seconds: float) -> None:
        """Record one target commit's latency; a stall far above the median starts a pause."""
        with self._lock:
            samples = list(self._latencies)
            self._latencies.append(seconds)
        if len(samples) < self.opts.min_samples:
            return
        median = statistics.median(samples)
        if seconds > self.opts.stall_floor and seconds > self.opts.stall_factor * max(median, 1e-3):
            pause = min(self.opts.max_pause * 2, seconds)
            with self._lock:
                self._pause_until = max(self._pause_until, time.monotonic() + pause)
            self._set_reason("target", f"target write stall: commit took {seconds:.2f}s, median {median:.2f}s; "
                                       f"writers pause {pause:.1f}s")

    # ---- reasons
    def reasons(self) -> list[str]:
        with self._lock:
            return list(self._reasons.values())

    def _set_reason(self, key: str, reason: str | None) -> None:
        with self._lock:
            old = self._reasons.get(key)
            if reason == old or (reason is None and old is None):
                return
            if reason is None:
                del self._reasons[key]
            else:
                self._reasons[key] = reason
                if old is None:
                    self.events.append(reason)
        if reason is None:
            self.notify(None if not self.reasons() else "; ".join(self.reasons()))
        elif old is None:
            self.notify(reason)


def discover_replicas(ep: Any) -> list[Any]:
    """The replicas a source knows of (SHOW SLAVE HOSTS: those started with report_host),
    reached with the source's user and password."""
    from .db import connect
    from .errors import SourceError

    try:
        conn = connect(ep, "source")
    except SourceError as exc:
        log.warning("%s; its replicas are not watched", exc)
        return []
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SLAVE HOSTS")
            rows = cur.fetchall()
    except pymysql.err.MySQLError as exc:
        log.warning("source %s: SHOW SLAVE HOSTS failed (%s); its replicas are not watched", ep.label, exc.args[-1])
        return []
    finally:
        conn.close()
    return [ep.model_copy(update={"host": row[1], "port": int(row[2]), "name": f"{ep.label}-replica-{row[0]}"})
            for row in rows if row[1]]


def replica_endpoints(plan, urls: tuple[str, ...], discover: bool, executor: str = "local") -> dict[str, list]:
    """--replica SOURCE=URL and --discover-replicas: the replicas watched per source (copy and verify).
    Refused with a remote executor: its workers read the sources and do not watch replicas."""
    from .endpoint import parse_url, redact_url
    from .errors import ConfigError

    if executor not in ("", "local"):
        raise ConfigError(f"--max-replica-lag works with local reads only, not with --executor {redact_url(executor)}: "
                          "run without --executor, or throttle with --max-source-threads-running")
    out: dict[str, list] = {}
    for item in urls:
        name, sep, url = item.partition("=")
        if not sep or not url:
            raise ConfigError(f"--replica {redact_url(item)!r}: write SOURCE=URL (SOURCE a source name of the plan)")
        plan.source(name)  # an unknown name fails here, naming the plan's sources
        out.setdefault(name, []).append(parse_url(url, "source"))
    if discover:
        for sp in plan.sources:
            found = discover_replicas(sp.endpoint())
            if found:
                out.setdefault(sp.name, []).extend(found)
    if not out:
        raise ConfigError("--max-replica-lag needs replicas: --replica SOURCE=URL or --discover-replicas")
    return out


def _log_reason(reason: str | None) -> None:
    if reason:
        log.warning("throttling: %s", reason)
    else:
        log.info("throttling ended")
