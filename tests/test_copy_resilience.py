"""Refusals are reported at once, never retried: a wrong password or a missing grant fails `migrator
copy` in about a second, naming the instance and what to do; a server that is down is still
retried with backoff. Classification is checked on errors the real servers raise."""

from __future__ import annotations

import uuid

import pymysql
import pytest

from migrator.engine.retry import is_transient_or_typed as _retryable
from migrator.db import connect, error_code, is_transient, query, quote_ident, session
from migrator.endpoint import Endpoint, parse_url
from migrator.errors import SourceError, TargetError
from migrator.sandbox import free_port

from conftest import drop_databases
from copy_helpers import assert_same_rows, execute, make_plan, run_cli, table_plan, write_plan


@pytest.fixture
def limited(source, target, unique_db):
    """A source database with `ok` (readable) and `secret` (visible through INSERT, not readable),
    and a user granted just that plus BINLOG MONITOR. Yields (db, tdb, user, password)."""
    db, tdb = unique_db("ls"), unique_db("lt")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
            "CREATE TABLE ok (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO ok SELECT seq, CONCAT('v', seq) FROM seq_1_to_300",
            "CREATE TABLE secret (id INT PRIMARY KEY, pin INT)",
            "INSERT INTO secret SELECT seq, seq * 7 FROM seq_1_to_40")
    user, password = f"cp_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    with session(source, "source") as conn:
        query(conn, "CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        query(conn, f"GRANT SELECT ON {quote_ident(db)}.ok TO %s@'%%'", (user,))
        query(conn, f"GRANT INSERT ON {quote_ident(db)}.secret TO %s@'%%'", (user,))
        query(conn, "GRANT BINLOG MONITOR ON *.* TO %s@'%%'", (user,))
    yield db, tdb, user, password
    with session(source, "source") as conn:
        query(conn, "DROP USER %s@'%%'", (user,))
    drop_databases(source, "source", [db])
    drop_databases(target, "target", [tdb])


def _as_user(source: Endpoint, user: str, password: str | None = None) -> Endpoint:
    auth = f"{user}:{password}" if password else user
    return parse_url(f"mysql://{auth}@{source.host}:{source.port}?name=limited", "source")


def _plan(tmp_path, source, target, db, tdb, user, tables=("ok",)):
    conn = connect(source, "source")
    plans = [table_plan(conn, "limited", db, t, tdb) for t in tables]
    conn.close()
    path = write_plan(make_plan([_as_user(source, user)], target, plans), tmp_path / "plan.yaml")
    return path, plans


def _copy(path, tmp_path, env):
    """copy with 5 retries allowed: every retry is logged ("retry N/4: ..."), so a refusal that was
    retried shows in the output (a time bound would fail on a loaded machine: CI's took 6 s to start)."""
    return run_cli("copy", str(path), "--workdir", str(tmp_path / "work"), "--retries", "5", env=env)


def test_wrong_source_password_fails_at_once(limited, source, target, tmp_path):
    db, tdb, user, password = limited
    path, _ = _plan(tmp_path, source, target, db, tdb, user)
    out = _copy(path, tmp_path, {"MIGRATOR_SOURCE_PASSWORD": "not-" + password})
    text = out.stdout + out.stderr
    assert out.returncode == 4, text
    assert "retry" not in text.lower(), text
    assert "source limited" in text and "access denied" in text and user in text
    assert "check the password" in text and "MIGRATOR_SOURCE_PASSWORD" in text
    assert password not in text and "Traceback" not in text


def test_wrong_target_password_fails_at_once(source, target, unique_db, tmp_path):
    db, tdb = unique_db("ws"), unique_db("wt")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
        conn = connect(source, "source")
        plan = make_plan([source], target, [table_plan(conn, source.label, db, "t", tdb)])
        conn.close()
        path = write_plan(plan, tmp_path / "plan.yaml")
        out = _copy(path, tmp_path, {"MIGRATOR_TARGET_PASSWORD": "wrong-secret"})
        text = out.stdout + out.stderr
        assert out.returncode == 5, text
        assert "retry" not in text.lower(), text
        assert f"target {target.label}" in text and "access denied" in text and "MIGRATOR_TARGET_PASSWORD" in text
        assert "wrong-secret" not in text
    finally:
        drop_databases(source, "source", [db])


def test_missing_select_grant_fails_at_once_then_resumes_once_granted(limited, source, target, tmp_path):
    db, tdb, user, password = limited
    path, plans = _plan(tmp_path, source, target, db, tdb, user, tables=("ok", "secret"))
    env = {"MIGRATOR_SOURCE_PASSWORD": password}
    out = _copy(path, tmp_path, env)
    text = out.stdout + out.stderr
    assert out.returncode == 4, text
    assert "retry" not in text.lower(), text
    assert "source limited" in text and "lacks a privilege" in text and "SELECT command denied" in text
    assert "secret" in text and "grant it" in text and password not in text
    assert assert_same_rows(source, target, plans[0]) == 300  # the refused table fails alone
    assert "copy did not finish for 1 of 2 table(s)" in text

    with session(source, "source") as conn:  # what the message says to do
        query(conn, f"GRANT SELECT ON {quote_ident(db)}.secret TO %s@'%%'", (user,))
    again = _copy(path, tmp_path, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [assert_same_rows(source, target, tp) for tp in plans] == [300, 40]


def test_server_down_is_still_retried(source, target, unique_db, tmp_path):
    """The other side of the line: a connection refused is transient, retried, then reported."""
    down = parse_url(f"mysql://root@127.0.0.1:{free_port()}?name=down", "source")
    conn = connect(source, "source")
    db = unique_db("dn")
    try:
        execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"USE {quote_ident(db)}",
                "CREATE TABLE t (id INT PRIMARY KEY)")
        tp = table_plan(conn, "down", db, "t", unique_db("dt"))
    finally:
        conn.close()
        drop_databases(source, "source", [db])
    path = write_plan(make_plan([down], target, [tp]), tmp_path / "plan.yaml")
    out = run_cli("copy", str(path), "--workdir", str(tmp_path / "work"), "--retries", "2")
    text = out.stdout + out.stderr
    assert out.returncode == 4, text
    assert "retry 1/1" in text and "source down" in text and "cannot connect" in text


def _raised(conn, sql: str) -> pymysql.err.MySQLError:
    with pytest.raises(pymysql.err.MySQLError) as err:
        query(conn, sql)
    return err.value


def test_refusals_are_not_transient_and_outages_are(limited, source, target):
    """Errors raised by the real servers, as db.is_transient and copy's retry loop see them."""
    db, tdb, user, password = limited
    secret = f"{quote_ident(db)}.secret"
    with pytest.raises(pymysql.err.MySQLError) as denied:
        pymysql.connect(host=source.host, port=source.port, user=user, password="wrong")
    refusals = [denied.value]
    with session(_as_user(source, user, password), "source") as conn:
        refusals += [_raised(conn, f"SELECT * FROM {secret}"), _raised(conn, "USE no_such_database_here")]
        execute(source, "source", f"GRANT SELECT (id) ON {secret} TO '{user}'@'%'")
        refusals.append(_raised(conn, f"SELECT pin FROM {secret}"))
    with session(source, "source") as conn:
        refusals += [_raised(conn, f"SELECT * FROM {quote_ident(db)}.gone"), _raised(conn, "USE no_such_database_here")]
    assert [error_code(e) for e in refusals] == [1045, 1142, 1044, 1143, 1146, 1049]
    for exc in refusals:
        assert not is_transient(exc) and not _retryable(exc), exc

    with pytest.raises(SourceError) as refused:
        connect(_as_user(source, user, "wrong"), "source")
    assert not refused.value.transient and not _retryable(refused.value)
    with pytest.raises(TargetError) as tgt:
        connect(parse_url(f"oceanbase://root:wrong@{target.host}:{target.port}", "target"), "target")
    assert not tgt.value.transient and "access denied" in str(tgt.value)
    with pytest.raises(SourceError) as down:
        connect(parse_url(f"mysql://root@127.0.0.1:{free_port()}", "source"), "source")
    assert down.value.transient and _retryable(down.value) and "cannot connect" in str(down.value)
