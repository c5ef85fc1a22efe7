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
from datetime import datetime, timedelta
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


def fix_row(shape: TableShape, values: dict[str, Any], none_sources: dict[str, str]) -> dict[str, Any]:
    """Values keyed by column name; only the columns that can need it go through fix_value."""
    for c in shape.fix_columns:
        v = values.get(c.name)
        if v is None and c.name not in none_sources:
            continue
        values[c.name] = fix_value(c, v, none_sources.get(c.name))
    return values
