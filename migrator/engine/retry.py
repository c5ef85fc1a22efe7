"""Which errors are worth retrying, and the one retry loop (exponential back-off with jitter).

Lost connections, restarts, deadlocks and busy servers are retried; a refusal (wrong password,
missing grant, missing table, bad TLS) would only fail again after the back-off, so it is
reported at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import pymysql

from ..errors import MigratorError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Lost connection, server gone, can't connect (restart), deadlock, lock wait timeout,
# OceanBase: timeout (4012), trx timeout (6210), not master / leader moving (4038, -4038),
# transaction killed/rolled back (6002), server busy (4019).
TRANSIENT_ERRORS = {2002, 2003, 2006, 2013, 1040, 1205, 1213, 4012, 4019, 4038, 6002, 6210}
AUTH_ERRORS = {1045, 1044, 1698}
# Missing grant: table (1142), column (1143), global like REPLICATION CLIENT (1227), routine (1370).
PRIVILEGE_ERRORS = {1142, 1143, 1227, 1370}
MISSING_ERRORS = {1049, 1146}  # unknown database, table does not exist
# Refusals: retrying only delays the message the DBA has to act on.
REFUSED_ERRORS = AUTH_ERRORS | PRIVILEGE_ERRORS | MISSING_ERRORS


def error_code(exc: BaseException) -> int | None:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return abs(exc.args[0])
    return None


def is_transient(exc: BaseException) -> bool:
    """A driver error worth retrying: lost/refused connection, deadlock, lock wait, server busy.
    (A MigratorError raised by `connect` carries the answer in its `transient` attribute; it is not
    judged here, so with_retry around a connect does not multiply connect's own attempts.)"""
    code = error_code(exc)
    if code in REFUSED_ERRORS:
        return False
    return isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError, ConnectionError)) and (
        code in TRANSIENT_ERRORS or code is None
    )


def is_transient_or_typed(exc: BaseException) -> bool:
    """is_transient, and also a typed error whose `transient` says so (set by db.connect for
    connection-level failures): for loops that open their connections inside the retried work."""
    if isinstance(exc, MigratorError):
        return exc.transient
    return is_transient(exc)


def backoff(attempt: int, base_delay: float, max_delay: float, jitter: bool = True) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): doubling, capped, jittered 0.5-1.5x
    (jitter False: exactly; base_delay == max_delay then waits the same each time)."""
    delay = min(max_delay, base_delay * 2 ** (attempt - 1))
    return delay * (0.5 + random.random()) if jitter else delay


class RetryStopped(Exception):
    """with_retry was asked to stop (its `stop` said so) while it waited to retry `error`."""

    def __init__(self, what: str, error: BaseException):
        super().__init__(f"stopped while retrying {what} ({error})")
        self.error = error


def with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int | None = 5,
    base_delay: float = 0.5,
    max_delay: float = 15.0,
    jitter: bool = True,
    window: float | None = None,
    retryable: Callable[[BaseException], bool] = is_transient,
    warn: Callable[[str], None] | None = None,
    on_retry: Callable[[int, BaseException], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> T:
    """Run fn; on an error `retryable` accepts, wait (backoff) and run it again, `attempts` times
    in all (None: until it succeeds, e.g. sync through a target outage; `stop()` true after a
    failure then raises RetryStopped). window: no retry once this many seconds have passed since
    the first attempt began (the error is raised). Each retry is said through `warn` (default: the
    log), then `on_retry(attempt, error)` is told."""
    deadline = None if window is None else time.monotonic() + window
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - filtered just below
            if ((attempts is not None and attempt >= attempts) or not retryable(exc)
                    or deadline is not None and time.monotonic() > deadline):
                raise
            if stop is not None and stop():
                raise RetryStopped(what, exc) from exc
            delay = backoff(attempt, base_delay, max_delay, jitter)
            count = f"retry {attempt}/{attempts - 1}" if attempts is not None else "retrying"
            message = f"{what} failed ({exc}); {count} in {delay:.1f}s"
            if warn is not None:
                warn(message)
            else:
                log.warning("%s", message)
            if on_retry:
                on_retry(attempt, exc)
            time.sleep(delay)
