"""The binlog stream's packets read and parsed by sync itself (issue 16: sync's CPU per change).

mysql-replication still connects, registers and sends COM_BINLOG_DUMP (GtidStreamReader, with its
fixes), but reading every packet through it cost more than everything else sync does for a small
transaction: a packet wrapper object, an event object, a dozen small reads per event, a table map
re-read per transaction. Here the events a transaction is made of are read straight from the
socket and parsed from their bytes:

- GTID (MariaDB's and MySQL's), XID, QUERY, ROTATE: the few fields sync uses;
- FORMAT_DESCRIPTION: the server version and each event type's post-header length (a type whose
  length differs from the one parsed here goes to the library);
- TABLE_MAP: parsed once per distinct body (the library's own parse, kept by its bytes: a table's
  map is byte-identical in every transaction until its definition changes);
- WRITE/UPDATE/DELETE_ROWS v1 and v2: the header and column bitmaps; the rows stay bytes for
  rowdecode's generated readers (the library decodes them only for tables those cannot read).

Every other event type goes through the library's classes exactly as before (XA prepare, partial
JSON updates, types it does not implement: sync refuses those that may carry rows; the types the
library drops unread only move the position). Events are checked against their CRC32 when the binlog has checksums; a mismatch is a
lost stream (read again from the checkpoint), never a change applied from damaged bytes.

SyncOptions.packet_reader=False (or MIGRATOR_SYNC_READER=library) switches back to the library
reading every packet.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pymysql
from pymysql.protocol import MysqlPacket
from pymysqlreplication.event import (
    FormatDescriptionEvent,
    GtidEvent,
    MariadbGtidEvent,
    NotImplementedEvent,
    QueryEvent,
    RotateEvent,
    XidEvent,
)
from pymysqlreplication.packet import BinLogPacketWrapper
from pymysqlreplication.row_event import (
    DeleteRowsEvent,
    TableMapEvent,
    UpdateRowsEvent,
    WriteRowsEvent,
)

from .reader import GtidStreamReader

QUERY, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP = 0x02, 0x04, 0x0F, 0x10, 0x13
WRITE_V1, UPDATE_V1, DELETE_V1, WRITE_V2, UPDATE_V2, DELETE_V2 = 0x17, 0x18, 0x19, 0x1E, 0x1F, 0x20
MYSQL_GTID, MARIADB_GTID = 0x21, 0xA2
ROWS_V2 = frozenset({WRITE_V2, UPDATE_V2, DELETE_V2})
MAX_PACKET = 0xFFFFFF
HEADER = struct.Struct("<IBIIIH")  # after the OK byte: timestamp, type, server id, size, next position, flags
STREAM_LOST = (2013, 2006)  # what the library treats as a lost stream (it reconnects; GtidStreamReader refuses)
TABLE_MAPS_KEPT = 4096  # distinct table-map bodies kept per source (a table's map changes with its definition)


class ChecksumMismatch(pymysql.err.OperationalError):
    """An event whose CRC32 does not match its bytes: read as a lost stream (2013), so sync resumes
    from its checkpoint and reads the event again."""


# ------------------------------------------------------------------ the events sync is handed
# Subclasses of the library's classes (sync's isinstance checks hold), filled from the bytes: their
# __init__ replaces the library's (which reads the event from a packet wrapper).

class PacketXid(XidEvent):
    def __init__(self, timestamp: int, xid: int):
        self.timestamp = timestamp
        self.xid = xid


class PacketMariadbGtid(MariadbGtidEvent):
    def __init__(self, timestamp: int, gtid: str, flags: int):
        self.timestamp = timestamp
        self.gtid = gtid
        self.flags = flags


class PacketGtid(GtidEvent):
    def __init__(self, timestamp: int, sid: bytes, gno: int):
        self.timestamp = timestamp
        self.sid = sid
        self.gno = gno


class PacketRotate(RotateEvent):
    def __init__(self, timestamp: int, position: int, next_binlog: str):
        self.timestamp = timestamp
        self.position = position
        self.next_binlog = next_binlog


class PacketQuery(QueryEvent):
    def __init__(self, timestamp: int, schema: bytes, query: str):
        self.timestamp = timestamp
        self.schema = schema
        self.query = query


class PacketRows:
    """A rows event's header fields; its rows as bytes (`body`), decoded by rowdecode. `rows`
    decodes them with the library (tables rowdecode cannot read) from the packet kept."""

    kind = ""

    def __init__(self, reader: PacketReader, data: bytes, timestamp: int, table_id: int, flags: int, table: Any,
                 present: bytes, present2: bytes | None, body: bytes):
        self._reader = reader
        self._data = data
        self.timestamp = timestamp
        self.table_id = table_id
        self.flags = flags
        self.schema = table.schema
        self.table = table.table
        self.columns_present_bitmap = present
        self.columns_present_bitmap2 = present2
        self.body = body

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self._reader.library_event(self._data).rows


class PacketWriteRows(PacketRows, WriteRowsEvent):
    kind = "insert"


class PacketUpdateRows(PacketRows, UpdateRowsEvent):
    kind = "update"


class PacketDeleteRows(PacketRows, DeleteRowsEvent):
    kind = "delete"


ROWS_CLASS = {WRITE_V1: PacketWriteRows, WRITE_V2: PacketWriteRows, UPDATE_V1: PacketUpdateRows,
              UPDATE_V2: PacketUpdateRows, DELETE_V1: PacketDeleteRows, DELETE_V2: PacketDeleteRows}
# the library's class of each event type parsed here: parsed only when the caller asked for that class
LIBRARY_CLASS = {ROTATE: RotateEvent, XID: XidEvent, MARIADB_GTID: MariadbGtidEvent, MYSQL_GTID: GtidEvent, QUERY: QueryEvent,
                 WRITE_V1: WriteRowsEvent, WRITE_V2: WriteRowsEvent, UPDATE_V1: UpdateRowsEvent,
                 UPDATE_V2: UpdateRowsEvent, DELETE_V1: DeleteRowsEvent, DELETE_V2: DeleteRowsEvent}
KNOWN_POST_HEADER = {QUERY: 13, TABLE_MAP: 8, ROTATE: 8, **{t: 10 if t in ROWS_V2 else 8 for t in ROWS_CLASS}}
EVENT_MAP = BinLogPacketWrapper._BinLogPacketWrapper__event_map  # type -> the library's class


def length_coded(buf: bytes, pos: int) -> tuple[int, int]:
    """A length-coded integer (1, 3, 4 or 9 bytes) and the position after it."""
    c = buf[pos]
    if c < 251:
        return c, pos + 1
    if c == 252:
        return int.from_bytes(buf[pos + 1:pos + 3], "little"), pos + 3
    if c == 253:
        return int.from_bytes(buf[pos + 1:pos + 4], "little"), pos + 4
    if c == 254:
        return int.from_bytes(buf[pos + 1:pos + 9], "little"), pos + 9
    raise ValueError(f"a length-coded integer starting with {c:#x}")


class PacketReader(GtidStreamReader):
    """GtidStreamReader whose fetchone reads the stream's packets itself (see the module doc).

    `table_maps`: parsed table maps by table filters and body bytes, kept by the caller across passes."""

    def __init__(self, *args: Any, table_maps: dict[tuple, dict[bytes, Any]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.end_log_pos or self.skip_to_timestamp:
            raise ValueError("PacketReader reads whole binlogs: no end_log_pos or skip_to_timestamp")
        allowed = self._BinLogStreamReader__allowed_events
        self._parsed = frozenset(t for t, cls in LIBRARY_CLASS.items() if cls in allowed) | {TABLE_MAP}
        if FormatDescriptionEvent not in allowed:  # else the caller wants the library's event
            self._parsed |= {FORMAT_DESCRIPTION}
        self._in_packet = self._BinLogStreamReader__allowed_events_in_packet
        only_tables, only_schemas = self._BinLogStreamReader__only_tables, self._BinLogStreamReader__only_schemas
        self._only_tables = None if only_tables is None else frozenset(only_tables)
        self._only_schemas = None if only_schemas is None else frozenset(only_schemas)
        self._ignored_tables = frozenset(self._BinLogStreamReader__ignored_tables or ())
        self._ignored_schemas = frozenset(self._BinLogStreamReader__ignored_schemas or ())
        # the parsed maps of tables kept (None: filtered out) hold for these filters only
        filters = (self._only_tables, self._only_schemas, self._ignored_tables, self._ignored_schemas)
        self._table_maps = (table_maps if table_maps is not None else {}).setdefault(filters, {})
        self._checksum = 0  # bytes of CRC32 after each event (set once connected)
        self._odd: frozenset[int] = frozenset()  # types whose post-header differs from the one parsed here

    # ---------------------------------------------------------- packets

    def _connect(self) -> None:
        self._BinLogStreamReader__connect_to_stream()
        self._checksum = 4 if self._BinLogStreamReader__use_checksum else 0
        conn = self._stream_connection
        if getattr(conn, "_current_timeout", None) != conn._read_timeout:
            conn._sock.settimeout(conn._read_timeout)
            if hasattr(conn, "_current_timeout"):
                conn._current_timeout = conn._read_timeout

    def _packet(self) -> bytes:
        """One protocol packet's payload (joined when over 16 MB), as pymysql's _read_packet reads it."""
        conn = self._stream_connection
        read = conn._rfile.read
        parts = []
        while True:
            try:
                header = read(4)
                if len(header) < 4:
                    raise EOFError
                n = header[0] | (header[1] << 8) | (header[2] << 16)
                if header[3] != conn._next_seq_id:
                    self._out_of_sequence(conn, header[3])
                conn._next_seq_id = (header[3] + 1) & 0xFF
                data = read(n)
                if len(data) < n:
                    raise EOFError
            except (OSError, EOFError) as exc:
                conn._force_close()
                raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"
                                                   + (f" ({exc})" if isinstance(exc, OSError) else "")) from None
            if n < MAX_PACKET:
                break
            parts.append(data)
        if parts:
            parts.append(data)
            data = b"".join(parts)
        if data and data[0] == 0xFF:
            MysqlPacket(data, conn.encoding).raise_for_error()
        return data

    @staticmethod
    def _out_of_sequence(conn: Any, seq: int) -> None:
        conn._force_close()
        if seq == 0:  # MariaDB sends an error packet with sequence 0 when it shuts down
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        raise pymysql.err.InternalError(f"Packet sequence number wrong - got {seq} expected {conn._next_seq_id}")

    def fetchone(self) -> Any:
        while True:
            if not self._BinLogStreamReader__connected_stream:
                self._connect()
            try:
                data = self._packet()
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in STREAM_LOST:  # as the library: reconnect (GtidStreamReader refuses)
                    self._stream_connection.close()
                    self._BinLogStreamReader__connected_stream = False
                    continue
                raise
            if len(data) < 7 or data[0] != 0:
                if data[:1] == b"\xfe" and len(data) < 9:  # EOF: the binlog's end (non-blocking dump)
                    self.close()
                    return None
                continue
            etype = data[5]
            if etype in self._parsed:
                event = self._parse(data, etype)
            elif EVENT_MAP.get(etype, NotImplementedEvent) in self._in_packet:
                event = self.library_event(data)
            else:  # an event the library would drop unread (GTID list, binlog checkpoint, ...): its position only
                log_pos = int.from_bytes(data[14:18], "little")
                if log_pos:
                    self.log_pos = log_pos
                continue
            if event is not None:
                return event

    # ---------------------------------------------------------- events parsed here

    def _parse(self, data: bytes, etype: int) -> Any:
        """The event fetchone returns for a packet of a type parsed here (None: none for the caller)."""
        timestamp, _, server_id, size, log_pos, _ = HEADER.unpack_from(data, 1)
        if etype == FORMAT_DESCRIPTION:
            self._format_description(data, size, log_pos)
            return None
        end = 1 + size - self._checksum
        if self._checksum and zlib.crc32(memoryview(data)[1:end]) != int.from_bytes(data[end:end + 4], "little"):
            raise ChecksumMismatch(2013, f"binlog event (type {etype}) after {self.log_file}:{self.log_pos} fails its "
                                         "CRC32 check: reading again from the sync checkpoint")
        if etype in self._odd:
            return self.library_event(data)  # a post-header this parser does not know: the library's
        if etype in ROWS_CLASS:
            if log_pos:
                self.log_pos = log_pos
            return self._rows(data, etype, timestamp, end)
        if etype == ROTATE:
            event = PacketRotate(timestamp, int.from_bytes(data[20:28], "little"), data[28:end].decode())
            self.log_pos, self.log_file = event.position, event.next_binlog
            if timestamp:  # a real rotation: table ids may be reused by another table
                self.table_map = {}
            return event
        if log_pos:
            self.log_pos = log_pos
        if etype == TABLE_MAP:
            self._table_map(data, end)
            return None
        if etype == MARIADB_GTID:
            seq, domain, flags = struct.unpack_from("<QIB", data, 20)
            return PacketMariadbGtid(timestamp, f"{domain}-{server_id}-{seq}", flags)
        if etype == XID:
            return PacketXid(timestamp, int.from_bytes(data[20:28], "little"))
        if etype == MYSQL_GTID:
            return PacketGtid(timestamp, data[21:37], int.from_bytes(data[37:45], "little"))
        # QUERY: post-header (thread, time, schema length, error, status length), status, schema, NUL, text
        schema_len = data[28]
        p = 20 + 13 + int.from_bytes(data[31:33], "little")
        if p + schema_len + 1 > end:
            return self.library_event(data)  # malformed: the library says how
        return PacketQuery(timestamp, data[p:p + schema_len],
                           data[p + schema_len + 1:end].decode("utf-8", errors="backslashreplace"))

    def _format_description(self, data: bytes, size: int, log_pos: int) -> None:
        """The server version and each event type's post-header length, as the library reads them."""
        version = data[22:72].rstrip(b"\0").decode()
        mysql_version = tuple(map(int, version.split("-")[0].split(".")))
        aware = mysql_version >= (5, 6) or mysql_version[0] >= 10  # a checksum algorithm byte and a CRC follow
        end = 1 + size - (5 if aware else 0)
        if end < 77:
            self.library_event(data)  # malformed: the library says how
            return
        if log_pos:
            self.log_pos = log_pos
        self.mysql_version = mysql_version
        self._post_headers(tuple(data[77:end]))

    def _post_headers(self, lengths: tuple[int, ...]) -> None:
        """Each event type's post-header length (the library reads its events with them); the types
        parsed here whose length differs (a newer server's) go to the library."""
        self._BinLogStreamReader__post_header_lengths = lengths
        self._odd = frozenset(t for t, known in KNOWN_POST_HEADER.items() if 0 < t <= len(lengths)
                              and lengths[t - 1] != known)

    def _rows(self, data: bytes, etype: int, timestamp: int, end: int) -> Any:
        table_id = int.from_bytes(data[20:26], "little")
        table = self.table_map.get(table_id)
        if table is None:  # as the library: a table filtered out at its table map
            return None
        flags = data[26] | (data[27] << 8)
        p = 28
        if etype in ROWS_V2:
            p = 30 + (data[28] | (data[29] << 8)) - 2  # the extra row info (its length counts its own 2 bytes)
        n, p = length_coded(data, p)
        width = (n + 7) >> 3
        present = data[p:p + width]
        p += width
        present2 = None
        if etype == UPDATE_V1 or etype == UPDATE_V2:
            present2 = data[p:p + width]
            p += width
        return ROWS_CLASS[etype](self, data, timestamp, table_id, flags, table, present, present2, data[p:end])

    def _table_map(self, data: bytes, end: int) -> None:
        """Store the table map (the library's Table) under its id, parsed once per distinct body."""
        body = data[20:end]
        known = self._table_maps.get(body, False)
        if known is False:
            known = self._parse_table_map(data)
            if len(self._table_maps) >= TABLE_MAPS_KEPT:
                self._table_maps.clear()
            self._table_maps[body] = known
        if known is not None:
            self.table_map[int.from_bytes(data[20:26], "little")] = known

    def _parse_table_map(self, data: bytes) -> Any:
        """The library's parse of a table map (None: a table filtered out)."""
        p = 28
        schema = data[p + 1:p + 1 + data[p]].decode()
        p += 1 + data[p] + 1
        table = data[p + 1:p + 1 + data[p]].decode()
        if (self._only_tables is not None and table not in self._only_tables) or table in self._ignored_tables or (
                self._only_schemas is not None and schema not in self._only_schemas) or schema in self._ignored_schemas:
            return None
        event = self._wrap(data, {}).event  # an empty map: the library re-reads a table id it has seen (freeze_schema)
        return event.get_table() if isinstance(event, TableMapEvent) else None

    # ---------------------------------------------------------- everything else: the library's classes

    def _wrap(self, data: bytes, table_map: dict[int, Any]) -> BinLogPacketWrapper:
        if not self._BinLogStreamReader__connected_ctl:
            self._BinLogStreamReader__connect_to_ctl()
        return BinLogPacketWrapper(
            MysqlPacket(data, self._stream_connection.encoding), table_map, self._ctl_connection, self.mysql_version,
            self._BinLogStreamReader__use_checksum, self._BinLogStreamReader__allowed_events_in_packet,
            self._BinLogStreamReader__only_tables, self._BinLogStreamReader__ignored_tables,
            self._BinLogStreamReader__only_schemas, self._BinLogStreamReader__ignored_schemas,
            self._BinLogStreamReader__freeze_schema, self._BinLogStreamReader__ignore_decode_errors,
            self._BinLogStreamReader__verify_checksum, self._BinLogStreamReader__optional_meta_data,
            self._BinLogStreamReader__enable_logging, self._BinLogStreamReader__use_column_name_cache,
            self._BinLogStreamReader__post_header_lengths)

    def library_event(self, data: bytes) -> Any:
        """One packet through the library's classes and fetchone's bookkeeping (rotate, format
        description, table map, the event filter): the event fetchone would return, or None."""
        binlog_event = self._wrap(data, self.table_map)
        event = binlog_event.event
        if binlog_event.event_type == ROTATE:
            self.log_pos = event.position
            self.log_file = event.next_binlog
            if binlog_event.timestamp != 0:  # a real rotation: table ids may be reused by another table
                self.table_map = {}
        elif binlog_event.log_pos:
            self.log_pos = binlog_event.log_pos
        if binlog_event.event_type == FORMAT_DESCRIPTION and event is not None:
            self.mysql_version = event.mysql_version
            self._post_headers(event.post_header_len)
        if binlog_event.event_type == TABLE_MAP and event is not None:
            self.table_map[event.table_id] = event.get_table()
        if event is None or event.__class__ not in self._BinLogStreamReader__allowed_events:
            return None
        return event


# the reader leans on the library's private names (1.0.x): if they change, fail loudly, not silently
_PRIVATE = ("connected_stream", "connected_ctl", "connect_to_ctl", "use_checksum", "allowed_events",
            "allowed_events_in_packet", "only_tables", "ignored_tables", "only_schemas", "ignored_schemas",
            "freeze_schema", "ignore_decode_errors", "verify_checksum", "optional_meta_data", "enable_logging",
            "use_column_name_cache", "post_header_lengths")
_probe = GtidStreamReader(connection_settings={}, server_id=1, enable_logging=False)
if not all(hasattr(_probe, f"_BinLogStreamReader__{n}") or hasattr(GtidStreamReader, f"_BinLogStreamReader__{n}")
           for n in _PRIVATE):
    raise ImportError("mysql-replication's private stream attributes changed: PacketReader needs updating")
del _probe
