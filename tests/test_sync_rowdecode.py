"""Sync's own row decoder against mysql-replication's (the reference), on real binlogs.

The same binlog range is read twice: once decoded by the library and fixed by `fix_row` (the
path sync used before), once by `RowDecoder`. Every row image of every insert, update and delete
must come out equal, value for value and type for type.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from migrator.db import connect, qualified, query
from migrator.endpoint import Endpoint
from migrator.positions import BinlogPosition, read_position
from migrator.sync.rowdecode import RowDecoder
from migrator.schema.catalog import read_columns
from migrator.sync.values import TableShape, fix_row, prepare_columns

TYPES_DDL = """CREATE TABLE {t} (
  id INT NOT NULL PRIMARY KEY,
  i8 TINYINT, u8 TINYINT UNSIGNED, i16 SMALLINT, u16 SMALLINT UNSIGNED, i24 MEDIUMINT, u24 MEDIUMINT UNSIGNED,
  i32 INT, u32 INT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED,
  d50 DECIMAL(5,0), d99 DECIMAL(9,9), d101 DECIMAL(10,1), d194 DECIMAL(19,4), d6530 DECIMAL(65,30),
  d102u DECIMAL(10,2) UNSIGNED, f FLOAT, d DOUBLE,
  b1 BIT(1), b9 BIT(9), b64 BIT(64),
  ch CHAR(5), chl CHAR(10) CHARACTER SET latin1, v VARCHAR(40), v300 VARCHAR(300), vl VARCHAR(20) CHARACTER SET latin1,
  bin BINARY(4), vb VARBINARY(300), tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, tb TINYBLOB, bl BLOB,
  mb MEDIUMBLOB, lb LONGBLOB, js LONGTEXT CHECK (json_valid(js)),
  en ENUM('a','b','c d'), st SET('x','y','z'), st20 SET('a','b','c','d','e','f','g','h','i','j','k','l','m','n','o',
  'p','q','r','s','t'),
  dt DATE, dtm0 DATETIME, dtm1 DATETIME(1), dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts0 TIMESTAMP NULL DEFAULT NULL, ts2 TIMESTAMP(2) NULL DEFAULT NULL, ts6 TIMESTAMP(6) NULL DEFAULT NULL,
  tm0 TIME, tm1 TIME(1), tm2 TIME(2), tm3 TIME(3), tm4 TIME(4), tm5 TIME(5), tm6 TIME(6), yr YEAR
) DEFAULT CHARSET=utf8mb4"""

TYPES_ROWS = [
    "(1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, "
    "18446744073709551615, -99999, -0.999999999, -999999999.9, -999999999999999.9999, "
    "'-99999999999999999999999999999999999.999999999999999999999999999999', 99999999.99, 3.4028234e38, "
    "1.7976931348623157e308, b'1', b'111111111', b'1111111111111111111111111111111111111111111111111111111111111111', "
    "'ab', 'caf\u00e9 \u00bd', 'emoji \U0001F600', REPEAT('\u00e9', 300), 'na\u00efve', x'00ff0027', x'005c00', "
    "'t', 'text \U0001F4B8', 'medium', 'long', x'00', x'ff00', x'01', x'02', '{\"a\": [1, 2.5, null]}', "
    "'c d', 'x,z', 'a,t', '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.1', "
    "'1000-01-01 00:00:00.123', '1000-01-01 00:00:00.000001', '1970-01-01 00:00:01', '2038-01-19 03:14:07.99', "
    "'2038-01-19 03:14:07.999999', '-838:59:59', '-838:59:58.9', '-00:00:01.01', '-12:00:00.001', '-00:00:00.0001', "
    "'-00:00:00.00001', '-00:00:00.000001', 1901)",
    "(2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 99999, 0.999999999, 999999999.9, "
    "999999999999999.9999, '99999999999999999999999999999999999.999999999999999999999999999999', 0, -1.1754944e-38, "
    "4.9e-324, b'0', b'0', b'0', '', '', '', '', '', x'', x'', '', '', '', '', x'', x'', x'', x'', '[]', 'a', '', '', "
    "'9999-12-31', '9999-12-31 23:59:59', '9999-12-31 23:59:59.9', '9999-12-31 23:59:59.999', "
    "'9999-12-31 23:59:59.999999', '2000-01-01 00:00:00', '2000-01-01 00:00:00.5', '2000-01-01 00:00:00.000001', "
    "'838:59:59', '838:59:59.9', '00:00:00.99', '00:00:00.999', '00:00:00.9999', '00:00:00.99999', "
    "'00:00:00.999999', 2155)",
    "(3, " + ", ".join(["NULL"] * 56) + ")",
    "(4, 0, 1, -1, 1, -1, 1, -1, 1, -1, 1, 0, 0.000000001, -0.1, 0.0001, '-0.000000000000000000000000000001', 0.01, "
    "0.1, -0.0, b'1', b'100000000', b'1000000000000000000000000000000000000000000000000000000000000000', 'a  ', "
    "' ', ' x', 'y ', '\\\\', x'5c27', x'00', '\\t\\n', 'x', 'y', 'z', x'5c', x'27', x'00', x'ff', 'null', 'b', "
    "'y', 'a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t', '2024-02-29', '2024-02-29 12:34:56', '2024-02-29 12:34:56.5', "
    "'2024-02-29 12:34:56.05', '2024-02-29 12:34:56.000500', '2024-02-29 12:34:56', '2024-02-29 12:34:56.01', "
    "'2024-02-29 12:34:56.123456', '00:00:00', '-00:00:00.1', '-01:02:03.04', '01:02:03.004', '-01:02:03.0004', "
    "'01:02:03.00005', '-01:02:03.000006', 0)",
]


def binlog_rows(ep: Endpoint, db: str, table: str, start: BinlogPosition, end: BinlogPosition,
                decode: Any) -> list[tuple[str, Any]]:
    """Every row change of db.table between the positions, decoded by `decode(event, columns)`."""
    stream = BinLogStreamReader(
        connection_settings={"host": ep.host, "port": ep.port, "user": ep.user,
                             "passwd": ep.password.get_secret_value() if ep.password else ""},
        server_id=0x51000000 + ep.port, blocking=False, resume_stream=True, log_file=start.file, log_pos=start.pos,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], enable_logging=False, freeze_schema=True)
    out: list[tuple[str, Any]] = []
    try:
        for ev in stream:
            if (ev.schema, ev.table) == (db, table):
                kind = type(ev).__name__
                out += [(kind, r) for r in decode(ev, stream.table_map[ev.table_id].columns)]
            if (stream.log_file, stream.log_pos) >= (end.file, end.pos):
                break
    finally:
        stream.close()
    return out


def library_decode(shape: TableShape):
    def decode(ev: Any, columns: list) -> list:
        prepare_columns(columns, shape)
        if isinstance(ev, UpdateRowsEvent):
            return [(fix_row(shape, r["before_values"], r["before_none_sources"]),
                     fix_row(shape, r["after_values"], r["after_none_sources"])) for r in ev.rows]
        return [fix_row(shape, r["values"], r["none_sources"]) for r in ev.rows]
    return decode


def fast_decode(shape: TableShape):
    def decode(ev: Any, columns: list) -> list:
        decoder = RowDecoder.for_table(columns, shape)
        assert decoder is not None, "the decoder refused a table it should read"
        assert decoder.readable(ev)
        return decoder.rows(ev)
    return decode


def key_only_decode(shape: TableShape, wanted: frozenset[str]):
    """Before-images (an update's first, a delete's only) decoded for `wanted` columns only."""
    def decode(ev: Any, columns: list) -> list:
        return RowDecoder.for_table(columns, shape).rows(ev, wanted)
    return decode


def restricted(rows: list, wanted: frozenset[str]) -> list:
    """The full decoding with before-images cut to `wanted` (what key-only decoding must give)."""
    def cut(image: dict) -> dict:
        return {k: v for k, v in image.items() if k in wanted}
    out = []
    for kind, r in rows:
        if kind == "UpdateRowsEvent":
            out.append((kind, (cut(r[0]), r[1])))
        else:
            out.append((kind, cut(r) if kind == "DeleteRowsEvent" else r))
    return out


def typed(rows: list) -> list:
    """Values with their types: 1 == 1.0 == True must not pass for equal."""
    def one(image: dict) -> dict:
        return {k: (type(v).__name__, v) for k, v in image.items()}
    return [(kind, tuple(one(i) for i in r) if isinstance(r, tuple) else one(r)) for kind, r in rows]


def both_decodings(ep: Endpoint, db: str, table: str, workload: list[str]) -> tuple[list, list]:
    with connect(ep, "source", autocommit=True) as conn:
        shape = TableShape(read_columns(conn, db, table))
        start = read_position(conn)
        for sql in workload:
            query(conn, sql)
        end = read_position(conn)
    lib = binlog_rows(ep, db, table, start, end, library_decode(shape))
    fast = binlog_rows(ep, db, table, start, end, fast_decode(shape))
    both_decodings.last = (shape, start, end)  # type: ignore[attr-defined]
    return lib, fast


def test_every_type_decodes_as_the_library_does(source, unique_db):
    db = unique_db("rowdec")
    t = qualified(db, "t")
    with connect(source, "source", autocommit=True) as conn:
        query(conn, f"CREATE DATABASE {db}")
        query(conn, TYPES_DDL.format(t=t))
    workload = [
        f"INSERT INTO {t} VALUES " + ",".join(TYPES_ROWS),
        f"UPDATE {t} SET i8 = i8 DIV 2, v300 = CONCAT(LEFT(v300, 100), 'z'), tm6 = '-00:00:00.5', dt = '2001-02-03' WHERE id IN (1, 2, 4)",
        f"UPDATE {t} SET id = id + 10, en = 'b', st = 'x,y,z' WHERE id = 3",
        f"DELETE FROM {t} WHERE id IN (2, 13)",
    ]
    lib, fast = both_decodings(source, db, "t", workload)
    assert len(lib) == 4 + 4 + 2
    assert [k for k, _ in lib].count("UpdateRowsEvent") == 4
    assert typed(fast) == typed(lib)
    # before-images read for some columns only (sync's key-only before-images): every other
    # column, of every type, NULL or not, stepped over without shifting the ones read after it
    shape, start, end = both_decodings.last
    for wanted in (frozenset({"id"}), frozenset({"id", "u24", "d6530", "v300", "bin", "tx", "lb", "dtm6", "ts2",
                                                  "tm3", "yr"}), frozenset({"id", "yr"})):
        partial = binlog_rows(source, db, "t", start, end, key_only_decode(shape, wanted))
        assert typed(partial) == typed(restricted(fast, wanted))
    # spot checks a DBA would make, independent of both decoders
    first = fast[0][1]
    assert first["u64"] == 18446744073709551615 and first["i64"] == -9223372036854775808
    assert first["d6530"] == Decimal("-99999999999999999999999999999999999.999999999999999999999999999999")
    assert first["tm3"] == -timedelta(hours=12, milliseconds=1)
    assert first["chl"] == "caf\u00e9 \u00bd" and first["bin"] == b"\x00\xff\x00\x27"


def test_zero_dates_decode_as_the_library_does(source, unique_db):
    db = unique_db("rowdecz")
    t = qualified(db, "z")
    with connect(source, "source", autocommit=True) as conn:
        query(conn, f"CREATE DATABASE {db}")
        query(conn, f"CREATE TABLE {t} (id INT PRIMARY KEY, d DATE, dt DATETIME(3), ts TIMESTAMP(1) NULL DEFAULT NULL, "
                    "y YEAR, s SET('a','b'))")
    lib, fast = both_decodings(source, db, "z", [
        "SET SESSION sql_mode = ''",
        f"INSERT INTO {t} VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', 0, ''), "
        "(2, '1999-01-01', '1999-01-01 00:00:00.5', '1999-01-01 00:00:00.5', 1999, 'a,b')",
    ])
    assert typed(fast) == typed(lib)
    assert fast[0][1] == {"id": 1, "d": "0000-00-00", "dt": "0000-00-00 00:00:00", "ts": "0000-00-00 00:00:00",
                          "y": 0, "s": ""}


decimals = st.decimals(min_value=Decimal("-99999999999.999999"), max_value=Decimal("99999999999.999999"),
                       places=6, allow_nan=False, allow_infinity=False)
times = st.integers(min_value=-(838 * 3600 + 59 * 60 + 59) * 10**6, max_value=(838 * 3600 + 59 * 60 + 59) * 10**6)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(decimals, times, st.integers(-2**63, 2**63 - 1), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)),
                     min_size=1, max_size=40))
def test_random_values_decode_as_the_library_does(source, unique_db, rows):
    db = unique_db("rowdech")
    t = qualified(db, "h")
    with connect(source, "source", autocommit=True) as conn:
        query(conn, f"DROP DATABASE IF EXISTS {db}")
        query(conn, f"CREATE DATABASE {db}")
        query(conn, f"CREATE TABLE {t} (id INT PRIMARY KEY, d DECIMAL(17,6), t6 TIME(6), t3 TIME(3), i BIGINT, "
                    "s VARCHAR(80) CHARACTER SET latin1, u VARCHAR(80))")
    values = []
    for n, (d, us, i, s) in enumerate(rows):
        sign = "-" if us < 0 else ""
        secs, frac = divmod(abs(us), 10**6)
        tm = f"{sign}{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}.{frac:06d}"
        latin = s.encode("cp1252", "replace").decode("cp1252").replace("\\", "\\\\").replace("'", "''")
        text = s.replace("\\", "\\\\").replace("'", "''")
        values.append(f"({n}, {d}, '{tm}', '{tm}', {i}, '{latin}', '{text}')")
    lib, fast = both_decodings(source, db, "h", [f"INSERT INTO {t} VALUES " + ",".join(values),
                                                 f"UPDATE {t} SET d = -d, t6 = '-00:00:00.000001'"])
    assert len(fast) == 2 * len(rows)
    assert typed(fast) == typed(lib)


NOT_NULL_DDL = """CREATE TABLE {t} (
  id INT NOT NULL PRIMARY KEY, a TINYINT NOT NULL, b SMALLINT UNSIGNED NOT NULL, c INT NOT NULL,
  d BIGINT UNSIGNED NOT NULL, f FLOAT NOT NULL, g DOUBLE NOT NULL, m MEDIUMINT NOT NULL, u MEDIUMINT UNSIGNED NOT NULL,
  dc DECIMAL(20,4) NOT NULL, dt DATETIME(6) NOT NULL, ch CHAR(3) NOT NULL, bn BINARY(4) NOT NULL,
  v VARCHAR(300) NOT NULL, n INT NULL, x BIGINT NOT NULL, l VARCHAR(5) CHARACTER SET latin1 NOT NULL
) DEFAULT CHARSET=utf8mb4"""


def test_not_null_runs_and_a_stale_not_null_decode_as_the_library_does(source, unique_db):
    """The generated reader reads runs of NOT NULL fixed-width columns with one unpack; a row
    with a NULL where the shape says NOT NULL (a stale shape) must not be misread."""
    db = unique_db("rowdecn")
    t = qualified(db, "n")
    with connect(source, "source", autocommit=True) as conn:
        query(conn, f"CREATE DATABASE {db}")
        query(conn, NOT_NULL_DDL.format(t=t))
    workload = [
        f"INSERT INTO {t} VALUES (1, -128, 65535, -2147483648, 18446744073709551615, -1.5, 2.25e300, -8388608, "
        "16777215, -1234567890123456.7891, '2024-02-29 23:59:59.000001', 'abc', x'01', REPEAT('\u00e9', 300), NULL, "
        "-9223372036854775808, 'caf\u00e9'), (2, 127, 0, 0, 0, 0, -0.0, 0, 0, 0.0001, '1000-01-01 00:00:00', '', x'', "
        "'', 7, 0, '')",
        f"UPDATE {t} SET dc = -dc, n = IFNULL(n, 0) + 1, bn = x'ff00' WHERE id IN (1, 2)",
        f"DELETE FROM {t} WHERE id = 2",
    ]
    lib, fast = both_decodings(source, db, "n", workload)
    assert len(lib) == 2 + 2 + 1
    assert typed(fast) == typed(lib)
    first = fast[0][1]
    assert first["d"] == 18446744073709551615 and first["x"] == -9223372036854775808 and first["n"] is None
    assert first["dc"] == Decimal("-1234567890123456.7891") and first["bn"] == b"\x01\x00\x00\x00"

    # the same binlog read with a shape saying `n` is NOT NULL: its NULL row still decodes exactly
    with connect(source, "source", autocommit=True) as conn:
        stale = TableShape([c.model_copy(update={"nullable": False}) for c in read_columns(conn, db, "n")])
        start = read_position(conn)
        query(conn, f"INSERT INTO {t} VALUES (3, 1, 2, 3, 4, 5, 6, 7, 8, 9.5, '2001-01-01', 'x', x'02', 'y', NULL, 9, 'z')")
        end = read_position(conn)
    lib = binlog_rows(source, db, "n", start, end, library_decode(stale))
    fast = binlog_rows(source, db, "n", start, end, fast_decode(stale))
    assert typed(fast) == typed(lib) and fast[0][1]["n"] is None and fast[0][1]["x"] == 9
