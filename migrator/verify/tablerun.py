"""One table's verify run: its sides, result, differing chunks and rows, and for a merge without
a source column the shared ranges it is read over."""

from __future__ import annotations

from typing import Any

from ..plan.model import Chunk, Column, TablePlan
from .bisect import RangeDiff
from .checksum import TableSide
from .merge import MergeGroup
from .report import TableResult


class TableRun:
    def __init__(self, tp: TablePlan, sside: TableSide | None, tside: TableSide | None, result: TableResult,
                 one_range: bool = False, reported: bool = True):
        self.tp, self.sside, self.tside, self.result = tp, sside, tside, result
        self.one_range = one_range  # the plan's chunks do not divide the target alike: one range
        self.reported = reported  # picked by --tables (a merge's other members are read, not reported)
        self.differing: list[tuple[Chunk, tuple[int, int], tuple[int, int]]] = []
        self.diff = RangeDiff()
        self.unknown: list[tuple[Any, tuple]] = []  # merged table: (shard value, key) of rows of no shard
        self.shard_values: list[Any] = []
        self.group: MergeGroup | None = None  # merged without a source column: compared as a union
        self.ranges: list[Chunk] = []  # the group's shared ranges this member is read over
        self.carries: set[int] = set()  # ... and those whose target checksum it also takes
        self.columns: list[Column] = tp.data_columns()  # compared and written by fix SQL: the live shape
        self.shape_diffs: list[str] = []  # columns on one side only
        self.collisions: list[tuple[tuple, tuple]] = []  # (source key lost, the key the target kept instead)


def plan_chunks(tp: TablePlan, one_range: bool = False) -> list[Chunk]:
    if not tp.key or not tp.chunks or one_range:
        return [Chunk(id=0)]
    return tp.chunks


def run_chunks(run: TableRun) -> list[Chunk]:
    return run.ranges if run.group is not None else plan_chunks(run.tp, run.one_range)


def carries_target(run: TableRun, chunk: Chunk) -> bool:
    return run.group is None or chunk.id in run.carries
