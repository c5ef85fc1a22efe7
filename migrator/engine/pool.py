"""Connection pools per instance, shared by copy and verify.

Idle connections are kept per instance, so an instance never has more connections than work
running on it at once (the scheduler's per-source bound), and the target never more than
`target_limit` (work waits for a free one). A connection that failed at the connection level is
closed, not pooled: the retry opens a fresh one. `release` closes an instance's idle connections
when its last chunk is done, so a fleet holds connections only to the few sources being worked on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from ..db import connect, describe_error
from ..endpoint import Endpoint
from ..errors import MigratorError, SourceError, TargetError
from ..throttle import Throttle
from .retry import with_retry

TARGET = "\0target"  # the target's pool key: never a source name
Opener = Callable[[Endpoint, str], pymysql.connections.Connection]


def default_opener(ep: Endpoint, role: str) -> pymysql.connections.Connection:
    return connect(ep, role, attempts=3)


class Pool:
    """Checked-out connections to the sources (by name) and the target.

    opener(endpoint, role) opens a session. fail_fast: once an instance could not be connected
    to (the opener's own retries spent), its later checkouts fail at once with the same error."""

    def __init__(self, sources: dict[str, Endpoint], target: Endpoint, *, target_limit: int = 0,
                 opener: Opener = default_opener, throttle: Throttle | None = None, fail_fast: bool = False):
        self._endpoints = dict(sources)
        self.target_ep = target
        self._opener = opener
        self.throttle = throttle
        self._fail_fast = fail_fast
        self._idle: dict[str, list[pymysql.connections.Connection]] = {}
        self._open: dict[str, int] = {}
        self._dead: dict[str, MigratorError] = {}
        self._dedicated: list[pymysql.connections.Connection] = []
        self._lock = threading.Lock()
        self._target_slots = threading.BoundedSemaphore(target_limit) if target_limit > 0 else None
        self.peak: dict[str, int] = {}  # most connections open at once, per instance (TARGET: the target)
        self.peak_sources = 0  # most source instances with connections open at once

    def endpoint(self, source: str) -> Endpoint:
        return self._endpoints[source]

    def _endpoint(self, name: str) -> tuple[Endpoint, str]:
        return (self.target_ep, "target") if name == TARGET else (self._endpoints[name], "source")

    @contextmanager
    def source(self, source: str) -> Iterator[pymysql.connections.Connection]:
        with self._checkout(source) as conn:
            yield conn

    @contextmanager
    def target(self) -> Iterator[pymysql.connections.Connection]:
        if self._target_slots is not None:
            self._target_slots.acquire()
        try:
            with self._checkout(TARGET) as conn:
                yield conn
        finally:
            if self._target_slots is not None:
                self._target_slots.release()

    def run(self, name: str, fn: Callable[[pymysql.connections.Connection], Any], *, what: str,
            attempts: int = 3, throttled: bool = True) -> Any:
        """fn(connection) on a pooled connection of `name` (a source, or TARGET), retried on
        transient errors; a source waits first while the throttle says it is busy (not for
        `throttled=False`: catalog and position reads, which would hold up every other source's
        preparation behind one busy or lagging source). A driver error that remains is raised as
        the instance's typed error."""
        ep, role = self._endpoint(name)
        slot = self.target if name == TARGET else lambda: self.source(name)

        def attempt() -> Any:
            with slot() as conn:
                if role == "source" and self.throttle is not None and throttled:
                    self.throttle.source_wait(name, conn)
                return fn(conn)

        try:
            return with_retry(attempt, what=f"{what} on {role} {ep.label}", attempts=attempts)
        except pymysql.err.MySQLError as exc:
            raise (SourceError if role == "source" else TargetError)(describe_error(ep, role, exc)) from None

    @contextmanager
    def _checkout(self, name: str) -> Iterator[pymysql.connections.Connection]:
        conn = self._take(name)
        try:
            yield conn
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError, SourceError, TargetError):
            self._close(name, conn)  # lost or broken: the retry opens a fresh one
            raise
        except BaseException:
            if name == TARGET:
                rollback(conn)
            self._give(name, conn)
            raise
        self._give(name, conn)

    def _take(self, name: str) -> pymysql.connections.Connection:
        with self._lock:
            idle = self._idle.get(name)
            if idle:
                return idle.pop()
            if name in self._dead:  # already failed to connect with retries: fail the rest fast
                raise self._dead[name]
            self._open[name] = self._open.get(name, 0) + 1
            self.peak[name] = max(self.peak.get(name, 0), self._open[name])
            sources = sum(1 for n, k in self._open.items() if k and n != TARGET)
            self.peak_sources = max(self.peak_sources, sources)
        try:
            return self._opener(*self._endpoint(name))
        except BaseException as exc:
            with self._lock:
                self._open[name] -= 1
                if self._fail_fast and isinstance(exc, MigratorError):
                    self._dead[name] = exc
            raise

    def _give(self, name: str, conn: pymysql.connections.Connection) -> None:
        with self._lock:
            self._idle.setdefault(name, []).append(conn)

    def _close(self, name: str, conn: pymysql.connections.Connection) -> None:
        with self._lock:
            self._open[name] -= 1
        close_quietly(conn)

    def release(self, name: str) -> None:
        """Close the instance's idle connections (its chunks are all done: free its slots)."""
        with self._lock:
            idle = self._idle.pop(name, [])
        for conn in idle:
            self._close(name, conn)

    def open_count(self) -> int:
        with self._lock:
            return sum(self._open.values())

    def dedicated(self, name: str) -> pymysql.connections.Connection:
        """A connection of its own, outside the pool's bounds, closed by close_all (for sequential
        steps after the parallel ones)."""
        conn = self._opener(*self._endpoint(name))
        with self._lock:
            self._dedicated.append(conn)
        return conn

    def close_all(self) -> None:
        for name in list(self._idle):
            self.release(name)
        with self._lock:
            dedicated, self._dedicated = self._dedicated, []
        for conn in dedicated:
            close_quietly(conn)


def rollback(conn: pymysql.connections.Connection) -> None:
    try:
        conn.rollback()
    except (pymysql.err.MySQLError, OSError):
        pass


def close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a dead connection
        pass
