"""Merged tables without a source column: the target table is compared with the union of its sources.

A route that merges shards with disjoint keys into one table, without `--with-source-column`,
leaves nothing on the target that tells the shards' rows apart: a shard's chunk read on the
target holds every other shard's rows of that key range too. So such a table is compared over
shared key ranges: the union of every member's chunk bounds, sorted in key order. A range's
checksum on the target is compared with the sum of the members' checksums over it (row counts and
exact row-hash sums add up across shards). Each member is read only over the ranges its own keys
(lowest to highest, read at verify time) reach, so a fleet of N shards costs about what N
separate tables cost. A differing range is narrowed with every member (bisect.narrow_union): a
row the target lacks is named with the shard holding it, and a target row is "extra" only when
no member holds its key.

When the bounds cannot be ordered here as the databases order them (text keys: the order is the
collation's), the whole table is one range and bisection does the dividing.

`--tables` picking some members of such a merge still reads every member over the picked
members' ranges (the union is what the target must hold), and reports only the picked members'
differences and the rows no member holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..plan.model import Chunk, TablePlan
from .bisect import RangeDiff
from .canonical import INTEGER_TYPES
from .checksum import INDEX_TYPES, TableSide, decode_bound, key_values

ORDERED_TYPES = INTEGER_TYPES | {"decimal", "numeric", "float", "double", "real", "bit"} | INDEX_TYPES


def merged_without_source_column(tables: list[TablePlan]) -> dict[str, list[TablePlan]]:
    """Target table -> its member tables, for targets fed by several tables and no source column."""
    groups: dict[str, list[TablePlan]] = {}
    for tp in tables:
        groups.setdefault(tp.target_name, []).append(tp)
    return {name: members for name, members in groups.items()
            if len(members) > 1 and not any(m.source_column for m in members)}


def ordered_here(tp: TablePlan, side: TableSide) -> bool:
    """Whether key bounds sort in Python as both databases sort them (numbers, ENUM/SET/BIT by number)."""
    types = {c.name: c.data_type.lower() for c in tp.columns}
    for i, k in enumerate(side.key):
        dt = types.get(k, "")
        if dt not in ORDERED_TYPES:
            return False
        if dt in INDEX_TYPES | {"bit", "float", "double", "real"} and side.key_type(i).data_type != dt:
            return False  # bound as stored text on one side: text order
    return bool(side.key)


def sort_key(side: TableSide, bound: list[Any]) -> tuple:
    out = []
    for v in key_values(side, bound):
        if isinstance(v, str):
            try:
                v = Decimal(v)
            except InvalidOperation:
                pass
        out.append(v)
    return tuple(out)


def shared_ranges(members: list[TablePlan], side: TableSide) -> list[Chunk]:
    """The union of the members' chunk bounds, in key order, as consecutive ranges (ids 0..n-1)."""
    bounds: dict[tuple, list[Any]] = {}
    for tp in members:
        for chunk in tp.chunks:
            for b in (chunk.lower, chunk.upper):
                if b is not None:
                    bounds.setdefault(sort_key(side, decode_bound(b) or []), b)
    ordered = [bounds[k] for k in sorted(bounds)]
    edges: list[list[Any] | None] = [None, *ordered, None]
    return [Chunk(id=i, lower=edges[i], upper=edges[i + 1]) for i in range(len(edges) - 1)]


def meets(side: TableSide, hull: tuple[list[Any], list[Any]] | None, chunk: Chunk) -> bool:
    """Whether lower < key <= upper can hold a key between the hull's lowest and highest."""
    if hull is None:
        return False
    low, high = sort_key(side, hull[0]), sort_key(side, hull[1])
    lo = None if chunk.lower is None else sort_key(side, decode_bound(chunk.lower) or [])
    hi = None if chunk.upper is None else sort_key(side, decode_bound(chunk.upper) or [])
    return (lo is None or high > lo) and (hi is None or low <= hi)


@dataclass
class MergeGroup:
    """One merged target table and the runs of all its members (picked by --tables or not)."""

    target: str  # target db.table
    runs: list[Any]  # compare._TableRun of every member, plan order
    ranges: list[Chunk] = field(default_factory=list)
    one_range: bool = False
    expected: dict[int, int] = field(default_factory=dict)  # range id -> member checksums still to come
    sums: dict[int, tuple[int, int]] = field(default_factory=dict)  # range id -> union (rows, hash sum)
    target_sums: dict[int, tuple[int, int]] = field(default_factory=dict)
    differing: list[tuple[Chunk, tuple[int, int], tuple[int, int]]] = field(default_factory=list)
    diff: RangeDiff = field(default_factory=RangeDiff)
    hidden: int = 0  # differing rows of members not picked by --tables

    @property
    def journal_key(self) -> str:
        return f"merged:{self.target}"

    def reported(self) -> list[Any]:
        return [r for r in self.runs if r.reported]

    @property
    def report_run(self) -> Any:
        """The run that rows of no member are reported under (the first picked member)."""
        return self.reported()[0]

    def add(self, chunk: Chunk, cs: tuple[int, int], ct: tuple[int, int] | None) -> bool:
        """One member's checksum of a range (and the target's, from the member carrying it); True when
        the range is complete."""
        c, t = self.sums.get(chunk.id, (0, 0))
        self.sums[chunk.id] = (c + cs[0], t + cs[1])
        if ct is not None:
            self.target_sums[chunk.id] = ct
        self.expected[chunk.id] -= 1
        return self.expected[chunk.id] == 0

    def pending(self) -> list[int]:
        return [i for i, n in self.expected.items() if n > 0]
