"""Connections to real servers: session setup, clear errors, retry on a dropped connection."""

from __future__ import annotations

import pytest

from migrator.db import connect, query, scalar, with_retry
from migrator.endpoint import parse_url
from migrator.errors import SourceError, TargetError


def test_target_session_is_utc_utf8mb4_with_long_timeouts(target):
    conn = connect(target, "target")
    try:
        assert scalar(conn, "SELECT @@session.time_zone") == "+00:00"
        assert scalar(conn, "SELECT @@character_set_client") == "utf8mb4"
        assert int(scalar(conn, "SELECT @@ob_query_timeout")) >= 3600 * 1_000_000
    finally:
        conn.close()


def test_wrong_password_is_one_clear_line_without_the_password(source, src_conn):
    with src_conn.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS 'pwtest'@'127.0.0.1' IDENTIFIED BY 'right-one'")
    bad = parse_url(f"mysql://pwtest:wrong-one@127.0.0.1:{source.port}?name=src1", "source")
    with pytest.raises(SourceError) as exc:
        connect(bad, "source")
    msg = str(exc.value)
    assert "src1" in msg and "access denied" in msg and "pwtest" in msg
    assert "wrong-one" not in msg and "right-one" not in msg


def test_unreachable_host_names_instance_and_port():
    from migrator.sandbox import free_port

    port = free_port()  # nothing listens there
    ep = parse_url(f"oceanbase://root@127.0.0.1:{port}?connect_timeout=2", "target")
    with pytest.raises(TargetError) as exc:
        connect(ep, "target")
    assert f"127.0.0.1:{port}" in str(exc.value) and "cannot connect" in str(exc.value)


def test_retry_survives_a_real_dropped_connection(source, src_conn):
    """A session killed by the server mid-work is retried on a fresh connection."""
    state = {"conn": connect(source, "source"), "attempts": 0}
    victim_id = scalar(state["conn"], "SELECT CONNECTION_ID()")
    with src_conn.cursor() as cur:
        cur.execute(f"KILL {int(victim_id)}")

    def work():
        state["attempts"] += 1
        if state["attempts"] > 1:
            state["conn"] = connect(source, "source")
        return scalar(state["conn"], "SELECT 41 + 1")

    assert with_retry(work, what="probe", base_delay=0.05) == 42
    assert state["attempts"] == 2
    state["conn"].close()


def test_retry_gives_up_on_non_transient_errors(src_conn):
    calls = []

    def work():
        calls.append(1)
        return query(src_conn, "SELECT * FROM no_such_db.no_such_table")

    with pytest.raises(Exception) as exc:
        with_retry(work, what="probe", base_delay=0.01)
    assert len(calls) == 1 and "no_such_db" in str(exc.value)
