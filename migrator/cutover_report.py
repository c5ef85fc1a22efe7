"""What cutover gives: its report (WORKDIR/cutover/report.json) and what `--dry-run` says it would do.

The report is written step by step while cutover runs (before the sources are made read-only,
once they are, and at the end), so a cutover killed at any instant leaves what a rerun and
`--rollback` need: the read_only values from before the first cutover. Only the fields a run has
reached are written (`exclude_unset`): a field missing from the file means that step was not
reached, and every field is optional so such a file, or one written by an older version, loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .errors import StateError
from .positions import BinlogPosition
from .state import atomic_write_json, read_model


class ReadOnlyValues(BaseModel):
    """One source's read_only (and on MySQL super_read_only), as cutover found it: what rollback restores."""

    read_only: int = 0
    super_read_only: int | None = None  # MySQL only


class SourcePositions(BaseModel):
    """One source inside the window: its binlog position once read-only, and sync's checkpoint after the drain."""

    final_position: BinlogPosition | None = None
    applied_position: BinlogPosition | None = None

    @field_serializer("final_position", "applied_position")
    def _whole(self, p: BinlogPosition | None) -> dict[str, Any] | None:
        """Every field of a position (gtid, flavor, at), not only those set where it was made."""
        return None if p is None else p.model_dump(mode="json")


class DowntimeParts(BaseModel):
    """Where the write downtime went (their sum is write_downtime_seconds)."""

    read_only_seconds: float = 0.0  # asking every source for read_only (waits for running writes)
    drain_seconds: float = 0.0  # sync applying the last changes
    verify_seconds: float = 0.0  # the re-verify inside the window


class VerifySeconds(BaseModel):
    """Where the window's re-verify time went."""

    prepare: float = 0.0  # chunk states and dirty keys read
    whole: float = 0.0  # whole checks (the key lookups run beside them)
    keys_after_whole: float = 0.0  # key lookups still running after the whole checks


class ChunkDetail(BaseModel):
    """One chunk in a dirty-chunk cutover: when it was last clean and whether the window re-verified it."""

    chunk: str  # "instance/db.table chunk N"
    state_before: str  # clean, dirty, differs, never, not synced
    reverified_in_window: Literal["by key", "whole", False] = False
    identical: bool | None = None
    last_clean_at: str | None = None  # ISO time of its last clean check
    clean_valid_at: dict[str, list[int] | None] | None = None  # per source: the position that check holds for


class CutoverVerify(BaseModel):
    """The verify inside the window: dirty chunks (the default), every chunk (`--full-verify`), or skipped."""

    ran: bool = False
    identical: bool | None = None  # None: not known (skipped, or cutover failed before it)
    mode: Literal["dirty chunks", "full"] | None = None
    note: str | None = None
    errors: list[str] = Field(default_factory=list)
    # full
    tables: int | None = None
    differing_rows: int | None = None
    # dirty chunks
    chunks: int | None = None
    reverified: int | None = None
    reverified_by_key: int | None = None
    reverified_whole: int | None = None
    rows_compared_by_key: int | None = None
    kept_clean: int | None = None
    seconds: VerifySeconds | None = None
    reasons: dict[str, int] = Field(default_factory=dict)  # why each chunk was re-verified or kept -> count
    differing_chunks: list[str] = Field(default_factory=list)
    recorded: bool | None = None  # results written to the chunk states (not while a `verify --follow` runs)
    chunk_detail: list[ChunkDetail] = Field(default_factory=list)


class CutoverReport(BaseModel):
    """WORKDIR/cutover/report.json. Times are ISO strings (utc_now), durations seconds."""

    model_config = ConfigDict(extra="ignore")  # a report of a newer version still loads

    started_at: str | None = None
    ok: bool = False
    lag_before: dict[str, float] = Field(default_factory=dict)  # per source, seconds
    checked_before_read_only: list[int] | None = None  # chunks checked whole in each pass before read-only
    keys_compared_before_read_only: list[int] | None = None  # keys compared in each converge pass
    sync_catch_up_seconds: float | None = None  # waited for a running sync before read-only
    read_only_at: str | None = None
    # per source, before the first cutover not rolled back since: what --rollback restores
    read_only_before: dict[str, ReadOnlyValues] = Field(default_factory=dict)
    drained_at: str | None = None
    sources: dict[str, SourcePositions] = Field(default_factory=dict)
    verify: CutoverVerify | None = None
    error: str | None = None
    finished_at: str | None = None
    write_downtime_seconds: float | None = None
    downtime_parts: DowntimeParts | None = None
    total_seconds: float | None = None
    notes: list[str] = Field(default_factory=list)
    next_step: str | None = None
    rolled_back_at: str | None = None

    def save(self, path: Path) -> None:
        """Atomically, the fields set so far (a kill leaves this or the previous step's file)."""
        atomic_write_json(path, self.model_dump(mode="json", exclude_unset=True))

    @classmethod
    def load(cls, path: Path) -> CutoverReport | None:
        """The report at `path`, None when there is none; a StateError naming the file when it
        cannot be read (it holds the read_only values rollback restores: never guessed)."""
        return read_model(path, cls, lambda why: cls._corrupt(path, why))

    @staticmethod
    def _corrupt(path: Path, why: str) -> StateError:
        return StateError(f"cutover report {str(path)!r} is corrupt ({why}); it records each source's read_only "
                          "value from before cutover, which --rollback restores. Check `SELECT @@global.read_only` "
                          "on each source, move the file aside, then rerun `migrator cutover PLAN` (or --rollback, "
                          "which then makes every source writable)")

    def downtime_line(self) -> str | None:
        """"write downtime Xs: read-only Xs, drain Xs, verify Xs" (None: the sources were not made read-only)."""
        if self.write_downtime_seconds is None:
            return None
        parts = self.downtime_parts or DowntimeParts()
        return (f"write downtime {self.write_downtime_seconds:.2f}s: read-only {parts.read_only_seconds:.2f}s, "
                f"drain {parts.drain_seconds:.2f}s, verify {parts.verify_seconds:.2f}s")

    def read_only_kept(self) -> dict[str, ReadOnlyValues]:
        """The read_only values from before a cutover that was not rolled back ({} if rolled back
        or the sources were never made read-only): what a rerun keeps and rollback restores."""
        if self.rolled_back_at or not self.read_only_at:
            return {}
        return dict(self.read_only_before)


class ExpectedDowntime(DowntimeParts):
    total_seconds: float = 0.0


class CutoverDryRun(BaseModel):
    """`cutover --dry-run`: what cutover would check and do now (nothing written)."""

    lag_seconds: dict[str, float | None]  # None: sync never ran for that source
    would_refuse: list[str]  # why cutover would refuse now, one line per source
    chunks: int
    chunk_states: dict[str, int]  # state -> chunks
    reverify: list[str]  # chunks that are not clean now
    steps: list[str]
    expected_downtime: ExpectedDowntime
