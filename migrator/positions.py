"""Binlog positions: where a source's binlog stands, read the same way by copy, sync and cutover."""

from __future__ import annotations

import time

import pymysql
from pydantic import BaseModel

from .db import query


class BinlogPosition(BaseModel):
    """A point in one source's binlog. `gtid` is MariaDB's gtid_binlog_pos or MySQL's
    gtid_executed (empty when the source has no GTID)."""

    file: str
    pos: int
    gtid: str = ""
    flavor: str = "mariadb"
    server_id: int | None = None
    at: float = 0.0  # unix time it was read

    def key(self) -> tuple[int, int]:
        """Orderable (file sequence number, offset) within one source."""
        return (int(self.file.rsplit(".", 1)[-1]), self.pos)


def server_flavor(conn: pymysql.connections.Connection) -> str:
    version = query(conn, "SELECT VERSION()")[0][0]
    return "mariadb" if "mariadb" in str(version).lower() else "mysql"


def read_position(conn: pymysql.connections.Connection, flavor: str | None = None) -> BinlogPosition:
    """The source's current binlog file/offset and GTID state. Raises pymysql errors as-is."""
    flavor = flavor or server_flavor(conn)
    rows = query(conn, "SHOW MASTER STATUS")
    if not rows:
        raise RuntimeError("binary logging is off on this server (SHOW MASTER STATUS is empty)")
    file, pos = rows[0][0], int(rows[0][1])
    # the GTID state and file/offset are two reads: a commit between them would put the GTID ahead
    # of the offset (a GTID start would skip that transaction). Read until both agree.
    for _ in range(STABLE_READS):
        gtid = _gtid_state(conn, flavor)
        again = query(conn, "SHOW MASTER STATUS")
        if (again[0][0], int(again[0][1])) == (file, pos):
            break
        file, pos = again[0][0], int(again[0][1])
    else:
        gtid = gtid_at(conn, flavor, file, pos)
    server_id = int(query(conn, "SELECT @@server_id")[0][0])
    return BinlogPosition(file=file, pos=pos, gtid=gtid, flavor=flavor, server_id=server_id, at=time.time())


STABLE_READS = 20


def read_head(conn: pymysql.connections.Connection, flavor: str, server_id: int | None = None,
              previous: tuple[BinlogPosition, dict[str, str]] | None = None) -> tuple[BinlogPosition, dict[str, str]]:
    """Sync's poll of a source: where its binlog ends now, and its binlog settings. A fleet of
    idle sources is polled every few seconds each, so an unchanged end (`previous`, the last
    answer) costs one statement: the GTID state (informational here: lag in transactions) and
    the settings are re-read when the binlog has moved, before any new event is read."""
    rows = query(conn, "SHOW MASTER STATUS")
    if not rows:
        raise RuntimeError("binary logging is off on this server (SHOW MASTER STATUS is empty)")
    file, offset = rows[0][0], int(rows[0][1])
    if previous is not None and (previous[0].file, previous[0].pos) == (file, offset):
        return previous[0].model_copy(update={"at": time.time()}), previous[1]
    gtid_var = "@@gtid_binlog_pos" if flavor == "mariadb" else "@@gtid_executed"
    row = query(conn, f"SELECT {gtid_var}, @@global.binlog_format, @@global.binlog_row_image")[0]
    pos = BinlogPosition(file=file, pos=offset, gtid=str(row[0] or "").replace("\n", ""), flavor=flavor,
                         server_id=server_id, at=time.time())
    return pos, {"binlog_format": str(row[1]), "binlog_row_image": str(row[2])}


def _gtid_state(conn: pymysql.connections.Connection, flavor: str) -> str:
    if flavor == "mariadb":
        return query(conn, "SELECT @@gtid_binlog_pos")[0][0] or ""
    return (query(conn, "SELECT @@gtid_executed")[0][0] or "").replace("\n", "")


def gtid_at(conn: pymysql.connections.Connection, flavor: str, file: str, pos: int) -> str:
    """MariaDB: the GTID state at exactly file:pos (the server scans that file up to pos)."""
    if flavor != "mariadb":
        return _gtid_state(conn, flavor)
    return query(conn, "SELECT BINLOG_GTID_POS(%s, %s)", (file, pos))[0][0] or ""


def read_start_position(conn: pymysql.connections.Connection, flavor: str | None = None) -> BinlogPosition:
    """Where sync must start replaying for a copy that begins now: every transaction before it
    is visible to any read that starts afterwards. A plain SHOW MASTER STATUS can name a
    transaction already in the binlog but not yet committed in InnoDB: a chunk read at that
    moment misses its rows and sync, starting after it, never replays them. MariaDB's consistent
    snapshot reports the binlog position that matches what it sees (binlog_snapshot_file /
    _position), so everything before it is committed in the engine; the GTID state is taken at
    exactly that position. Raises RuntimeError when binary logging is off."""
    flavor = flavor or server_flavor(conn)
    if flavor != "mariadb":
        return read_position(conn, flavor)  # MySQL: no snapshot position (log_status needs BACKUP_ADMIN)
    if not query(conn, "SHOW MASTER STATUS"):
        raise RuntimeError("binary logging is off on this server (SHOW MASTER STATUS is empty)")
    query(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
    try:
        status = {str(k).lower(): v for k, v in query(conn, "SHOW STATUS LIKE 'binlog_snapshot_%'")}
    finally:
        query(conn, "COMMIT")
    file, pos = status["binlog_snapshot_file"], int(status["binlog_snapshot_position"])
    server_id = int(query(conn, "SELECT @@server_id")[0][0])
    return BinlogPosition(file=file, pos=pos, gtid=gtid_at(conn, flavor, file, pos), flavor=flavor,
                          server_id=server_id, at=time.time())
