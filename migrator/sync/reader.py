"""The binlog as sync reads it: mysql-replication's stream reader made reliable for a MariaDB
GTID start, the events it cannot decode (never skipped unless known to carry no rows), and the
statements a row-format binlog keeps inside a transaction."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pymysql
from pymysql.constants.COMMAND import COM_BINLOG_DUMP
from pymysqlreplication import BinLogStreamReader

from ..workdir import WorkDir

# MariaDB's QUERY_COMPRESSED_EVENT and {WRITE,UPDATE,DELETE}_ROWS_COMPRESSED_EVENT(_V1)
MARIADB_COMPRESSED_EVENTS = frozenset(range(0xA5, 0xAC))
TRANSACTION_PAYLOAD_EVENT = 40  # MySQL 8.0.20+ binlog_transaction_compression=ON
# event types the library does not decode that carry no row change: anything else stops sync
HARMLESS_UNDECODED_EVENTS = frozenset({
    7,    # SLAVE_EVENT (never written)
    28,   # IGNORABLE_LOG_EVENT
    34,   # ANONYMOUS_GTID_LOG_EVENT (MySQL without GTIDs: a transaction's start marker)
    36,   # TRANSACTION_CONTEXT_EVENT (group replication)
    37,   # VIEW_CHANGE_EVENT (group replication)
    41,   # HEARTBEAT_LOG_EVENT_V2
})


def undecodable_event_reason(event_type: int) -> str | None:
    """Why an event the binlog reader cannot decode must stop sync (its changes would be lost
    silently), or None when it carries no row change."""
    if event_type in HARMLESS_UNDECODED_EVENTS:
        return None
    if event_type in MARIADB_COMPRESSED_EVENTS:
        return ("a compressed binlog event (log_bin_compress=ON) that sync cannot decode. SET GLOBAL "
                "log_bin_compress=OFF (and in the server config), then re-copy the tables written while it was on")
    if event_type == TRANSACTION_PAYLOAD_EVENT:
        return ("a compressed transaction payload (binlog_transaction_compression=ON) that sync cannot decode. "
                "SET GLOBAL binlog_transaction_compression=OFF (and in the server config), then re-copy the tables "
                "written while it was on")
    if event_type == 26:
        return ("an INCIDENT event: the source says changes may be missing from its binlog here. Re-copy the "
                "tables of this source")
    return (f"a binlog event of unknown type {event_type} (a newer server?) that sync cannot decode: it may carry "
            "row changes. Report it, or re-copy the tables written after it")


class GtidStreamReader(BinLogStreamReader):
    """mysql-replication 1.0.x's reader with two fixes that make a MariaDB GTID start reliable.

    1. Its MariaDB COM_BINLOG_DUMP packet declares 14 payload bytes but sends 15 (a 4-byte
       "empty file name"). The stray byte stays unread on the server's socket, so when the server
       closes the dump connection the kernel sends a TCP reset instead of a FIN, and the events
       still buffered on our side are thrown away: "Lost connection (104, reset by peer)" a few
       MB into any replay longer than the socket buffers.
    2. On that error (2013/2006) the library reconnects silently with its ORIGINAL auto_position
       (it never advances it), so the replay starts over from the first GTID: with (1) this
       looped over the whole binlog (582k events) forever. A reconnect is refused here instead:
       the error reaches SourceSync, which flushes and resumes from its checkpoint, a transaction
       boundary, by the GTID of the last committed transaction (file/offset likewise).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._connects = 0

    def _BinLogStreamReader__connect_to_stream(self) -> None:  # overrides the name-mangled private method
        self._connects += 1
        if self._connects > 1:
            raise pymysql.err.OperationalError(2013, "binlog stream lost; resuming from the sync checkpoint")
        BinLogStreamReader._BinLogStreamReader__connect_to_stream(self)  # type: ignore[attr-defined]

    def _BinLogStreamReader__set_mariadb_settings(self) -> bytes:  # overrides the name-mangled private method
        cur = self._stream_connection.cursor()
        if self.auto_position is not None:
            cur.execute("SET @slave_connect_state = %s", (self.auto_position,))
        cur.execute("SET @slave_gtid_strict_mode=1")
        cur.execute("SET @slave_gtid_ignore_duplicates=0")
        cur.close()
        flags = 0 if self._BinLogStreamReader__blocking else 0x01  # BINLOG_DUMP_NON_BLOCK
        # COM_BINLOG_DUMP: command, position 4, flags, server id, empty file name (= start by GTID)
        payload = bytes([COM_BINLOG_DUMP]) + struct.pack("<IHI", 4, flags, self._BinLogStreamReader__server_id)
        return struct.pack("<i", len(payload)) + payload  # 3-byte length + sequence id 0


# the overrides above lean on the 1.0.x private names: if they change, fail loudly, not silently
if not all(hasattr(BinLogStreamReader, f"_BinLogStreamReader__{n}") for n in ("set_mariadb_settings", "connect_to_stream")):
    raise ImportError("mysql-replication's private stream methods changed: GtidStreamReader needs updating")


def stream_server_id(workdir: WorkDir, source: str) -> int:
    """A replica server_id no real server uses: high range, distinct per work dir and source."""
    return 0x40000000 | (zlib.crc32(f"{workdir.root.resolve()}|{source}".encode()) & 0x3FFFFFFF)


def is_savepoint_statement(sql: str) -> bool:
    """SAVEPOINT x, ROLLBACK TO [SAVEPOINT] x, RELEASE SAVEPOINT x: statements a row-format binlog
    keeps inside their transaction (between BEGIN and its XID)."""
    words = sql.split(None, 2)
    first = words[0].upper() if words else ""
    second = words[1].upper() if len(words) > 1 else ""
    return first == "SAVEPOINT" or (first == "ROLLBACK" and second in ("TO", "WORK")
                                    and "TO" in sql.upper().split()) or (first == "RELEASE" and second == "SAVEPOINT")
