"""Canonical text of a column, rendered INSIDE the database, identical on MariaDB/MySQL and OceanBase.

Each form below was checked on MariaDB 10.11 and OceanBase seekdb 1.4 (tests/test_verify_canonical.py):

- integers, DECIMAL, YEAR, DATE/DATETIME/TIMESTAMP/TIME: `CAST(c AS CHAR)`: DECIMAL keeps the
  column's scale; temporal values keep the column's fraction digits; zero dates render
  '0000-00-00'; TIMESTAMP depends on the session time zone, which db.connect pins to +00:00.
- DOUBLE: `CAST(c AS CHAR)`: both engines print the shortest text that round-trips (up to 17
  significant digits), so it names the exact binary value: a one-bit change shows. -0 is folded
  into 0 (OceanBase prints '-0' for an expression, MariaDB '0').
- FLOAT: `CAST(CAST(c AS DOUBLE) AS CHAR)`: a FLOAT printed as itself shows only 6 digits
  (16777217 and 16777216 both print 16777200); widened to DOUBLE it is exact.
- BIT: `CAST(c + 0 AS CHAR)` (its integer value).
- BINARY/VARBINARY/BLOB/geometry: `HEX(c)`.
- text, ENUM, SET: `CONVERT(c USING utf8mb4) COLLATE utf8mb4_bin`, length-prefixed
  (`LENGTH:value`) so ('a,b','c') and ('a','b,c') differ; the collation is forced so columns of
  different collations concatenate and a latin1 source compares with its utf8mb4 copy.
- JSON: a native JSON column renders normalized (`{"a": 1}`, keys sorted). MariaDB's json is
  longtext holding the text as written. When both sides hold the same kind the in-database form
  is compared; when one side is text and the other native JSON, no in-database function renders
  both identically (MariaDB lacks a key-sorting form OceanBase also has), so that column is
  left out of the in-database hash and compared in Python after json normalization
  (`ClientColumn`), for the rows of the chunk.

A row's text is the concatenation of its columns' forms, each followed by '|'. NULL is 'N':
non-text forms never contain '|' nor equal 'N', text forms start with a digit, so NULL, '' and
'NULL' all differ and no two rows share a text. The row hash is the first 64 bits of MD5 of that
text; a chunk's checksum is COUNT(*) plus the exact SUM of row hashes (a DECIMAL on both
engines: no overflow, and unlike BIT_XOR two identical duplicate rows do not cancel).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..db import quote_ident

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
EXACT_TYPES = INTEGER_TYPES | {"decimal", "numeric", "date", "datetime", "timestamp", "time"}
DOUBLE_TYPES = {"double", "real", "double precision"}
FLOAT_TYPES = {"float"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "geometry", "point",
                "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
                "geometrycollection", "geomcollection"}
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}


def type_kind(data_type: str) -> str:
    """Coarse kind of an information_schema DATA_TYPE: exact/double/float/bit/binary/json/text."""
    t = data_type.lower()
    if t in EXACT_TYPES:
        return "exact"
    if t in DOUBLE_TYPES:
        return "double"
    if t in FLOAT_TYPES:
        return "float"
    if t == "bit":
        return "bit"
    if t in BINARY_TYPES:
        return "binary"
    if t == "json":
        return "json"
    return "text"


def column_form(column: str, kind: str) -> str:
    """SQL for the canonical text of one column (NULL stays NULL), for a side whose type kind is `kind`."""
    c = quote_ident(column)
    if kind == "exact":
        return f"CAST({c} AS CHAR)"
    if kind == "double":
        return f"IF({c} = 0, '0', CAST({c} AS CHAR))"
    if kind == "float":
        return f"IF({c} = 0, '0', CAST(CAST({c} AS DOUBLE) AS CHAR))"
    if kind == "bit":
        return f"CAST({c} + 0 AS CHAR)"
    if kind == "binary":
        return f"HEX({c})"
    if kind == "json":
        return f"CAST({c} AS CHAR)"
    return f"CONVERT({c} USING utf8mb4) COLLATE utf8mb4_bin"


def field_sql(column: str, kind: str) -> str:
    """One column's part of the row text: form + '|', length-prefixed for text, 'N|' for NULL."""
    form = column_form(column, kind)
    if kind in ("text", "json"):
        form = f"CONCAT(LENGTH({form}), ':', {form})"
    return f"COALESCE({form}, 'N'), '|'"


@dataclass(frozen=True)
class SideColumn:
    name: str
    kind: str  # type_kind on this side


def row_text_sql(columns: list[SideColumn]) -> str:
    """SQL for the canonical row text over `columns` (in plan order)."""
    if not columns:
        return "''"
    return "CONCAT(" + ", ".join(field_sql(c.name, c.kind) for c in columns) + ")"


def row_hash_sql(columns: list[SideColumn]) -> str:
    """SQL for the 64-bit row hash as an unsigned integer."""
    return f"CAST(CONV(LEFT(MD5({row_text_sql(columns)}), 16), 16, 10) AS UNSIGNED)"


def checksum_select(columns: list[SideColumn]) -> str:
    """Select list of a chunk checksum: COUNT(*), exact SUM of row hashes."""
    return f"COUNT(*), COALESCE(SUM({row_hash_sql(columns)}), 0)"


# ---------------------------------------------------------------- client-side JSON


def normalize_json(value: Any) -> str | None:
    """A JSON document's canonical text (keys sorted, no spaces, numbers by value), or None."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8")
    try:
        doc = json.loads(value)  # numbers by value: 2.50 == 2.5 (MySQL's JSON stores doubles)
    except ValueError:
        return "invalid:" + str(value)  # still compared: two identical invalid texts match
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def client_hash(key_text: str, values: list[str | None]) -> int:
    """64-bit hash of a row's client-compared columns, tied to its key so rows cannot swap values."""
    h = hashlib.md5(key_text.encode())
    for v in values:
        h.update(b"N|" if v is None else f"{len(v.encode())}:{v}|".encode())
    return int.from_bytes(h.digest()[:8], "big")
