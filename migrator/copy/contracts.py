"""What copy takes and gives: options, per-table results, the progress reporter's protocol, and
the exception that stops one table.

Options of every stage are pydantic models (CopyOptions here, sync.contracts.SyncOptions,
verify.contracts.VerifyOptions), like the plan, checkpoints and reports: a misspelt option is
refused where it is made, not ignored, and options cross to sync processes and Dask workers as
validated JSON or pickles without a second definition."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from ..errors import MigratorError
from ..plan.model import Plan, TablePlan
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


class Reporter(Protocol):
    def start(self, plan: Plan, state: CopyState) -> None: ...
    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None: ...
    def warn(self, message: str) -> None: ...
    def finish(self, result: CopyResult) -> None: ...


class NullReporter:
    def start(self, plan: Plan, state: CopyState) -> None:
        pass

    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None:
        pass

    def warn(self, message: str) -> None:
        log.warning("%s", message)

    def finish(self, result: CopyResult) -> None:
        pass


class TableFailed(Exception):
    """Stops one table (carries the typed error the user sees)."""

    def __init__(self, error: MigratorError):
        super().__init__(str(error))
        self.error = error

