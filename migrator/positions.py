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
    if flavor == "mariadb":
        gtid = query(conn, "SELECT @@gtid_binlog_pos")[0][0] or ""
    else:
        gtid = (query(conn, "SELECT @@gtid_executed")[0][0] or "").replace("\n", "")
    server_id = int(query(conn, "SELECT @@server_id")[0][0])
    return BinlogPosition(file=file, pos=pos, gtid=gtid, flavor=flavor, server_id=server_id, at=time.time())
