"""The oracle: every row of every table read on both sides and compared in the client, by key,
in a canonical form. Independent of `migrator verify` (no checksums, no migrator SQL).

Only representations that are not data differences are normalized: text arrives as Python
str on both sides (latin1 converted to utf8mb4 by the servers), FLOAT is read as the exact
double of its stored single (`col + 0e0`, which both engines render identically), DECIMAL
compares by value, JSON by parsed value (seekdb stores JSON normalized: key order, 1.50 -> 1.5),
BIT by integer. Dates, times and timestamps are compared as the text the servers return
(sessions in UTC), so '2024-05-00' must stay '2024-05-00'."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pymysql

from migrator.db import quote_ident

from .schema_gen import TableSpec


def raw_connect(host: str, port: int, user: str = "root", password: str = "", **kw) -> pymysql.connections.Connection:
    """A plain client session returning every value as the server's text (or bytes), in UTC."""
    conn = pymysql.connect(host=host, port=port, user=user, password=password, charset="utf8mb4", conv={},
                           autocommit=True, **kw)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        try:  # OceanBase stops a query after 10 s by default: a full-table read on a loaded machine
            cur.execute("SET ob_query_timeout = 3600000000, ob_trx_timeout = 3600000000")
        except pymysql.err.MySQLError:
            pass  # not OceanBase
    return conn


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return ("{}", tuple(sorted((k, _freeze(x)) for k, x in v.items())))
    if isinstance(v, list):
        return ("[]", tuple(_freeze(x) for x in v))
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, Decimal)):
        return Decimal(v).normalize() if v != 0 else Decimal(0)
    return v


def canonical(canon: str, v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bytes) and canon not in ("bytes", "bit"):
        v = v.decode("utf-8")
    if canon == "int":
        return int(v)
    if canon == "dec":
        return Decimal(v)
    if canon in ("float", "double"):
        return float(v)
    if canon == "bytes":
        return v if isinstance(v, bytes) else v.encode("utf-8")
    if canon == "bit":
        return int.from_bytes(v, "big") if isinstance(v, bytes) else int(v)
    if canon == "json":
        try:
            return _freeze(json.loads(v, parse_float=Decimal))
        except ValueError:
            return ("invalid json", v)
    return v  # text, str: exactly as returned


@dataclass
class Difference:
    table: str
    key: tuple
    what: str  # missing on target | extra on target | changed | shape
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.table} key={self.key!r}: {self.what}{(' ' + self.detail) if self.detail else ''}"


@dataclass
class Comparison:
    rows: int = 0
    tables: int = 0
    differences: list[Difference] = field(default_factory=list)

    def counts(self) -> str:
        by: dict[tuple[str, str], int] = {}
        for d in self.differences:
            by[(d.table, d.what)] = by.get((d.table, d.what), 0) + 1
        return ", ".join(f"{t} {what}: {n}" for (t, what), n in sorted(by.items()))

    def report(self, limit: int = 25) -> str:
        lines = [self.counts()] + [str(d) for d in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"... and {len(self.differences) - limit} more")
        return "\n".join(lines)


def columns_of(conn, db: str, table: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
                    "ORDER BY ORDINAL_POSITION", (db, table))
        return [r[0] if isinstance(r[0], str) else r[0].decode() for r in cur.fetchall()]


def read_rows(conn, db: str, table: str, cols: list[str], canon: dict[str, str], key: list[str]) -> dict[tuple, tuple]:
    exprs = [f"{quote_ident(c)} + 0e0" if canon.get(c) == "float" else quote_ident(c) for c in cols]
    out: dict[tuple, tuple] = {}
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(f"SELECT {', '.join(exprs)} FROM {quote_ident(db)}.{quote_ident(table)}")
        idx = [cols.index(k) for k in key]
        for raw in cur:
            row = tuple(canonical(canon.get(c, "str"), v) for c, v in zip(cols, raw))
            out[tuple(row[i] for i in idx)] = row
    return out


def compare_table(src, tgt, db: str, tdb: str, spec: TableSpec, result: Comparison) -> None:
    scols, tcols = columns_of(src, db, spec.name), columns_of(tgt, tdb, spec.name)
    if not tcols:
        result.differences.append(Difference(spec.name, (), "shape", "table missing on target"))
        return
    if [c.lower() for c in scols] != [c.lower() for c in tcols]:
        result.differences.append(Difference(spec.name, (), "shape", f"columns source {scols} target {tcols}"))
    tset = {c.lower() for c in tcols}
    cols = [c for c in scols if c.lower() in tset]
    canon = {c.name: c.kind.canon for c in spec.columns}
    srows = read_rows(src, db, spec.name, cols, canon, spec.key)
    trows = read_rows(tgt, tdb, spec.name, cols, canon, spec.key)
    result.rows += len(srows)
    result.tables += 1
    for k, srow in srows.items():
        trow = trows.get(k)
        if trow is None:
            result.differences.append(Difference(spec.name, k, "missing on target", _show(cols, srow)))
        elif trow != srow:
            changed = [f"{c}: source {a!r} target {b!r}" for c, a, b in zip(cols, srow, trow) if a != b]
            result.differences.append(Difference(spec.name, k, "changed", "; ".join(changed)))
    for k, trow in trows.items():
        if k not in srows:
            result.differences.append(Difference(spec.name, k, "extra on target", _show(cols, trow)))


def _show(cols: list[str], row: tuple) -> str:
    text = ", ".join(f"{c}={v!r}" for c, v in zip(cols, row))
    return text if len(text) < 400 else text[:400] + "…"


def compare(src, tgt, db: str, tdb: str, tables: list[TableSpec]) -> Comparison:
    result = Comparison()
    for spec in tables:
        compare_table(src, tgt, db, tdb, spec, result)
    return result
