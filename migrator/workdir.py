"""The work directory: the only state of a migration. Every path in it is defined here.

    WORKDIR/
      context.json              plan fingerprint + plan path; a changed plan is refused, not resumed
      copy/positions/SRC.json   binlog position/GTID per source recorded before its first chunk
                                (sync starts here), and the position when its copy finished
      copy/journal.jsonl        one line per chunk committed on the target (append-only, fsync)
      sync/SRC.json             binlog checkpoint per source (advanced after the target commits)
      sync/SRC.log              what one source's sync process logged
      sync/SRC.lock             held by the one process syncing that source
      sync/ddl.jsonl            DDL applied to the target once per merge (shared by every source)
      sync/ddl.lock             held while a source reads or appends sync/ddl.jsonl
      sync/SRC.ddl.jsonl        every DDL occurrence that source met, applied or skipped
      sync/wake                 touched by cutover after read-only: sync polls at once
      sync/SRC.dirty.jsonl      chunks and keys sync changed, with the position (appended before each batch applies)
      verify/journal.jsonl      one line per verified chunk
      verify/report.json        last verify report
      verify/lock               held by the one verify of this directory (it runs beside sync)
      verify/chunks.jsonl       each chunk's last check (continuous verify): clean or not, valid at which positions
      cutover/report.json       cutover report
      live/STAGE.json           what a running copy/sync/verify/cutover reports every few seconds
                                (rows, rows/s, ETA, lag, throttling): `migrator status --watch`
      pause                     while this file exists, copy and sync pause (touch / rm it)
      limits.yaml               throttling limits read while running (see migrator.throttle)
      lock                      held by the one process writing this directory

Default: `work/<plan file stem>` beside the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from .engine.locks import hold
from .errors import WorkdirBusy


def default_workdir(plan_path: str | Path) -> Path:
    return Path("work") / Path(plan_path).stem


class WorkDir:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock_fd: int | None = None

    @property
    def context(self) -> Path:
        return self.root / "context.json"

    @property
    def copy_dir(self) -> Path:
        """Everything copy recorded (removed by copy --restart)."""
        return self.root / "copy"

    @property
    def copy_journal(self) -> Path:
        return self.root / "copy" / "journal.jsonl"

    def copy_position(self, source: str) -> Path:
        return self.root / "copy" / "positions" / f"{source}.json"

    def sync_checkpoint(self, source: str) -> Path:
        return self.root / "sync" / f"{source}.json"

    def sync_log(self, source: str) -> Path:
        """What one source's sync process logged (the cause when it dies without a word)."""
        return self.root / "sync" / f"{source}.log"

    def sync_faults(self, process: int) -> Path:
        """Python tracebacks (every thread) of sync process K's fatal signal, if it had one."""
        return self.root / "sync" / f"process-{process}.faults"

    def sync_lock(self, source: str) -> Path:
        return self.root / "sync" / f"{source}.lock"

    @property
    def sync_ddl_journal(self) -> Path:
        """DDL applied to the target."""
        return self.root / "sync" / "ddl.jsonl"

    @property
    def sync_ddl_lock(self) -> Path:
        """Held while a source reads or appends the DDL journals."""
        return self.root / "sync" / "ddl.lock"

    def sync_ddl_seen(self, source: str) -> Path:
        return self.root / "sync" / f"{source}.ddl.jsonl"

    def sync_dirty(self, source: str) -> Path:
        """The chunks and keys sync changed (sync/dirty.py)."""
        return self.root / "sync" / f"{source}.dirty.jsonl"

    @property
    def verify_chunks(self) -> Path:
        """Each chunk's last check with the positions it is valid for (verify/follow.py)."""
        return self.root / "verify" / "chunks.jsonl"

    @property
    def verify_journal(self) -> Path:
        return self.root / "verify" / "journal.jsonl"

    @property
    def verify_report(self) -> Path:
        return self.root / "verify" / "report.json"

    @property
    def verify_lock(self) -> Path:
        return self.root / "verify" / "lock"

    @property
    def cutover_report(self) -> Path:
        return self.root / "cutover" / "report.json"

    def live(self, stage: str) -> Path:
        """The live progress of a running stage (rewritten every few seconds)."""
        return self.root / "live" / f"{stage}.json"

    @property
    def sync_wake(self) -> Path:
        """Touched by cutover: a sync napping between polls looks at the binlog at once (sync/wake.py)."""
        return self.root / "sync" / "wake"

    @property
    def pause_file(self) -> Path:
        return self.root / "pause"

    @property
    def limits_file(self) -> Path:
        return self.root / "limits.yaml"

    @property
    def writer_lock(self) -> Path:
        return self.root / "lock"

    def lock(self, what: str) -> None:
        """Take the directory's writer lock (one writer per work directory), or refuse."""
        self._lock_fd = hold(self.writer_lock, note=f"{os.getpid()} {what}\n", busy=lambda _holder: WorkdirBusy(
            f"work directory {str(self.root)!r} is in use by another migrator process; "
            f"wait for it or stop it before running {what}"))

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
