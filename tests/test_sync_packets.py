"""Sync's own binlog packet reader (migrator/sync/packets.py) against mysql-replication's reader
(the reference), on a real binlog: the same events, fields, positions and row bytes, for every
event type a transaction is made of, the ones it leaves to the library (compressed events, XA,
rotation), a table map that changes with ALTER TABLE, and a binlog without checksums. A damaged
event (its CRC32 fails) is a lost stream, never rows applied."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest
from pymysqlreplication.event import (
    GtidEvent,
    MariadbGtidEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XAPrepareEvent,
    XidEvent,
)
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    PartialUpdateRowsEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from migrator.db import connect, query
from migrator.positions import BinlogPosition, read_position
from migrator.sync.packets import ChecksumMismatch, PacketReader
from migrator.sync.reader import MARIADB_COMPRESSED_EVENTS, GtidStreamReader

ONLY = [RotateEvent, XidEvent, QueryEvent, GtidEvent, MariadbGtidEvent, XAPrepareEvent, WriteRowsEvent,
        UpdateRowsEvent, DeleteRowsEvent, NotImplementedEvent, PartialUpdateRowsEvent]  # what sync asks for


def read_all(reader: type, ep: Any, start: BinlogPosition, **extra: Any) -> list[tuple]:
    """Every event from `start` to the binlog's end, as comparable fields (row events: their
    bytes and rows as the library decodes them)."""
    stream = reader(connection_settings={"host": ep.host, "port": ep.port, "user": ep.user, "passwd": ""},
                    server_id=0x53000000 + ep.port, blocking=False, resume_stream=True, log_file=start.file,
                    log_pos=start.pos, only_events=ONLY, filter_non_implemented_events=False, freeze_schema=True,
                    enable_logging=False, **extra)
    out = []
    try:
        while (ev := stream.fetchone()) is not None:
            out.append((stream.log_file, stream.log_pos, ev.timestamp) + fields(ev))
    finally:
        stream.close()
    return out


def fields(ev: Any) -> tuple:
    if isinstance(ev, (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)):
        kind = next(k for k in (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent) if isinstance(ev, k)).__name__
        body = getattr(ev, "body", None)
        if body is None:  # the library's: the rest of its packet (peeked: decoded below)
            raw = ev.packet.packet
            body = raw._data[raw._position:raw._position + ev.event_size - ev.packet.read_bytes]
        return (kind, ev.table_id, ev.schema, ev.table, ev.flags, ev.columns_present_bitmap,
                getattr(ev, "columns_present_bitmap2", None), body, ev.rows)
    if isinstance(ev, RotateEvent):
        return ("rotate", ev.position, ev.next_binlog)
    if isinstance(ev, (MariadbGtidEvent, GtidEvent)):
        return ("gtid", str(ev.gtid))
    if isinstance(ev, QueryEvent):
        return ("query", ev.schema, ev.query)
    if isinstance(ev, XidEvent):
        return ("xid", ev.xid)
    if isinstance(ev, XAPrepareEvent):
        return ("xa prepare", ev.one_phase, ev.xid_gtrid, ev.xid_bqual, ev.xid_format_id)
    assert isinstance(ev, NotImplementedEvent), ev
    return ("not implemented", ev.event_type)


@pytest.fixture(scope="module")
def compressing(mariadb_factory):
    """A MariaDB of its own: log_bin_compress for events over 256 bytes, rotations, a checksum
    setting changed (nothing here may touch the shared sources' binlogs)."""
    return mariadb_factory({"log-bin-compress": "ON", "log-bin-compress-min-len": "256"}, name="packets")


def test_packet_reader_yields_what_the_library_yields(compressing):
    ep = compressing
    with connect(ep, "source") as c:
        start = read_position(c)
        for sql in ["CREATE DATABASE p", ("CREATE TABLE p.t (id INT PRIMARY KEY, v VARCHAR(400), d DECIMAL(10,2), "
                                          "ts DATETIME(6), b VARBINARY(8))"),
                    "INSERT INTO p.t VALUES (1, 'a', 1.5, '2024-01-01 00:00:00.5', x'00'), (2, NULL, -2, NOW(6), NULL)",
                    "UPDATE p.t SET d = d + 1", "DELETE FROM p.t WHERE id = 2",
                    "BEGIN", "INSERT INTO p.t (id) VALUES (3)", "SAVEPOINT s", "INSERT INTO p.t (id) VALUES (4)",
                    "ROLLBACK TO SAVEPOINT s", "COMMIT",
                    "ALTER TABLE p.t ADD COLUMN n INT NULL",  # a new table map for the same table
                    "INSERT INTO p.t (id, n) VALUES (5, 7)",
                    "INSERT INTO p.t (id, v) VALUES (6, REPEAT('x', 400))",  # over 256 bytes: a compressed event
                    "XA START 'x1'", "INSERT INTO p.t (id) VALUES (8)", "XA END 'x1'", "XA PREPARE 'x1'",
                    "XA COMMIT 'x1'", "FLUSH BINARY LOGS", "UPDATE p.t SET n = 1 WHERE id = 1"]:
            query(c, sql)
        packets, library = read_all(PacketReader, ep, start), read_all(GtidStreamReader, ep, start)
        # the same binlog without checksums (the setting rotates to a new file)
        query(c, "SET GLOBAL binlog_checksum = NONE")
        plain = read_position(c)
        query(c, "INSERT INTO p.t (id, v) VALUES (9, 'plain'), (10, 'plain')")
        query(c, "UPDATE p.t SET v = 'again' WHERE id >= 9")
        no_crc = read_all(PacketReader, ep, plain), read_all(GtidStreamReader, ep, plain)
        query(c, "SET GLOBAL binlog_checksum = CRC32")
    assert packets == library
    kinds = [e[3] for e in packets]
    assert {"WriteRowsEvent", "UpdateRowsEvent", "DeleteRowsEvent", "gtid", "query", "xid", "rotate",
            "xa prepare", "not implemented"} <= set(kinds)
    # the compressed rows event is handed over (sync refuses it), never skipped
    assert any(e[3] == "not implemented" and e[4] in MARIADB_COMPRESSED_EVENTS for e in packets)
    writes = [e for e in packets if e[3] == "WriteRowsEvent"]
    assert len(writes[-2][-1][0]["values"]) == 6  # the map after ALTER TABLE: six columns
    assert no_crc[0] == no_crc[1] and [e[3] for e in no_crc[0]].count("UpdateRowsEvent") == 1


def test_a_damaged_event_is_a_lost_stream_not_rows(compressing):
    """One flipped bit in a row event's bytes: its CRC32 fails, the reader raises a lost-stream
    error (2013: sync reads again from its checkpoint) instead of handing over wrong rows."""
    ep = compressing
    with connect(ep, "source") as c:
        query(c, "CREATE DATABASE IF NOT EXISTS q")
        query(c, "CREATE TABLE q.t (id INT PRIMARY KEY, v INT)")
        start = read_position(c)
        query(c, "INSERT INTO q.t VALUES (1, 100)")

    class Damaging(PacketReader):
        def _packet(self) -> bytes:
            data = super()._packet()
            if len(data) > 20 and data[5] in (0x17, 0x1E):  # a WRITE_ROWS event: the last value's byte
                data = data[:-5] + bytes([data[-5] ^ 1]) + data[-4:]
            return data

    assert read_all(PacketReader, ep, start)  # undamaged: read
    with pytest.raises(ChecksumMismatch) as err:
        read_all(Damaging, ep, start)
    assert isinstance(err.value, pymysql.err.OperationalError) and err.value.args[0] == 2013
    assert "CRC32" in err.value.args[1]


def test_the_packet_reader_is_the_default_and_the_library_one_a_switch(monkeypatch):
    from migrator.sync.contracts import SyncOptions

    monkeypatch.delenv("MIGRATOR_SYNC_READER", raising=False)
    assert SyncOptions().packet_reader
    monkeypatch.setenv("MIGRATOR_SYNC_READER", "library")
    assert not SyncOptions().packet_reader
    assert SyncOptions(packet_reader=True).packet_reader
