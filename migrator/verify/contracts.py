"""What verify takes: its options, one pydantic model like copy's and sync's (the report it gives
is report.VerifyReport)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class VerifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: str | None = None  # comma-separated shell patterns over instance/db.table, db.table, target db.table
    parallel: int = 4  # chunks checksummed at once over all instances
    per_source: int = 2  # chunks checksummed at once on one source
    fix_sql: Path | None = None  # write the statements that make the target equal here
    apply_fix: bool = False  # and run them (needs fix_sql)
    report_path: Path | None = None  # a copy of the JSON report (WorkDir.verify_report is always written)
    restart: bool = False  # start over instead of resuming an interrupted run
    max_rows: int = 1000  # differing rows listed per table
    target_connections: int = 0  # most checksum queries on the target at once; 0: parallel
    max_source_threads_running: int = 25  # checksums wait while a source runs more; 0: never wait
    executor: str | None = None  # None/"local": threads here; "dask://host:port": Dask workers
    max_replica_lag: float = 0.0  # a source's checksums wait while its replica lags more (seconds; 0: off)
