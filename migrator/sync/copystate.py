"""What sync needs to know about copy: where each source's binlog replay starts, and whether
every table of that source has all its chunks copied.

Uses engineer C's `migrator.copy.state.CopyState` when it exists; until then the copy position
file alone (WorkDir.copy_position: {"start": BinlogPosition, "end": BinlogPosition | null}),
where a recorded "end" means the copy of that source finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import StateError
from ..plan.model import Plan
from ..positions import BinlogPosition
from ..state import read_json
from ..workdir import WorkDir


@dataclass
class SourceCopy:
    start: BinlogPosition | None
    end: BinlogPosition | None
    incomplete: list[str] = field(default_factory=list)  # TablePlan.id of tables not fully copied


def source_copy(workdir: WorkDir, plan: Plan, source: str) -> SourceCopy:
    tables = [t for t in plan.tables if t.source == source and t.mode == "copy+sync"]
    try:
        from ..copy.state import CopyState  # type: ignore[import-not-found]
    except ImportError:
        return _from_position_file(workdir, source, [t.id for t in tables])
    state = CopyState.load(workdir, plan)
    incomplete = [t.id for t in tables if not state.table_complete(t.id)]
    return SourceCopy(state.start_position(source), state.end_position(source), incomplete)


def _from_position_file(workdir: WorkDir, source: str, table_ids: list[str]) -> SourceCopy:
    raw = read_json(workdir.copy_position(source))
    if not raw or not raw.get("start"):
        return SourceCopy(None, None, table_ids)
    try:
        start = BinlogPosition.model_validate(raw["start"])
        end = BinlogPosition.model_validate(raw["end"]) if raw.get("end") else None
    except ValueError as exc:
        raise StateError(f"copy position file {str(workdir.copy_position(source))!r} is not valid: {exc}") from None
    return SourceCopy(start, end, [] if end else table_ids)
