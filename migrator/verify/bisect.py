"""Narrow a differing key range to the rows that differ: split by key until a range is small, then compare row hashes."""

from __future__ import annotations

from dataclasses import dataclass, field

from .checksum import Bound, TableSide, chunk_checksum, row_forms, row_hashes, same_bound, split_key
from .report import suspect_key_pair, suspect_value

ROWS_AT_ONCE = 2000  # a range this small is compared row by row (one key+hash per row)


@dataclass
class RangeDiff:
    missing: list[tuple] = field(default_factory=list)  # on source only
    extra: list[tuple] = field(default_factory=list)  # on target only
    changed: list[tuple] = field(default_factory=list)
    truncated: bool = False

    def total(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


def _compare_rows(src, tgt, sside: TableSide, tside: TableSide, lower: Bound, upper: Bound, out: RangeDiff) -> None:
    s = row_hashes(src, sside, lower, upper)
    t = row_hashes(tgt, tside, lower, upper)
    out.missing += sorted((k for k in s if k not in t), key=repr)
    out.extra += sorted((k for k in t if k not in s), key=repr)
    out.changed += sorted((k for k in s if k in t and s[k] != t[k]), key=repr)


def narrow(src, tgt, sside: TableSide, tside: TableSide, lower: Bound, upper: Bound,
           counts: tuple[int, int], max_rows: int, out: RangeDiff | None = None) -> RangeDiff:
    """Differing rows of a range whose checksums differ; stops after about max_rows rows."""
    out = out or RangeDiff()
    if out.total() >= max_rows:
        out.truncated = True
        return out
    n_s, n_t = counts
    if not sside.key or max(n_s, n_t) <= ROWS_AT_ONCE:
        _compare_rows(src, tgt, sside, tside, lower, upper, out)
        return out
    # split points are read as key_select_sql gives them (ENUM index, exact FLOAT, BIT integer), so both
    # halves compare exactly as the key sorts: no row falls between them
    mid = split_key(src, sside, lower, upper, n_s // 2) if n_s > 1 else None
    if mid is None or same_bound(sside, mid, upper):
        mid = split_key(tgt, tside, lower, upper, n_t // 2)
    if mid is None or same_bound(tside, mid, upper):  # cannot split further: compare whatever is there
        _compare_rows(src, tgt, sside, tside, lower, upper, out)
        return out
    for lo, hi in ((lower, mid), (mid, upper)):
        cs, ct = chunk_checksum(src, sside, lo, hi), chunk_checksum(tgt, tside, lo, hi)
        if cs != ct:
            narrow(src, tgt, sside, tside, lo, hi, (cs[0], ct[0]), max_rows, out)
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
