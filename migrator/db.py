"""Connections to both ends: session setup per engine, clear errors, retries with backoff.

Every session speaks utf8mb4 with time_zone '+00:00' so TIMESTAMP values move unchanged
(seekdb defaults to +08:00). OceanBase sessions raise ob_query_timeout / ob_trx_timeout,
which default to 10 s and would cut long chunk reads or checksums.

Target sessions run with foreign_key_checks=0: copy writes chunks, sync applies tables in
parallel and fix SQL repairs rows in an order that is not the source's, so a child row may
arrive before its parent. Measured on seekdb 1.4 (and MySQL semantics): with the checks off a
REPLACE, DELETE or key UPDATE of a parent row fires no ON DELETE/UPDATE CASCADE or SET NULL, so
replaying a parent's row image never destroys or nulls its children; with the checks on, a
REPLACE of a parent deletes its children (it is a delete + insert).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pymysql.cursors
from pymysql.constants import CLIENT

from .endpoint import Endpoint
from .engine.retry import (  # noqa: F401 - the error classification and retry loop, used through db
    AUTH_ERRORS, MISSING_ERRORS, PRIVILEGE_ERRORS, REFUSED_ERRORS, TRANSIENT_ERRORS, error_code, is_transient,
    with_retry)
from .errors import MigratorError, SourceError, TargetError


# Written rows keep id 0 and zero dates where the target allows them; strict so a value the
# target cannot hold is an error, never a silent truncation.
TARGET_SQL_MODE = "STRICT_TRANS_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"
OB_TIMEOUT_US = 24 * 3600 * 1_000_000


def quote_ident(name: str) -> str:
    """Backtick-quote an identifier, doubling embedded backticks."""
    return "`" + name.replace("`", "``") + "`"


def qualified(db: str, table: str) -> str:
    return f"{quote_ident(db)}.{quote_ident(table)}"


def _typed_error(role: str, message: str, *, transient: bool) -> MigratorError:
    err = _error_class(role)(message)
    err.transient = transient
    return err


def _error_class(role: str) -> type[MigratorError]:
    return SourceError if role == "source" else TargetError


def describe_error(ep: Endpoint, role: str, exc: BaseException) -> str:
    """One line naming the instance and what to do; pymysql messages carry no password."""
    code = error_code(exc)
    where = f"{role} {ep.label} ({ep.display()})"
    if code in AUTH_ERRORS:
        given = f"the password came from {ep.password_from}" if ep.password_from else "no password was given"
        return (f"{where}: access denied for user {ep.user!r} ({given}): check the password (URL, password_file, "
                f"defaults_file, MIGRATOR_PASSWORD_<NAME>, {('MIGRATOR_SOURCE_PASSWORD' if role == 'source' else 'MIGRATOR_TARGET_PASSWORD')} "
                "or --ask-password) and the user's grants")
    if code in PRIVILEGE_ERRORS:
        needs = ("SELECT on every copied table; REPLICATION CLIENT (BINLOG MONITOR) and REPLICATION SLAVE for sync"
                 if role == "source" else "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP on the target databases")
        return f"{where}: user {ep.user!r} lacks a privilege: {exc.args[-1]}: grant it ({needs}) and rerun"
    if code in (2002, 2003):
        return f"{where}: cannot connect: is the server running and is {ep.host}:{ep.port} reachable from here?"
    if code == 2013 or code == 2006:
        return f"{where}: lost the connection ({exc.args[-1] if exc.args else exc})"
    msg = exc.args[-1] if isinstance(exc, pymysql.err.MySQLError) and exc.args else str(exc)
    return f"{where}: {'error ' + str(code) + ': ' if code else ''}{msg}"


_TLS_CONTEXTS: dict[tuple, ssl.SSLContext] = {}
_PREFERRED: set[tuple[str, int]] = set()  # ssl-mode=preferred: (host, port) seen offering TLS by connect()
_TLS_LOCK = threading.Lock()


def _tls_context(ca: str | None, cert: str | None, key: str | None, check_hostname: bool) -> ssl.SSLContext:
    """One SSLContext per TLS setting for the process. pymysql builds one per connection from a
    dict (or in its default preferred mode), loading the system CA store each time: ~35 ms of CPU
    and ~1 MB of native memory per connection, which made a fleet's memory grow with its size."""
    k = (ca, cert, key, check_hostname)
    with _TLS_LOCK:
        ctx = _TLS_CONTEXTS.get(k)
        if ctx is None:
            ctx = ssl.create_default_context(cafile=ca) if ca else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT  # MySQL's self-signed certificates fail the strict checks
            ctx.check_hostname = bool(ca) and check_hostname
            ctx.verify_mode = ssl.CERT_REQUIRED if ca else ssl.CERT_NONE
            if cert:
                ctx.load_cert_chain(cert, keyfile=key)
            _TLS_CONTEXTS[k] = ctx
        return ctx


def ssl_args(ep: Endpoint, remembered: bool = False) -> dict[str, Any]:
    """pymysql TLS arguments for the URL's ssl-mode (MySQL client semantics), on shared contexts.
    remembered: for connections pymysql opens without _Connection (the binlog reader's), ssl-mode
    preferred takes the shared context when connect() last saw this server offer TLS. Only that
    answer is kept, and every connect() renews it: a server that stops offering TLS on the same
    port (a restart, a test's next server) is not forced into it, and "no TLS" is never kept (a
    server that starts offering it gets TLS at once; plain connections cost nothing to find out)."""
    tls = ep.tls
    if tls.mode == "disabled":
        return {"ssl_disabled": True}  # pymysql >= 1.2 otherwise tries TLS (preferred)
    if tls.mode == "preferred" and not tls.ca and not tls.cert:
        if remembered and (ep.host, ep.port) in _PREFERRED:
            return {"ssl": _tls_context(None, None, None, False)}
        return {}  # pymysql's preferred mode finds out (_Connection gives it the shared context)
    verify = tls.mode in ("verify-ca", "verify-identity") or (tls.mode == "preferred" and bool(tls.ca))
    return {"ssl": _tls_context(tls.ca if verify else None, tls.cert, tls.key if tls.cert else None,
                                tls.mode == "verify-identity")}


class _Connection(pymysql.connections.Connection):
    """pymysql's connection, its preferred TLS mode (no ssl argument: TLS when the server offers
    it, unverified) on the process's shared context instead of a new one loading the CA store:
    a fleet's first connections, made at once from the threads of one process, spent seconds
    contending inside OpenSSL for it."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        if isinstance(sslp, dict) and not sslp:
            return _tls_context(None, None, None, False)
        return super()._create_ssl_ctx(sslp)


def _remember_preferred(ep: Endpoint, kwargs: dict[str, Any], conn: pymysql.connections.Connection) -> None:
    if ep.tls.mode == "preferred" and "ssl" not in kwargs and "ssl_disabled" not in kwargs:
        with _TLS_LOCK:
            if conn.server_capabilities & CLIENT.SSL:
                _PREFERRED.add((ep.host, ep.port))
            else:
                _PREFERRED.discard((ep.host, ep.port))


def connect(
    ep: Endpoint,
    role: str,
    *,
    database: str | None = None,
    autocommit: bool = True,
    cursorclass: type = pymysql.cursors.Cursor,
    read_timeout: float | None = None,
    attempts: int = 1,
    conv: dict | None = None,
) -> pymysql.connections.Connection:
    """Open and set up a session; raise SourceError/TargetError with a clear message."""
    ep = ep.resolved()  # a password sent by reference (Dask credentials=worker) is read here

    def _open() -> pymysql.connections.Connection:
        kwargs: dict[str, Any] = dict(
            host=ep.host,
            port=ep.port,
            user=ep.user,
            password=ep.password.get_secret_value() if ep.password else "",
            database=database if database is not None else ep.database,
            charset="utf8mb4",
            autocommit=autocommit,
            connect_timeout=ep.connect_timeout,
            read_timeout=read_timeout,
            cursorclass=cursorclass,
            local_infile=False,
            **ssl_args(ep),
        )
        if conv is not None:
            kwargs["conv"] = conv
        conn = _Connection(**kwargs)
        _remember_preferred(ep, kwargs, conn)
        try:
            setup_session(conn, ep, role)
        except BaseException:
            conn.close()
            raise
        return conn

    try:
        return with_retry(_open, what=f"connect to {role} {ep.label}", attempts=attempts)
    except pymysql.err.MySQLError as exc:
        raise _typed_error(role, describe_error(ep, role, exc), transient=is_transient(exc)) from None
    except OSError as exc:  # network: worth retrying
        raise _typed_error(role, f"{role} {ep.label} ({ep.display()}): {exc}", transient=True) from None


def setup_session(conn: pymysql.connections.Connection, ep: Endpoint, role: str) -> None:
    with conn.cursor() as cur:
        if ep.tls.mode in ("required", "verify-ca", "verify-identity"):
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cur.fetchone()
            if not row or not row[1]:
                raise _error_class(role)(
                    f"{role} {ep.label} ({ep.display()}): ssl-mode={ep.tls.mode} but the server did not "
                    "negotiate TLS: enable TLS on the server or lower ssl-mode"
                )
        cur.execute("SET time_zone = '+00:00'")
        if role == "target":
            cur.execute("SET SESSION sql_mode = %s", (TARGET_SQL_MODE,))
            cur.execute("SET SESSION foreign_key_checks = 0")
            if ep.engine == "oceanbase":
                cur.execute(f"SET ob_query_timeout = {OB_TIMEOUT_US}, ob_trx_timeout = {OB_TIMEOUT_US}")


def query(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def scalar(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    rows = query(conn, sql, args)
    return rows[0][0] if rows else None


@contextmanager
def session(ep: Endpoint, role: str, **kwargs: Any) -> Iterator[pymysql.connections.Connection]:
    conn = connect(ep, role, **kwargs)
    try:
        yield conn
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass
