"""The chunk key: how its values are read, compared in SQL and stored (Ghostferry's PaginationKey).

Every stage that walks a key range or names rows by key uses this one module: plan (chunk
boundaries), copy (pages), verify (checksum ranges, bisection, row lookups), its fix SQL, and sync
(deletes by key, the rows a cascade reaches).

- read: `PaginationKey.select_sql` reads each key column in the form that compares exactly as the
  column sorts (BOUND_EXPRESSIONS): ENUM/SET as their index number (ORDER BY sorts by it, while
  `col > 'text'` compares text), BIT as its integer, FLOAT as the exact DOUBLE (FLOAT prints 6
  digits). A value read so is a valid bound for the next page.
- compare: `compare_sql` / `range_sql` spell the row comparison `(a, b) > (x, y)` out as
  `a >= x AND (a > x OR (a = x AND b > y))`. Measured on the sandbox servers (EXPLAIN of a page
  `ORDER BY a, b LIMIT 100` over a 200,000-row table keyed (a, b), 2026-11-29):
  the row-value form is not range-optimised by MariaDB 10.11 (type=index: a page deep in the table
  read 15,105 index entries from the first one to return 100); the expanded OR is a range on
  MariaDB (99 entries) but seekdb splits it into a UNION ALL of three range scans under
  `ORDER BY key LIMIT n` (a page; checksums and bisection points stayed one scan); with the
  leading column also bounded (`a >= x AND ...`) it is one range on MariaDB and one range scan
  on seekdb.
- equality: `equals_sql` (one key: `a = %s AND b = %s`, or its values written inline) and `in_sql`
  (a batch of keys in one statement: `a IN (..)` / `(a, b) IN ((..), ..)`), values written as
  literals by the caller's writer (the target connection's escaping for sync, portable literals
  for fix SQL); a binary value as `binary_literal` writes it: seekdb matches nothing with
  `k IN (X'')`, so the empty value is written `''` (`= X''` and `IN ('')` match).
- store: `encode_key_value` / `decode_key_value` convert a value for the plan file and journals
  (JSON scalars: integers as ints, other values as the text MySQL compares with the column,
  binary values as {"hex": "..."}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from .db import quote_ident
from .errors import ConfigError

KeyValue = Any  # int | str | {"hex": str} | None: a key value as the plan file stores it

# How a key column is read as a bound (see the module docstring); other types as stored.
BOUND_EXPRESSIONS = {"enum": "{q}+0", "set": "{q}+0", "bit": "{q}+0", "float": "CAST({q} AS DOUBLE)"}


def bound_expression(column: str, data_type: str = "") -> str:
    return BOUND_EXPRESSIONS.get(data_type.lower(), "{q}").format(q=quote_ident(column))


def column_list(columns: Sequence[str]) -> str:
    return ", ".join(quote_ident(c) for c in columns)


def order_sql(columns: Sequence[str], descending: bool = False) -> str:
    """The key's ORDER BY list (without the keywords)."""
    return ", ".join(quote_ident(c) + (" DESC" if descending else "") for c in columns)


def compare_sql(columns: Sequence[str], op: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`(columns) op (values)` for op in > >= < <=, in the form both engines range-scan (see above)."""
    if op not in (">", ">=", "<", "<="):
        raise ValueError(f"not a key comparison: {op!r}")
    if len(columns) != len(values):
        raise ConfigError(f"key ({column_list(columns)}) compared with {len(values)} value(s) {list(values)!r}: "
                          "a chunk bound in the plan file has the wrong length; fix it or re-run `migrator plan`")
    sql, params = _expanded(columns, op, values)
    if len(columns) == 1:
        return sql, params
    lead = quote_ident(columns[0])
    return f"{lead} {op[0]}= %s AND {sql}", [values[0], *params]


def _expanded(columns: Sequence[str], op: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """(c1, c2, ..) op (v1, v2, ..): the leading columns compare strictly, the last one with op."""
    c = quote_ident(columns[0])
    if len(columns) == 1:
        return f"{c} {op} %s", [values[0]]
    rest, params = _expanded(columns[1:], op, values[1:])
    return f"({c} {op[0]} %s OR ({c} = %s AND {rest}))", [values[0], values[0], *params]


def range_sql(columns: Sequence[str], lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> tuple[list[str], list[Any]]:
    """The conditions of the half-open range `lower < key <= upper` (None: unbounded) and their
    parameters; the caller joins them with AND (no condition: the whole table)."""
    parts: list[str] = []
    params: list[Any] = []
    for bound, op in ((lower, ">"), (upper, "<=")):
        if bound is not None:
            sql, p = compare_sql(columns, op, bound)
            parts.append(sql)
            params += p
    return parts, params


Literal = Callable[[Any], str]  # a value -> its SQL literal


def equals_sql(columns: Sequence[str], values: Sequence[Any] = (), lit: Literal | None = None) -> str:
    """`a = %s AND b = %s`: one key (parameters: its values in key order); given its values and
    `lit`, the values written inline: `a = 1 AND b = 'x'` (a statement kept in a file: fix SQL)."""
    if lit is None:
        return " AND ".join(f"{quote_ident(c)} = %s" for c in columns)
    return " AND ".join(f"{quote_ident(c)} = {lit(v)}" for c, v in zip(columns, values))


def in_sql(columns: Sequence[str], keys: Iterable[Sequence[Any]], lit: Literal | None = None) -> str:
    """The rows holding one of `keys` (each its values in key order), values written by `lit`:
    `a IN (1,2)`, `(a,b) IN ((1,'x'),(2,'y'))`. Built once per batch of keys (sync's deletes):
    no placeholder is formatted per value. lit None: placeholders, the keys' values the parameters."""
    if lit is None:
        lit = _placeholder
    if len(columns) == 1:
        return f"{quote_ident(columns[0])} IN ({','.join([lit(k[0]) for k in keys])})"
    cols = ",".join([quote_ident(c) for c in columns])
    return f"({cols}) IN ({','.join(['(' + ','.join([lit(v) for v in k]) + ')' for k in keys])})"


def _placeholder(_value: Any) -> str:
    return "%s"


def binary_literal(data: bytes) -> str:
    """A binary value as a SQL literal: X'hex'; the empty value as '' (see the module doc)."""
    return f"X'{data.hex()}'" if data else "''"


@dataclass(frozen=True)
class PaginationKey:
    """A table's chunk key: its columns and their DATA_TYPEs ('' = read as stored)."""

    columns: tuple[str, ...]
    types: tuple[str, ...] = ()

    @classmethod
    def of(cls, columns: Sequence[str], data_types: dict[str, str]) -> PaginationKey:
        return cls(tuple(columns), tuple(data_types.get(c, "").lower() for c in columns))

    def type_of(self, i: int) -> str:
        return self.types[i] if i < len(self.types) else ""

    def select_sql(self) -> str:
        """The key columns as bound values (BOUND_EXPRESSIONS)."""
        return ", ".join(bound_expression(c, self.type_of(i)) for i, c in enumerate(self.columns))

    def order_sql(self, descending: bool = False) -> str:
        return order_sql(self.columns, descending)

    def compare_sql(self, op: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return compare_sql(self.columns, op, values)

    def range_sql(self, lower: Sequence[Any] | None, upper: Sequence[Any] | None) -> tuple[list[str], list[Any]]:
        return range_sql(self.columns, lower, upper)

    def equals_sql(self, values: Sequence[Any] = (), lit: Literal | None = None) -> str:
        return equals_sql(self.columns, values, lit)

    def in_sql(self, keys: Iterable[Sequence[Any]], lit: Literal | None = None) -> str:
        return in_sql(self.columns, keys, lit)

    @staticmethod
    def encode(values: Sequence[Any] | None) -> list[KeyValue] | None:
        return None if values is None else [encode_key_value(v) for v in values]

    @staticmethod
    def decode(values: Sequence[KeyValue] | None) -> list[Any] | None:
        return None if values is None else [decode_key_value(v) for v in values]


def encode_key_value(value: Any) -> KeyValue:
    """A key value read from the source -> a JSON/YAML scalar for the plan file."""
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_timedelta(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def decode_key_value(value: KeyValue) -> Any:
    """A plan-file key value -> a query parameter for pymysql."""
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    return value


def format_timedelta(td: timedelta) -> str:
    """A TIME value as MySQL text, the sign on the whole value ('-00:00:01.000001')."""
    total_us = td.days * 86_400_000_000 + td.seconds * 1_000_000 + td.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    secs, us = divmod(total_us, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}:{m:02d}:{s:02d}" + (f".{us:06d}" if us else "")
