"""Self-throttling of copy and verify: back off when a source is busy or the target stalls.

Source load: before reading, a task asks `source_wait(source, conn)`. Every `sample_seconds`
per source one caller reads `Threads_running`; while it is above `max_threads_running` the
source's tasks sleep (with growing pauses) and re-sample: the application keeps its server.
Only that source's tasks wait, so one busy instance never stalls the others.

Target stalls: every commit's latency is recorded; a commit `stall_factor` times slower than
the running median (and slower than `stall_floor` seconds) pauses all writers of this process
for about that latency, giving the target's compaction/flush time to catch up.

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

import pymysql

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
        self.waited: dict[str, float] = {"source": 0.0, "target": 0.0}
        self.events: list[str] = []  # every reason that started (tests, worker results)

    # ---- source load
    def source_wait(self, source: str, conn: pymysql.connections.Connection) -> float:
        """Block while `source` runs more than max_threads_running threads; seconds waited."""
        limit = self.opts.max_threads_running
        if limit <= 0:
            return 0.0
        waited, pause = 0.0, 0.2
        while True:
            running = self._threads_running(source, conn)
            if running is None or running <= limit:
                self._set_reason(f"source:{source}", None)
                with self._lock:
                    self.waited["source"] += waited
                return waited
            self._set_reason(f"source:{source}", f"source {source} busy: Threads_running {running} > {limit}")
            time.sleep(pause)
            waited += pause
            pause = min(self.opts.max_pause, pause * 2)
            with self._lock:
                self._sampled.pop(source, None)  # re-sample after the pause

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
        """Before a target write: sleep while a detected stall's pause lasts."""
        delay = self._pause_until - time.monotonic()
        if delay <= 0:
            if "target" in self._reasons and time.monotonic() >= self._pause_until:
                self._set_reason("target", None)
            return 0.0
        time.sleep(delay)
        with self._lock:
            self.waited["target"] += delay
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


def _log_reason(reason: str | None) -> None:
    if reason:
        log.warning("throttling: %s", reason)
    else:
        log.info("throttling ended")
