"""What sync needs to know about copy: where each source's binlog replay starts, and whether
every table of that source has all its chunks copied (from copy's journal and positions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..copy.state import CopyState
from ..plan.model import Plan
from ..positions import BinlogPosition
from ..workdir import WorkDir


@dataclass
class SourceCopy:
    start: BinlogPosition | None
    end: BinlogPosition | None
    incomplete: list[str] = field(default_factory=list)  # TablePlan.id of tables not fully copied


def source_copy(workdir: WorkDir, plan: Plan, source: str) -> SourceCopy:
    tables = [t for t in plan.tables if t.source == source and t.mode == "copy+sync"]
    state = CopyState.load(workdir, plan)
    incomplete = [t.id for t in tables if not state.table_complete(t.id)]
    return SourceCopy(state.start_position(source), state.end_position(source), incomplete)
