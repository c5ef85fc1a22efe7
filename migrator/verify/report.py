"""The verify report (JSON in the work directory and --report FILE) and how differences are classified."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import ExitCode, StateError
from ..plan.model import KeyValue
from ..state import read_model

DiffKind = Literal["missing", "extra", "changed"]


class RowDiff(BaseModel):
    """One row that differs, named by its key. `present_on` says which side(s) hold it."""

    table: str  # TablePlan.id: instance/db.table
    target: str  # target db.table
    key: list[KeyValue]  # encode_key_value form, in plan key order
    kind: DiffKind  # missing = on source only, extra = on target only, changed = values differ
    present_on: list[Literal["source", "target"]]
    columns: list[str] = Field(default_factory=list)  # changed columns
    suspected: str | None = None  # a representation cause, not a data loss: read before chasing
    detail: str | None = None
    fixed: bool = False  # repaired by --apply-fix and re-checked


class TableResult(BaseModel):
    table: str  # TablePlan.id
    source_table: str
    target_table: str
    status: Literal["identical", "different", "error"] = "identical"
    chunks: int = 0
    chunks_differing: int = 0
    chunks_resumed: int = 0  # found identical by an earlier, interrupted run of the same plan
    rows_source: int = 0
    rows_target: int = 0
    differences: int = 0
    seconds: float = 0.0
    client_columns: list[str] = Field(default_factory=list)  # JSON compared in Python
    notes: list[str] = Field(default_factory=list)
    error: str | None = None


class VerifyReport(BaseModel):
    plan_fingerprint: str
    started_at: str
    finished_at: str = ""
    identical: bool = False
    tables: list[TableResult] = Field(default_factory=list)
    rows: list[RowDiff] = Field(default_factory=list)
    rows_truncated: int = 0  # differing rows not listed (over the per-table limit)
    fix_sql: str | None = None
    fix_statements: int = 0
    fixes_applied: bool = False
    errors: list[str] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> VerifyReport | None:
        """The last verify's report at `path`, None when verify never finished a run; a StateError
        naming the file when it cannot be read."""
        return read_model(path, cls, lambda why: StateError(
            f"verify report {str(path)!r} is not valid ({why}); move it aside or rerun `migrator verify PLAN`, "
            "which writes it again"))

    def differences(self) -> int:
        return sum(t.differences for t in self.tables)

    @property
    def exit_code(self) -> ExitCode:
        """OK identical, DIFFERENT differences remain, UNCHECKED errors."""
        if self.errors or any(t.status == "error" for t in self.tables):
            return ExitCode.UNCHECKED
        return ExitCode.OK if self.identical else ExitCode.DIFFERENT


def _float_close(a: str, b: str) -> bool:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return abs(x - y) <= 1e-6 * max(abs(x), abs(y), 1e-300)


def suspect_value(kind: str, source: str | None, target: str | None) -> str | None:
    """A representation cause for two differing canonical values, or None (a real value drift)."""
    if source is None or target is None:
        return None
    if kind in ("double", "float") and _float_close(source, target):
        return "float rounding (values agree to 6 significant digits)"
    if source.rstrip(" ") == target.rstrip(" "):
        return "trailing spaces (PAD SPACE collation or CHAR padding)"
    if source.casefold() == target.casefold():
        return "collation/case (values differ only in letter case)"
    return None


def suspect_key_pair(source_key: tuple, target_key: tuple) -> str | None:
    """A missing row and an extra row whose keys differ only in representation."""
    s = [str(v) for v in source_key]
    t = [str(v) for v in target_key]
    if [v.rstrip(" ") for v in s] == [v.rstrip(" ") for v in t]:
        return "trailing spaces in the key"
    if [v.casefold() for v in s] == [v.casefold() for v in t]:
        return "collation/case in the key"
    return None
