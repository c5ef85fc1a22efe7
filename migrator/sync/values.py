"""Binlog row values -> the exact values copy would have written.

mysql-replication decodes row images from the table map alone. Without
`binlog_row_metadata=FULL` (MariaDB's default is NO_LOG) it does not know signedness, charsets,
ENUM/SET labels or column names, so we tell it before it decodes (`prepare_columns`) and fix
what it still gets wrong afterwards (`fix_row`): text arrives as raw bytes (decoded here with
the column's own charset, so latin1 survives), BIT as '0101' strings, SET as bit masks,
YEAR 0 as 1900, zero dates as None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from ..plan.model import Column

RAW = "iso-8859-1"  # a lossless byte <-> str mapping: the library "decodes", we get bytes back
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
ZERO_DATE = {"date": "0000-00-00", "datetime": "0000-00-00 00:00:00", "timestamp": "0000-00-00 00:00:00"}
EPOCH = datetime(1970, 1, 1)
PLAIN_TYPES = INT_TYPES | {"decimal", "float", "double"}  # decoded exactly as they are
OUT_OF_RANGE = {"out of date range", "out of datetime range", "out of datetime2 range"}


def _mysql_latin1_table() -> list[str]:
    """MySQL's latin1 is cp1252 with the five undefined bytes mapped to C1 controls."""
    out = []
    for b in range(256):
        try:
            out.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(chr(b))
    return out


_LATIN1 = _mysql_latin1_table()
PY_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "ascii": "ascii", "ucs2": "utf-16-be",
             "utf16": "utf-16-be", "utf32": "utf-32-be", "cp1251": "cp1251", "gbk": "gbk", "big5": "big5",
             "sjis": "shift_jis", "ujis": "euc_jp", "euckr": "euc_kr", "greek": "iso-8859-7",
             "hebrew": "iso-8859-8", "latin2": "iso-8859-2", "latin5": "iso-8859-9", "koi8r": "koi8-r"}


def binary_length(column_type: str, default: int = 0) -> int:
    """n of a `binary(n)` column type (the width its values are padded to with 0x00)."""
    head, _, rest = column_type.partition("(")
    digits = rest.split(")", 1)[0]
    return int(digits) if head.strip().lower() == "binary" and digits.isdigit() else default


def date_text(year: int, month: int, day: int) -> str:
    """A date with a zero part, written as the source holds it ('2024-05-00')."""
    return f"{year:04d}-{month:02d}-{day:02d}"


def datetime_text(year: int, month: int, day: int, hour: int, minute: int, second: int, us: int) -> str:
    text = f"{date_text(year, month, day)} {hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{us:06d}" if us else text


def datetime_value(v: int, us: int) -> Any:
    """A DATETIME2's packed 40 bits (sign bit set) and microseconds: a datetime, or the exact
    text of a zero date or a date with a zero part ('2024-05-00 12:00:00', legal in MariaDB)."""
    year, month = divmod((v >> 22) & 0x1FFFF, 13)
    day, hour, minute, second = (v >> 17) & 31, (v >> 12) & 31, (v >> 6) & 63, v & 63
    try:
        return datetime(year, month, day, hour, minute, second, us)
    except ValueError:
        return datetime_text(year, month, day, hour, minute, second, us)


def date_value(v: int) -> Any:
    """A DATE's packed 24 bits: a date, or the exact text of a zero (part) date."""
    year, month, day = v >> 9, (v >> 5) & 15, v & 31
    try:
        return date(year, month, day)
    except ValueError:
        return date_text(year, month, day)


def decode_text(raw: bytes, charset: str | None) -> str | bytes:
    if charset is None or charset == "binary":
        return raw
    if charset == "latin1":
        return "".join(_LATIN1[b] for b in raw)
    return raw.decode(PY_CODECS.get(charset, charset))


class _EnumIndex:
    """Stands in for ENUM labels: the library then yields the 1-based index, which MySQL accepts."""

    def __getitem__(self, index: int) -> int:
        return index

    def __bool__(self) -> bool:
        return True


SET_BITS = [1 << i for i in range(64)]


@dataclass
class TableShape:
    """How to read one source table's row images: column names in ordinal order and their types."""

    columns: list[Column]
    names: list[str] = field(init=False)
    fix_columns: list[Column] = field(init=False)  # columns whose decoded value may need fixing

    def __post_init__(self) -> None:
        self.names = [c.name for c in self.columns]
        self.fix_columns = [c for c in self.columns if c.data_type not in PLAIN_TYPES]


def prepare_columns(lib_columns: list[Any], shape: TableShape) -> None:
    """Patch the library's column definitions before it decodes a row event."""
    for lib, col in zip(lib_columns, shape.columns):
        lib.name = col.name
        if col.data_type in INT_TYPES:
            lib.unsigned = "unsigned" in col.column_type.lower()
        if col.data_type in TEXT_TYPES or col.data_type in ("binary", "varbinary") or col.data_type.endswith("blob"):
            lib.character_set_name = RAW
        if col.data_type == "enum":  # the index even when the binlog carries labels: seekdb refuses
            lib.enum_values = _EnumIndex()  # `enum_key IN ('label')` (error 1210) in a DELETE by key
        if col.data_type == "set":
            lib.set_values = SET_BITS


def fix_value(col: Column, value: Any, none_source: str | None) -> Any:
    t = col.data_type
    if value is None:
        if none_source in OUT_OF_RANGE and t in ZERO_DATE:
            return ZERO_DATE[t]
        if none_source == "empty set" and t == "set":
            return ""
        return None
    if isinstance(value, str) and (t in TEXT_TYPES or t in ("binary", "varbinary") or t.endswith("blob")):
        raw = value.encode(RAW)
        if t == "binary":  # row images drop BINARY(n)'s trailing 0x00 bytes
            return raw.ljust(binary_length(col.column_type), b"\0")
        return decode_text(raw, col.charset if t not in ("binary", "varbinary") and not t.endswith("blob") else None)
    if t == "bit" and isinstance(value, str):
        return int(value, 2) if value else 0
    if t == "set" and isinstance(value, set):
        return sum(value)
    if t == "time" and isinstance(value, timedelta) and value.microseconds and value < timedelta(0):
        return _negative_time(value)
    if t == "year" and value == 1900:
        return 0
    if t == "timestamp" and value == EPOCH:
        return ZERO_DATE[t]
    if t == "json" and not isinstance(value, (str, bytes)):
        return json.dumps(_json_text(value), ensure_ascii=False)
    return value


def _negative_time(value: timedelta) -> timedelta:
    """The library decodes a negative TIME(fsp) as -(whole seconds) - 1 + fraction
    ('-00:00:01.000001' came out as -1.999999 s): rebuild -(whole seconds + fraction)."""
    whole = value.days * 86400 + value.seconds  # = -(seconds) - 1
    return timedelta(seconds=whole + 1, microseconds=-value.microseconds)


def _json_text(value: Any) -> Any:
    """MySQL binary JSON decodes with bytes keys/strings; make it plain JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, dict):
        return {_json_text(k): _json_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_text(v) for v in value]
    return value


def _install_exact_zero_part_dates() -> None:
    """mysql-replication reads a DATE or DATETIME with a zero part ('2024-05-00') as None ("out of
    range"), indistinguishable from '0000-00-00'. Its two readers are replaced by ones that give
    the exact text (the same as rowdecode's), for tables that keep the library's decoding."""
    from pymysqlreplication.row_event import RowsEvent

    read_fsp = RowsEvent._RowsEvent__read_fsp  # type: ignore[attr-defined]

    def read_date(self: Any) -> Any:
        v = self.packet.read_uint24()
        return None if v == 0 else date_value(v)  # None: the library's zero date, fixed by fix_value

    def read_datetime2(self: Any, column: Any) -> Any:
        v = self.packet.read_int_be_by_size(5)
        us = read_fsp(self, column)
        value = datetime_value(v, us)
        return None if value == ZERO_DATE["datetime"] else value

    RowsEvent._RowsEvent__read_date = read_date  # type: ignore[attr-defined]
    RowsEvent._RowsEvent__read_datetime2 = read_datetime2  # type: ignore[attr-defined]


def fix_row(shape: TableShape, values: dict[str, Any], none_sources: dict[str, str]) -> dict[str, Any]:
    """Values keyed by column name; only the columns that can need it go through fix_value."""
    for c in shape.fix_columns:
        v = values.get(c.name)
        if v is None and c.name not in none_sources:
            continue
        values[c.name] = fix_value(c, v, none_sources.get(c.name))
    return values


# the replacement leans on the library's private reader names: if they change, fail loudly
_install_exact_zero_part_dates()
