"""Checksum SQL over one key range of one side (source shard or target table), run inside the database.

Key values travel in the form that compares exactly as the key sorts (migrator.keys.BOUND_EXPRESSIONS):
ENUM/SET as their index number (ORDER BY sorts by it, while `col > 'text'` compares text), BIT as
its integer (MariaDB compares `bit = _binary'..'` wrongly), FLOAT as the exact DOUBLE (FLOAT prints 6
digits). The index number is also the only ENUM/SET key equality seekdb answers: `enum_pk = 'a'`
fails there with error 1210 "Invalid argument", `enum_pk = 2` works on both engines. A row's key is
shown in the report as its text again (key_label).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pymysql
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..db import qualified, query, quote_ident
from ..errors import ConfigError
from ..keys import BOUND_EXPRESSIONS, PaginationKey, compare_sql, equals_sql, order_sql
from .canonical import SideColumn, checksum_select, client_hash, column_form, normalize_json, row_hash_sql, row_text_sql

Bound = list[Any] | None  # decoded key values, None = unbounded
Within = tuple[tuple[Bound, Bound], ...]  # enclosing ranges a sub-range also lies in (bisection)

INDEX_TYPES = {"enum", "set"}


@dataclass(frozen=True)
class KeyType:
    """How one key column of one side is read and bound: its DATA_TYPE ('' = as stored) and members."""

    data_type: str = ""
    members: tuple[str, ...] = ()  # ENUM/SET members in definition order (index 1, bit 0, ...)

    @property
    def bound_class(self) -> tuple:
        """Two sides' key values compare alike only if their classes are equal."""
        if self.data_type in INDEX_TYPES:
            return (self.data_type, self.members)
        if self.data_type in ("float", "double", "real"):
            return ("double",)
        return (self.data_type if self.data_type == "bit" else "",)


def key_type(data_type: str, column_type: str = "") -> KeyType:
    dt = data_type.lower()
    if dt not in BOUND_EXPRESSIONS and dt not in ("double", "real"):
        return KeyType()
    return KeyType(dt, _members(column_type) if dt in INDEX_TYPES else ())


@lru_cache(maxsize=256)
def _members(column_type: str) -> tuple[str, ...]:
    """ENUM/SET members of an information_schema COLUMN_TYPE, parsed by sqlglot."""
    try:
        dtype = exp.DataType.build(column_type, dialect="mysql")
    except SqlglotError:
        return ()
    return tuple(str(e.this) for e in dtype.expressions if isinstance(e, exp.Literal))


@dataclass
class TableSide:
    """What to read on one side: table, compared columns with this side's type kinds, row filter."""

    role: str  # "source" | "target"
    instance: str  # source name or "target": picks the connection pool
    database: str
    table: str
    columns: list[SideColumn]  # compared inside the database, in plan order
    key: list[str]
    client_columns: list[str] = field(default_factory=list)  # JSON compared in Python
    filter_column: str = ""  # merged target table: the column naming the source shard ...
    filter_value: Any = None  # ... and this shard's value in it
    key_types: list[KeyType] = field(default_factory=list)  # per key column; empty = every key as stored

    @property
    def filter_sql(self) -> str:
        return f"{quote_ident(self.filter_column)} = %s" if self.filter_column else ""

    @property
    def filter_params(self) -> list[Any]:
        return [self.filter_value] if self.filter_column else []

    @property
    def name(self) -> str:
        return qualified(self.database, self.table)

    def key_kinds(self) -> list[SideColumn]:
        kinds = {c.name: c.kind for c in self.columns}
        return [SideColumn(k, kinds.get(k, "text")) for k in self.key]

    def key_type(self, i: int) -> KeyType:
        return self.key_types[i] if i < len(self.key_types) else KeyType()


def key_select_sql(side: TableSide) -> str:
    """The key columns as values that compare exactly as the key sorts (BOUND_EXPRESSIONS)."""
    return PaginationKey(tuple(side.key), tuple(side.key_type(i).data_type for i in range(len(side.key)))).select_sql()


def key_values(side: TableSide, values: Any) -> list[Any]:
    """Key values (bounds, row keys) in the form key_select_sql reads: index numbers, integers, exact doubles.

    A bound may come from the plan file as the stored text (an ENUM member, FLOAT printed with 6
    digits, BIT as bytes) or from seekdb, which returns `enum+0` as a DOUBLE."""
    return [_key_value(side, i, v) for i, v in enumerate(values)]


def _key_value(side: TableSide, i: int, v: Any) -> Any:
    kt = side.key_type(i)
    if v is None or not kt.data_type:
        return v
    if kt.data_type == "bit" and isinstance(v, (bytes, bytearray)):
        return int.from_bytes(v, "big")
    if kt.data_type in INDEX_TYPES and isinstance(v, str):
        return _index_of(side, i, kt, v)
    if kt.data_type in ("float", "double", "real"):
        return float(v)
    if isinstance(v, (float, Decimal)) and v == int(v):
        return int(v)
    return v


def _index_of(side: TableSide, i: int, kt: KeyType, text: str) -> int:
    """ENUM member -> its index, SET value -> its bit mask ('' not a member: the invalid ENUM value / empty SET, 0)."""
    if kt.data_type == "enum":
        return 0 if text == "" and "" not in kt.members else _member_position(side, i, kt, text, text) + 1
    mask = 0
    for part in text.split(",") if text else []:
        mask |= 1 << _member_position(side, i, kt, part, text)
    return mask


def _member_position(side: TableSide, i: int, kt: KeyType, member: str, text: str) -> int:
    if member in kt.members:
        return kt.members.index(member)
    folded = [m.lower() for m in kt.members]  # a hand-edited bound in another case (members are unique per collation)
    if member.lower() in folded:
        return folded.index(member.lower())
    raise ConfigError(f"key value {text!r} of {side.name} is not a member of {kt.data_type.upper()} column "
                      f"{side.key[i]!r} ({', '.join(kt.members)}): fix the chunk bound in the plan file")


def key_label(side: TableSide, key: tuple) -> tuple:
    """A row key as the user knows it: ENUM/SET index numbers back to their text."""
    out = []
    for i, v in enumerate(key):
        kt = side.key_type(i)
        if kt.data_type == "enum" and isinstance(v, int) and 0 <= v <= len(kt.members):
            v = kt.members[v - 1] if v else ""
        elif kt.data_type == "set" and isinstance(v, int) and kt.members and v < 1 << len(kt.members):
            v = ",".join(m for b, m in enumerate(kt.members) if v >> b & 1)
        out.append(v)
    return tuple(out)


def decode_bound(bound: list[Any] | None) -> Bound:
    return PaginationKey.decode(bound)


def range_where(side: TableSide, lower: Bound, upper: Bound, within: Within = ()) -> tuple[str, list[Any]]:
    """WHERE text and parameters for lower < key <= upper (and inside every `within` range) plus the
    side's row filter.

    Each side compares bounds in its own order (its key collation). When the orders differ, a bound
    taken on one side may lie outside the enclosing range on the other: repeating the enclosing
    ranges keeps each half of a bisection inside its parent on both sides (the halves partition it)."""
    parts: list[str] = []
    params: list[Any] = []
    if side.filter_sql:
        parts.append(side.filter_sql)
        params += side.filter_params
    for lo, hi in (*within, (lower, upper)):
        if lo is not None:
            sql, p = compare_sql(side.key, ">", key_values(side, lo))
            parts.append(sql)
            params += p
        if hi is not None:
            sql, p = compare_sql(side.key, "<=", key_values(side, hi))
            parts.append(sql)
            params += p
    return (" AND ".join(parts) or "1=1"), params


def checksum_sql(side: TableSide, lower: Bound, upper: Bound, within: Within = ()) -> tuple[str, list[Any]]:
    """The in-database checksum query of a range (also what tests EXPLAIN)."""
    where, params = range_where(side, lower, upper, within)
    return f"SELECT {checksum_select(side.columns)} FROM {side.name} WHERE {where}", params


def chunk_checksum(conn: pymysql.connections.Connection, side: TableSide, lower: Bound, upper: Bound,
                   within: Within = ()) -> tuple[int, int]:
    """(row count, sum of 64-bit row hashes) of the range, computed by the database."""
    sql, params = checksum_sql(side, lower, upper, within)
    count, total = query(conn, sql, params)[0]
    total = int(total)
    if side.client_columns:
        total += sum(_client_hashes(conn, side, *range_where(side, lower, upper, within)).values())
    return int(count), total


def _key_text_sql(side: TableSide) -> str:
    return row_text_sql(side.key_kinds())


def _client_hashes(conn, side: TableSide, where: str, params: list[Any]) -> dict[str, int]:
    """Python-side hashes of the JSON columns no database form renders alike, keyed by key text."""
    cols = ", ".join(quote_ident(c) for c in side.client_columns)
    rows = query(conn, f"SELECT {_key_text_sql(side)}, {cols} FROM {side.name} WHERE {where}", params)
    out: dict[str, int] = {}
    for key_text, *vals in rows:
        out[key_text] = out.get(key_text, 0) + client_hash(key_text, [normalize_json(v) for v in vals])
    return out


def row_hashes(conn, side: TableSide, lower: Bound, upper: Bound, within: Within = ()) -> dict[tuple, int]:
    """Every row of the range: key tuple -> row hash (including client-compared columns)."""
    return _hashes_where(conn, side, *range_where(side, lower, upper, within))


LOOKUP_BATCH = 500  # keys looked up per statement


def rows_by_key(conn, side: TableSide, keys: list[tuple]) -> dict[tuple, int]:
    """Row hashes of exactly these keys, wherever the side's key order puts them.

    Equality follows the side's collation ('ä' = 'a' under utf8mb4_general_ci), so only rows whose
    key reads back exactly as asked are returned: a key equal only under a collation is another row."""
    out: dict[tuple, int] = {}
    for i in range(0, len(keys), LOOKUP_BATCH):
        batch = keys[i:i + LOOKUP_BATCH]
        one = "(" + equals_sql(side.key) + ")"
        where = "(" + " OR ".join([one] * len(batch)) + ")"
        params = [v for key in batch for v in key_values(side, key)]
        if side.filter_sql:
            where, params = f"{side.filter_sql} AND {where}", [*side.filter_params, *params]
        wanted = set(batch)
        out.update((k, h) for k, h in _hashes_where(conn, side, where, params).items() if k in wanted)
    return out


def _hashes_where(conn, side: TableSide, where: str, params: list[Any]) -> dict[tuple, int]:
    sql = (f"SELECT {key_select_sql(side)}, {_key_text_sql(side)}, {row_hash_sql(side.columns)} "
           f"FROM {side.name} WHERE {where}")
    rows = query(conn, sql, params)
    client = _client_hashes(conn, side, where, params) if side.client_columns else {}
    n = len(side.key)
    out: dict[tuple, int] = {}
    for row in rows:
        key = tuple(key_values(side, row[:n]))
        out[key] = out.get(key, 0) + int(row[n + 1]) + client.get(row[n], 0)
    return out


def split_key(conn, side: TableSide, lower: Bound, upper: Bound, offset: int, within: Within = ()) -> list[Any] | None:
    """The key of the range's row at `offset` in key order (a bisection point), or None."""
    where, params = range_where(side, lower, upper, within)
    rows = query(conn, f"SELECT {key_select_sql(side)} FROM {side.name} WHERE {where} ORDER BY {order_sql(side.key)} "
                       "LIMIT 1 OFFSET %s", [*params, offset])
    return key_values(side, rows[0]) if rows else None


def key_where(side: TableSide, key: tuple) -> tuple[str, list[Any]]:
    where, params = equals_sql(side.key), key_values(side, key)
    if side.filter_sql:
        where, params = f"{side.filter_sql} AND {where}", [*side.filter_params, *params]
    return where, params


def row_forms(conn, side: TableSide, key: tuple) -> dict[str, str | None] | None:
    """The canonical text of each compared column of one row (None if the row is absent)."""
    forms = [column_form(c.name, c.kind) for c in side.columns]
    forms += [quote_ident(c) for c in side.client_columns]
    where, params = key_where(side, key)
    rows = query(conn, f"SELECT {', '.join(forms)} FROM {side.name} WHERE {where}", params)
    if not rows:
        return None
    names = [c.name for c in side.columns] + side.client_columns
    out: dict[str, str | None] = {}
    for name, value in zip(names, rows[0]):
        if name in side.client_columns:
            out[name] = normalize_json(value)
        else:
            out[name] = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value
    return out


def key_hull(conn, side: TableSide) -> tuple[list[Any], list[Any]] | None:
    """The side's lowest and highest key (as key_select_sql reads them), or None for an empty table."""
    where = side.filter_sql or "1=1"
    out = []
    for order in (order_sql(side.key), order_sql(side.key, descending=True)):
        rows = query(conn, f"SELECT {key_select_sql(side)} FROM {side.name} WHERE {where} ORDER BY {order} LIMIT 1",
                     side.filter_params)
        if not rows:
            return None
        out.append(key_values(side, rows[0]))
    return out[0], out[1]
