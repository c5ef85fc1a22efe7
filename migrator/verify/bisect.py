"""Narrow a differing key range to the rows that differ: split by key until a range is small, then compare row hashes."""

from __future__ import annotations

from dataclasses import dataclass, field

from .checksum import Bound, TableSide, Within, chunk_checksum, row_forms, row_hashes, rows_by_key, split_key
from .report import suspect_key_pair, suspect_value

ROWS_AT_ONCE = 2000  # a range this small is compared row by row (one key+hash per row)
MAX_DEPTH = 64  # each split shrinks the range; only rows written into it meanwhile (sync) could stall that


@dataclass
class RangeDiff:
    """Differing rows found so far in one table's ranges."""

    missing: list[tuple] = field(default_factory=list)  # on source only
    extra: list[tuple] = field(default_factory=list)  # on target only
    changed: list[tuple] = field(default_factory=list)
    truncated: bool = False
    moved: int = 0  # rows a range held on one side only, found identical elsewhere on the other (collation order)

    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)

    def add_changed(self, key: tuple) -> None:
        if key not in self.changed:  # a moved row is seen from both of its ranges
            self.changed.append(key)


def _compare_rows(src, tgt, sside: TableSide, tside: TableSide, lower: Bound, upper: Bound, within: Within,
                  out: RangeDiff) -> None:
    """Rows of the range by key. A key on one side only is looked up by exact key on the other:
    when the key's collation differs (latin1_swedish_ci -> utf8mb4_general_ci sort 'ä' apart) a
    bound puts a row in this range on one side and in another range on the other."""
    s = row_hashes(src, sside, lower, upper, within)
    t = row_hashes(tgt, tside, lower, upper, within)
    for here, other_conn, other_side, kind in ((s, tgt, tside, "missing"), (t, src, sside, "extra")):
        other_range = t if kind == "missing" else s
        alone = sorted((k for k in here if k not in other_range), key=repr)
        elsewhere = rows_by_key(other_conn, other_side, alone) if alone else {}
        for k in alone:
            if k not in elsewhere:
                getattr(out, kind).append(k)
            elif elsewhere[k] == here[k]:
                out.moved += kind == "missing"  # counted once: seen as missing from one range, extra in another
            else:
                out.add_changed(k)
    for k in sorted((k for k in s if k in t and s[k] != t[k]), key=repr):
        out.add_changed(k)


def narrow(src, tgt, sside: TableSide, tside: TableSide, lower: Bound, upper: Bound,
           counts: tuple[int, int], max_rows: int, out: RangeDiff | None = None, within: Within = ()) -> RangeDiff:
    """Differing rows of a range whose checksums differ; stops after about max_rows rows.

    The range is split at the middle row of the side holding more rows, read as key_select_sql
    gives it (ENUM index, exact FLOAT, BIT integer), so it compares exactly as the key sorts. Both
    halves stay inside the range on both sides (`within`), and on the side split each holds fewer
    rows: every split makes progress, whatever order the other side's collation gives the keys."""
    out = out or RangeDiff()
    if out.total() >= max_rows:
        out.truncated = True
        return out
    n_s, n_t = counts
    if not sside.key or max(n_s, n_t) <= ROWS_AT_ONCE or len(within) >= MAX_DEPTH:
        _compare_rows(src, tgt, sside, tside, lower, upper, within, out)
        return out
    conn, side, n = (src, sside, n_s) if n_s >= n_t else (tgt, tside, n_t)
    mid = split_key(conn, side, lower, upper, (n - 1) // 2, within)
    if mid is None:  # the range shrank since it was counted (sync running): compare what is there
        _compare_rows(src, tgt, sside, tside, lower, upper, within, out)
        return out
    inside = (*within, (lower, upper))
    for lo, hi in ((None, mid), (mid, None)):
        cs, ct = chunk_checksum(src, sside, lo, hi, inside), chunk_checksum(tgt, tside, lo, hi, inside)
        if cs != ct:
            narrow(src, tgt, sside, tside, lo, hi, (cs[0], ct[0]), max_rows, out, inside)
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
