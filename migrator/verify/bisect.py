"""Narrow a differing key range to the rows that differ: split by key until a range is small, then compare row hashes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .checksum import Bound, TableSide, Within, chunk_checksum, row_forms, row_hashes, rows_by_key, split_key
from .report import suspect_key_pair, suspect_value

ROWS_AT_ONCE = 2000  # a range this small is compared row by row (one key+hash per row)
MAX_DEPTH = 64  # each split shrinks the range; only rows written into it meanwhile (sync) could stall that


@dataclass
class RangeDiff:
    """Differing rows found so far in one table's ranges (or one merged table's: owner says whose)."""

    missing: list[tuple] = field(default_factory=list)  # on source only
    extra: list[tuple] = field(default_factory=list)  # on target only (on no source of a merge)
    changed: list[tuple] = field(default_factory=list)
    truncated: bool = False
    moved: int = 0  # rows a range held on one side only, found identical elsewhere on the other (collation order)
    owner: dict[tuple, int] = field(default_factory=dict)  # missing/changed key -> index of the source holding it
    collisions: dict[tuple, list[int]] = field(default_factory=dict)  # key held by more than one source

    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed) + len(self.collisions)

    def add_changed(self, key: tuple, owner: int = 0) -> None:
        if key not in self.changed:  # a moved row is seen from both of its ranges
            self.changed.append(key)
            self.owner[key] = owner


@dataclass
class Shard:
    """One source of a range compared as the union of its sources (a merge without a source column)."""

    conn: Any
    side: TableSide


def union_checksum(shards: list[Shard], lower: Bound, upper: Bound, within: Within = ()) -> tuple[int, int]:
    """(rows, sum of row hashes) of the range over every source: the sums are exact, so they add up
    to what the target holds when it holds exactly the union of the sources' rows."""
    count = total = 0
    for shard in shards:
        c, t = chunk_checksum(shard.conn, shard.side, lower, upper, within)
        count, total = count + c, total + t
    return count, total


def _source_rows(shards: list[Shard], lower: Bound, upper: Bound, within: Within,
                 out: RangeDiff) -> dict[tuple, tuple[int, int]]:
    """Rows of the range on every source: key -> (source index, row hash); a key on two sources is a collision."""
    rows: dict[tuple, tuple[int, int]] = {}
    for i, shard in enumerate(shards):
        for k, h in row_hashes(shard.conn, shard.side, lower, upper, within).items():
            if k in rows:
                holders = out.collisions.setdefault(k, [rows[k][0]])
                if i not in holders:
                    holders.append(i)
                continue
            rows[k] = (i, h)
    return rows


def _on_sources(shards: list[Shard], keys: list[tuple]) -> dict[tuple, tuple[int, int]]:
    """Where each key is found by exact lookup: key -> (source index, row hash), the first source holding it."""
    found: dict[tuple, tuple[int, int]] = {}
    for i, shard in enumerate(shards):
        left = [k for k in keys if k not in found]
        if not left:
            break
        found.update((k, (i, h)) for k, h in rows_by_key(shard.conn, shard.side, left).items())
    return found


def _compare_rows(shards: list[Shard], tgt, tside: TableSide, lower: Bound, upper: Bound, within: Within,
                  out: RangeDiff) -> None:
    """Rows of the range by key. A key on one side only is looked up by exact key on the other
    (every source, for a merge): when the key's collation differs (latin1_swedish_ci ->
    utf8mb4_general_ci sort 'ä' apart) a bound puts a row in this range on one side and in another
    range on the other. A target row is extra only when no source holds its key."""
    s = _source_rows(shards, lower, upper, within, out)
    t = row_hashes(tgt, tside, lower, upper, within)
    alone = sorted((k for k in s if k not in t), key=repr)
    elsewhere = rows_by_key(tgt, tside, alone) if alone else {}
    for k in alone:
        owner, h = s[k]
        if k not in elsewhere:
            out.missing.append(k)
            out.owner[k] = owner
        elif elsewhere[k] == h:
            out.moved += 1  # counted once: seen as missing from one range, extra in another
        else:
            out.add_changed(k, owner)
    alone = sorted((k for k in t if k not in s), key=repr)
    found = _on_sources(shards, alone) if alone else {}
    for k in alone:
        if k not in found:
            out.extra.append(k)
        elif found[k][1] != t[k]:
            out.add_changed(k, found[k][0])
    for k in sorted((k for k in s if k in t and s[k][1] != t[k]), key=repr):
        if k not in out.collisions:
            out.add_changed(k, s[k][0])


def narrow(src, tgt, sside: TableSide, tside: TableSide, lower: Bound, upper: Bound,
           counts: tuple[int, int], max_rows: int, out: RangeDiff | None = None, within: Within = ()) -> RangeDiff:
    """Differing rows of a range of one source whose checksums differ; see narrow_union."""
    return narrow_union([Shard(src, sside)], tgt, tside, lower, upper, counts, max_rows, out, within)


def narrow_union(shards: list[Shard], tgt, tside: TableSide, lower: Bound, upper: Bound,
                 counts: tuple[int, int], max_rows: int, out: RangeDiff | None = None,
                 within: Within = ()) -> RangeDiff:
    """Differing rows of a range whose checksums (over the union of `shards`) differ; stops after about max_rows rows.

    The range is split at the middle row of the side holding more rows (the target, or the source
    with most rows), read as key_select_sql gives it (ENUM index, exact FLOAT, BIT integer), so it
    compares exactly as the key sorts. Both halves stay inside the range on both sides (`within`),
    and on the side split each holds fewer rows: every split makes progress, whatever order the
    other side's collation gives the keys."""
    out = out or RangeDiff()
    if out.total() >= max_rows:
        out.truncated = True
        return out
    n_s, n_t = counts
    key = tside.key
    if not key or max(n_s, n_t) <= ROWS_AT_ONCE or len(within) >= MAX_DEPTH:
        _compare_rows(shards, tgt, tside, lower, upper, within, out)
        return out
    conn, side, n = tgt, tside, n_t
    if n_s > n_t:
        sizes = [chunk_checksum(s.conn, s.side, lower, upper, within)[0] for s in shards] if len(shards) > 1 else [n_s]
        big = max(range(len(shards)), key=lambda i: sizes[i])
        conn, side, n = shards[big].conn, shards[big].side, sizes[big]
    mid = split_key(conn, side, lower, upper, (n - 1) // 2, within) if n else None
    if mid is None:  # the range shrank since it was counted (sync running): compare what is there
        _compare_rows(shards, tgt, tside, lower, upper, within, out)
        return out
    inside = (*within, (lower, upper))
    for lo, hi in ((None, mid), (mid, None)):
        cs, ct = union_checksum(shards, lo, hi, inside), chunk_checksum(tgt, tside, lo, hi, inside)
        if cs != ct:
            narrow_union(shards, tgt, tside, lo, hi, (cs[0], ct[0]), max_rows, out, inside)
    return out


@dataclass
class ChangedRow:
    key: tuple
    columns: list[str]
    suspected: str | None
    detail: str | None


def explain_changed(src, tgt, sside: TableSide, tside: TableSide, key: tuple) -> ChangedRow:
    """Which columns of a changed row differ, and whether the cause looks like representation."""
    s = row_forms(src, sside, key) or {}
    t = row_forms(tgt, tside, key) or {}
    kinds = {c.name: c.kind for c in sside.columns}
    cols = [c for c in s if s.get(c) != t.get(c)]
    causes = {suspect_value(kinds.get(c, "json"), s.get(c), t.get(c)) for c in cols}
    suspected = causes.pop() if len(causes) == 1 and None not in causes else None
    detail = "; ".join(f"{c}: source {_short(s.get(c))} / target {_short(t.get(c))}" for c in cols[:5]) or None
    return ChangedRow(key, cols, suspected, detail)


def _short(v: str | None) -> str:
    if v is None:
        return "NULL"
    return repr(v if len(v) <= 40 else v[:37] + "...")


def pair_representation(missing: list[tuple], extra: list[tuple]) -> dict[tuple, str]:
    """Missing/extra keys that are the same row under another representation -> the suspected cause."""
    out: dict[tuple, str] = {}
    for m in missing:
        for e in extra:
            cause = suspect_key_pair(m, e)
            if cause:
                out[m] = out[e] = cause
    return out
