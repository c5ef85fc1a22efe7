"""Apply row changes to the target idempotently, in parallel where order allows.

A batch is a run of whole source transactions. Within it only each key's last state matters:
insert -> REPLACE of the after-image; update -> DELETE of the before-image key when the key
changed, then REPLACE; delete -> DELETE by key. Folding a batch to one final state per key
(`net_effect`) keeps per-key binlog order by construction, so keys can be spread over worker
connections freely. Replaying a batch (after a crash before the checkpoint moved) converges to
the same state: nothing duplicated, nothing lost.
"""

from __future__ import annotations

import functools
import logging
import operator
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pymysql
from pymysql.constants import SERVER_STATUS
from pymysql.converters import _escape_table as ESCAPE_TABLE

from ..db import connect, describe_error, error_code, qualified, quote_ident
from ..engine.retry import RetryStopped, is_transient_or_typed, with_retry
from ..endpoint import Endpoint
from ..errors import MigratorError, TargetError
from ..keys import binary_literal, format_timedelta, in_sql

log = logging.getLogger(__name__)

ROWS_PER_STATEMENT = 500
STALL_ROWS = 1000  # a part's latency is compared with the median as if it held at most this many rows
Mark = Callable[[pymysql.connections.Connection], None]  # writes the checkpoint covering a batch (uncommitted)


@dataclass
class Route:
    """Where one source table's events go, and with which columns."""

    table_id: str  # TablePlan.id
    target_database: str
    target_table: str
    key: list[str]  # key columns as written on the target (source_column included)
    columns: list[str]  # columns written by REPLACE (target has them, not generated)
    source_value: str | None = None  # value of source_column for this shard
    source_column: str | None = None
    merged: bool = False  # several source tables feed the target table
    # the target table has a unique key besides the one rows are hashed by: a REPLACE on one worker
    # connection may have to delete a row another worker holds in the same batch, and two such
    # workers deadlock (1213, retried after a back-off, the whole part redone). Its rows then go
    # to one worker per batch; other tables still spread by key.
    serial: bool = False

    @functools.cached_property
    def target_name(self) -> str:  # read per row change (net effect, spreading): built once
        return f"{self.target_database}.{self.target_table}"

    @functools.cached_property
    def key_getter(self) -> Callable[[dict[str, Any]], tuple]:
        """row -> its key tuple, built once (read per row change: net effect, spreading)."""
        if self.source_column is not None:
            sv, sc, key = self.source_value, self.source_column, tuple(self.key)
            return lambda row: tuple([sv if k == sc else row[k] for k in key])
        if len(self.key) == 1:
            (k,) = self.key
            return lambda row: (row[k],)
        return operator.itemgetter(*self.key)

    def key_of(self, row: dict[str, Any]) -> tuple:
        return self.key_getter(row)

    def values_of(self, row: dict[str, Any]) -> tuple:
        if self.source_column is None:
            return tuple([row.get(c) for c in self.columns])
        return tuple(self.source_value if c == self.source_column else row.get(c) for c in self.columns)


@dataclass(slots=True)
class RowChange:
    kind: str  # insert | update | delete
    route: Route
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fk_checks: bool = True  # False: the source session ran with foreign_key_checks=0 (nothing cascaded)


@dataclass(slots=True)
class NetChange:
    route: Route
    key: tuple
    row: dict[str, Any] | None  # None = delete


def net_effect(changes: list[RowChange]) -> list[NetChange]:
    """The final state of every key touched by the batch, in first-touched order."""
    net: dict[tuple, NetChange] = {}
    for ch in changes:
        r = ch.route
        key_of, name = r.key_getter, r.target_name
        if ch.kind == "insert":
            k = key_of(ch.after)
            net[(name, k)] = NetChange(r, k, ch.after)
        elif ch.kind == "update":
            kb, ka = key_of(ch.before), key_of(ch.after)
            if kb != ka:
                net[(name, kb)] = NetChange(r, kb, None)
            net[(name, ka)] = NetChange(r, ka, ch.after)
        else:
            k = key_of(ch.before)
            net[(name, k)] = NetChange(r, k, None)
    return list(net.values())


@dataclass
class ApplyStats:
    rows: dict[str, int] = field(default_factory=lambda: {"insert": 0, "update": 0, "delete": 0})
    statements: int = 0
    retries: int = 0


class Applier:
    """W target connections; `apply(changes)` returns once every change is committed."""

    def __init__(self, target: Endpoint, workers: int = 4, *, stop: Callable[[], bool] = lambda: False,
                 on_retry: Callable[[BaseException], None] | None = None):
        self.target = target
        self.workers = max(1, workers)
        self.stop = stop
        self.on_retry = on_retry
        self._conns: dict[int, pymysql.connections.Connection] = {}
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{threading.current_thread().name}/apply") if self.workers > 1 else None
        self._lock = threading.Lock()
        self.cascades: Any = None  # cascade.Cascades: foreign-key actions the binlog does not hold
        # before a retry writes rows again: renew the source's lease if due, or stop (targetstate.py)
        self.guard: Callable[[pymysql.connections.Connection], None] | None = None
        # the target's stall throttle (throttle.py), as copy has it: a part far slower than the running
        # median pauses this source's next batches, so a struggling target is not pushed harder
        self.throttle: Any = None

    def apply(self, changes: list[RowChange], mark: Mark | None = None) -> None:
        """Commit `changes` on the target. `mark(conn)` writes the checkpoint that covers them
        (targetstate.py): inside the batch's one transaction when the batch commits on one
        connection (exactly once), else after every part committed (a replay of such a batch after
        a kill in between is idempotent: REPLACE / DELETE by key)."""
        if not changes:
            if mark is not None:
                self.on_connection(mark, what="writing the sync checkpoint")
            return
        if self.throttle is not None:
            self.throttle.target_wait()
        if self.cascades is not None and self.cascades.any_cascading(changes):
            # one connection, one transaction, binlog order: see cascade.py
            self._with_backoff(0, lambda conn: self.cascades.apply_in_order(conn, changes, before_commit=mark),
                               what=f"applying {len(changes)} row change(s) with foreign-key cascades")
            return
        net = net_effect(changes)
        deletes = [nc for nc in net if nc.row is None]
        if self.workers > 1 and deletes and len(deletes) < len(net):
            # Keys equal to the target but not to Python ('a' vs 'A' under a _ci collation, trailing
            # spaces) hash to different workers: a REPLACE of 'A' on one connection and the DELETE of
            # 'a' on another deadlocked forever (each retry redid both) or, in the other order, deleted
            # the new row. Every delete precedes, in binlog order, the final write of any key the target
            # deems equal to it, so all deletes are committed first, then all replaces.
            self._spread(deletes)
            self._spread([nc for nc in net if nc.row is not None], mark)
            return
        self._spread(net, mark)

    def on_connection(self, fn: Callable[[pymysql.connections.Connection], None], *, what: str) -> None:
        """fn(conn) then commit, on worker 0's connection with the usual back-off (only while no
        batch is in flight: the caller's thread then owns that connection)."""
        def run(conn: pymysql.connections.Connection) -> None:
            fn(conn)
            conn.commit()
        self._with_backoff(0, run, what=what)

    def _spread(self, net: list[NetChange], mark: Mark | None = None) -> None:
        parts: list[list[NetChange]] = [[] for _ in range(self.workers)]
        spread_over(net, parts)
        jobs = [(i, p) for i, p in enumerate(parts) if p]
        if len(jobs) == 1:  # one part, one transaction: the checkpoint commits with it
            self._apply_part(jobs[0][0], jobs[0][1], mark)
            return
        if self._pool is None:
            for i, p in jobs:
                self._apply_part(i, p)
        else:
            for fut in [self._pool.submit(self._apply_part, i, p) for i, p in jobs]:
                fut.result()
        if mark is not None:
            # after every part committed: a kill before this replays the batch, which converges
            self.on_connection(mark, what="writing the sync checkpoint")

    def execute_ddl(self, sql: str) -> None:
        """One DDL statement on worker 0's connection, with the same back-off as rows."""
        self._with_backoff(0, lambda conn: conn.cursor().execute(sql), what=f"DDL {sql[:80]!r}")

    def _apply_part(self, worker: int, part: list[NetChange], mark: Mark | None = None) -> None:
        def run(conn: pymysql.connections.Connection) -> None:
            started = time.monotonic()
            with conn.cursor() as cur:
                for route, deletes, replaces in _group(part):
                    for i in range(0, len(deletes), ROWS_PER_STATEMENT):
                        _delete(cur, route, deletes[i:i + ROWS_PER_STATEMENT])
                    for i in range(0, len(replaces), ROWS_PER_STATEMENT):
                        _replace(cur, route, replaces[i:i + ROWS_PER_STATEMENT])
            if mark is not None:
                mark(conn)
            conn.commit()
            if self.throttle is not None:  # a big catch-up part counts as its 1,000-row share: not a stall
                self.throttle.commit_took((time.monotonic() - started) * min(1.0, STALL_ROWS / len(part)))

        self._with_backoff(worker, run, what=f"applying {len(part)} row change(s)")

    def _with_backoff(self, worker: int, fn: Callable[[pymysql.connections.Connection], None], *, what: str) -> None:
        """Retry transient target failures forever (outage: back off, continue, never skip), on the
        engine's retry loop: a failed attempt drops the worker's connection, a retry first lets the
        guard renew the source's lease (or stop), a stop asked meanwhile ends it."""
        retried = False

        def attempt() -> None:
            conn = self._conn(worker)
            try:
                if retried and self.guard is not None:
                    self.guard(conn)
                fn(conn)
            except Exception:
                self._drop(worker)
                raise

        def count(_attempt: int, exc: BaseException) -> None:
            nonlocal retried
            retried = True
            if self.on_retry:
                self.on_retry(exc)

        label = self.target.label
        try:
            with_retry(attempt, what=f"target {label}: {what}", attempts=None, retryable=is_transient_or_typed,
                       stop=self.stop, on_retry=count, warn=lambda m: log.warning("%s", m))
        except RetryStopped as exc:
            raise TargetError(f"target {label}: stopped while retrying {what} ({exc.error})") from None
        except MigratorError:  # connect refused, a guard's verdict: as they are
            raise
        except Exception as exc:  # noqa: BLE001 - not transient: said once, with what was being done
            raise TargetError(f"{describe_error(self.target, 'target', exc)} while {what}") from None

    def _conn(self, worker: int) -> pymysql.connections.Connection:
        conn = self._conns.get(worker)
        if conn is None:
            conn = connect(self.target, "target", autocommit=False)  # foreign_key_checks=0: cascades are sync's
            self._conns[worker] = conn
        return conn

    def _drop(self, worker: int) -> None:
        conn = self._conns.pop(worker, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def close(self) -> None:
        for w in list(self._conns):
            self._drop(w)
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def spread_over(net: list[NetChange], parts: list[list[NetChange]]) -> None:
    """Each change to its part: by table and key (a serial table's rows all to one part)."""
    workers, last = len(parts), None
    for nc in net:
        r = nc.route
        if r is not last:  # a batch is mostly runs of one table's changes
            last, name, serial = r, r.target_name, r.serial
            if serial:
                whole = parts[hash(name) % workers]
        if serial:
            whole.append(nc)
        else:
            parts[hash((name, nc.key)) % workers].append(nc)


def _group(part: list[NetChange]) -> list[tuple[Route, list[tuple], list[dict]]]:
    """Per target table and shard: keys to delete, rows to replace (deletes run first; see module doc).
    The shard is part of the group: each group writes its own source-column value."""
    groups: dict[tuple[str, tuple[str, ...], str | None], tuple[Route, list[tuple], list[dict]]] = {}
    by_route: dict[int, tuple[Route, list[tuple], list[dict]]] = {}  # the same group, found without a key tuple per change
    last = None
    for nc in part:
        r = nc.route
        if r is not last:  # a part is mostly runs of one table's changes
            g = by_route.get(id(r))
            if g is None:
                g = by_route[id(r)] = groups.setdefault((r.target_name, tuple(r.columns), r.source_value), (r, [], []))
            last, keys, rows = r, g[1], g[2]
        if nc.row is None:
            keys.append(nc.key)
        else:
            rows.append(nc.row)
    return list(groups.values())


def _quoted(text: str) -> str:
    return "'" + text + "'"


# The types row images decode to most often, as SQL literals without pymysql's per-value dispatch
# and without formatting the whole statement through `%` (both cost more than the target's work).
# Decimal in plain notation (str() could give 1E-30, which MySQL reads as a double).
FAST_LITERALS: dict[type, Callable[[Any], str]] = {
    int: str,
    type(None): lambda v: "NULL",
    Decimal: lambda v: format(v, "f"),
    datetime: lambda v: _quoted(v.isoformat(" ")),
    date: lambda v: _quoted(v.isoformat()),
    # our own TIME text: PyMySQL before 1.2.1 wrote a negative TIME with complemented fields
    timedelta: lambda v: _quoted(format_timedelta(v)),
    bytes: binary_literal,  # the empty value as '': seekdb matches nothing with `k IN (X'')`
}


def literal_maker(conn: pymysql.connections.Connection) -> Callable[[Any], str]:
    """value -> SQL literal; anything but the fast types goes through the connection's escape
    (strings by its escaping rules, bytes as X'..', floats, TIME). Its `quote_str` quotes a str
    by the connection's rules as they are now (NO_BACKSLASH_ESCAPES read once per statement)."""
    escape = conn.escape
    fast = FAST_LITERALS.get

    def literal(value: Any) -> str:
        f = fast(type(value))
        return f(value) if f is not None else escape(value)
    if conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        literal.quote_str = lambda v: "'" + v.replace("'", "''") + "'"  # type: ignore[attr-defined]
    else:
        literal.quote_str = lambda v: "'" + v.translate(ESCAPE_TABLE) + "'"  # type: ignore[attr-defined]
    return literal


def delete_sql(route: Route, keys: list[tuple], lit: Callable[[Any], str]) -> str:
    """DELETE of these keys from the route's target table, as one statement."""
    return f"DELETE FROM {qualified(route.target_database, route.target_table)} WHERE {in_sql(route.key, keys, lit)}"


def replace_sql(route: Route, rows: list[dict], lit: Callable[[Any], str]) -> str:
    """REPLACE of these rows (full after-images) into the route's target table, as one statement."""
    table = qualified(route.target_database, route.target_table)
    columns = tuple(route.columns)
    fmt = row_formatter(columns, route.source_column, value_types(columns, rows))
    quote_str = getattr(lit, "quote_str", lit)
    shard = lit(route.source_value) if route.source_column is not None else ""
    try:
        values = ",".join([fmt(r, lit, quote_str, shard) for r in rows])
    except KeyError:  # a row without some column (written as NULL, as values_of does)
        values = ",".join(["(" + ",".join([lit(v) for v in route.values_of(r)]) + ")" for r in rows])
    return f"REPLACE INTO {table} ({','.join(quote_ident(c) for c in columns)}) VALUES {values}"


# How a value of each common type is written, as code of a generated row formatter (`q`: the
# quote character, `quote_str(v)`: a string in the connection's escaping). The same texts as
# FAST_LITERALS / the connection's escape.
TYPE_CODE: dict[type, str] = {
    int: "str({v})",
    # str() is plain notation unless it would use an exponent (then 'E' in it): 3x cheaper than format
    Decimal: '(d if "E" not in (d := str({v})) else format({v}, "f"))',
    datetime: 'q + {v}.isoformat(" ") + q',
    date: "q + {v}.isoformat() + q",
    # letters and digits only (most short texts: codes, names): nothing to escape in either mode
    str: "(q + {v} + q if {v}.isalnum() else quote_str({v}))",
    bytes: "(x + {v}.hex() + q if {v} else q + q)",  # '' for the empty value, as keys.binary_literal
}
_FORMATTERS: dict[tuple, Callable[..., str]] = {}
SAMPLE_ROWS = 20  # rows looked at for each column's value type (a guard checks every value anyway)


def value_types(columns: tuple[str, ...], rows: list[dict]) -> tuple[type | None, ...]:
    """Each column's value type in the first rows where it is not NULL (None: not seen)."""
    types: list[type | None] = [None] * len(columns)
    for r in rows[:SAMPLE_ROWS]:
        for i, c in enumerate(columns):
            if types[i] is None:
                v = r.get(c)
                if v is not None:
                    types[i] = type(v)
        if all(types):
            break
    return tuple(types)


def row_formatter(columns: tuple[str, ...], source_column: str | None,
                  types: tuple[type | None, ...]) -> Callable[..., str]:
    """row -> '(v1,v2,...)' for REPLACE, generated once per column list and value types: each value
    of the expected type is written inline, any other (NULL, a zero date's text) through `lit`.
    Per value this saves a type lookup and two calls: a fifth of sync's CPU was here."""
    key = (columns, source_column, types)
    fmt = _FORMATTERS.get(key)
    if fmt is not None:
        return fmt
    loads, parts = [], []
    for i, (c, t) in enumerate(zip(columns, types)):
        if c == source_column:
            parts.append("{shard}")
            continue
        loads.append(f"v{i} = r[{c!r}]")
        code = TYPE_CODE.get(t) if t is not None else None
        parts.append(f"{{({code.format(v=f'v{i}')} if type(v{i}) is {t.__name__} else lit(v{i}))}}" if code
                     else f"{{lit(v{i})}}")
    src = ("def fmt(r, lit, quote_str, shard):\n" + "".join(f"    {line}\n" for line in loads)
           + "    return f'(" + ",".join(parts) + ")'\n")
    env: dict[str, Any] = {"q": "'", "x": "X'", **{t.__name__: t for t in TYPE_CODE}}
    exec(compile(src, "<apply row formatter>", "exec"), env)  # noqa: S102 - built above from column names (repr) and types
    if len(_FORMATTERS) > 1000:
        _FORMATTERS.clear()
    fmt = _FORMATTERS[key] = env["fmt"]
    return fmt


def _delete(cur: Any, route: Route, keys: list[tuple]) -> None:
    cur.execute(delete_sql(route, keys, literal_maker(cur.connection)))


def _replace(cur: Any, route: Route, rows: list[dict]) -> None:
    cur.execute(replace_sql(route, rows, literal_maker(cur.connection)))


def ddl_error_is_already_applied(exc: BaseException) -> bool:
    """Re-running a DDL after a crash: duplicate column/key, unknown column/key, table exists."""
    return error_code(exc) in {1060, 1061, 1091, 1050, 1051, 1146}
