"""What copy takes and gives: options, per-table results, the progress sink for copy's events, and
the exception that stops one table.

Options of every stage are pydantic models (CopyOptions here, sync.contracts.SyncOptions,
verify.contracts.VerifyOptions), like the plan, checkpoints and reports: a misspelt option is
refused where it is made, not ignored, and options cross to sync processes and Dask workers as
validated JSON or pickles without a second definition."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import MigratorError
from ..plan.model import Plan, TablePlan
from ..progress import CopyCounts, CopyFinished, CopyProgress, CopyStarted, StageWarning, Throttled
from .state import CopyState

log = logging.getLogger(__name__)


class CopyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parallel: int = 4
    per_source: int = 2
    restart: bool = False
    page_seconds: float = 1.0
    initial_page_rows: int = 0  # 0: from the plan's row size estimate (FIRST_PAGE_BYTES)
    min_page_rows: int = 100
    max_page_rows: int = 50_000
    retries: int = 5
    retry_delay: float = 0.5
    verb: str = "REPLACE"
    whole_chunks: bool = True  # small fresh chunks in one GROUP_CONCAT read (falls back to pages)
    aggregated_pages: bool = True  # pages as one GROUP_CONCAT each (falls back to rows when cut)
    target_connections: int = 0  # most target connections at once; 0: one per running chunk
    max_source_threads_running: int = 25  # reads wait while a source runs more; 0: never wait
    executor: str | None = None  # None/"local": threads here; "dask://host:port": Dask workers
    task_retries: int = 3  # a chunk whose Dask worker died is submitted again this often
    max_replica_lag: float = 0.0  # reads from a source wait while one of its replicas lags more; 0: off
    replicas: dict[str, Any] | None = None  # source name -> replica Endpoints (migrator.throttle)


@dataclass
class TableResult:
    table: TablePlan
    status: str = "pending"  # done | failed | skipped | pending
    rows: int = 0  # copied so far, earlier runs included
    bytes: int = 0
    earlier_rows: int = 0  # of which copied by earlier runs
    error: str | None = None
    error_kind: type[MigratorError] | None = None


@dataclass
class CopyResult:
    tables: list[TableResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(t.status == "done" for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def rows_this_run(self) -> int:
        return sum(t.rows - t.earlier_rows for t in self.tables)


class CopyReporter:
    """A Progress sink (migrator.progress) for copy's events: emit hands each to the method a
    display overrides. As it is: warnings (and throttling) logged, the rest dropped."""

    def emit(self, event: Any) -> None:
        if isinstance(event, CopyProgress):
            self.advance(event)
        elif isinstance(event, StageWarning):
            self.warn(event.message)
        elif isinstance(event, Throttled):
            self.throttled(event.reason)
        elif isinstance(event, CopyStarted):
            self.start(event)
        elif isinstance(event, CopyFinished):
            self.finish(event.result)

    def start(self, started: CopyStarted) -> None:
        pass

    def advance(self, event: CopyProgress) -> None:
        pass

    def throttled(self, reason: str | None) -> None:
        if reason:
            self.warn(f"throttling: {reason}")

    def warn(self, message: str) -> None:
        log.warning("%s", message)

    def finish(self, result: CopyResult) -> None:
        pass


NullReporter = CopyReporter


def copy_started(plan: Plan, state: CopyState) -> CopyStarted:
    """Per source: rows estimated (or copied, when more), rows and bytes copied by earlier runs."""
    sources: dict[str, CopyCounts] = {}
    for t in plan.active_tables():
        p = state.table_progress(t.id)
        c = sources.setdefault(t.source, CopyCounts())
        c.total += max(t.estimated_rows, p.rows)
        c.done += p.rows
        c.bytes += p.bytes
    return CopyStarted(sources=sources)


def copy_warning(message: str) -> StageWarning:
    return StageWarning(stage="copy", message=message)


class TableFailed(Exception):
    """Stops one table (carries the typed error the user sees)."""

    def __init__(self, error: MigratorError):
        super().__init__(str(error))
        self.error = error

