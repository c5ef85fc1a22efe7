"""The work directory: the only state of a migration. Every path in it is defined here.

    WORKDIR/
      context.json              plan fingerprint + plan path; a changed plan is refused, not resumed
      copy/positions/SRC.json   binlog position/GTID per source recorded before its first chunk
                                (sync starts here), and the position when its copy finished
      copy/journal.jsonl        one line per chunk committed on the target (append-only, fsync)
      sync/SRC.json             binlog checkpoint per source (advanced after the target commits)
      verify/journal.jsonl      one line per verified chunk
      verify/report.json        last verify report
      cutover/report.json       cutover report
      lock                      held by the one process writing this directory

Default: `work/<plan file stem>` beside the current directory.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import StateError


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
    def copy_journal(self) -> Path:
        return self.root / "copy" / "journal.jsonl"

    def copy_position(self, source: str) -> Path:
        return self.root / "copy" / "positions" / f"{source}.json"

    def sync_checkpoint(self, source: str) -> Path:
        return self.root / "sync" / f"{source}.json"

    def sync_log(self, source: str) -> Path:
        """What one source's sync process logged (the cause when it dies without a word)."""
        return self.root / "sync" / f"{source}.log"

    @property
    def verify_journal(self) -> Path:
        return self.root / "verify" / "journal.jsonl"

    @property
    def verify_report(self) -> Path:
        return self.root / "verify" / "report.json"

    @property
    def cutover_report(self) -> Path:
        return self.root / "cutover" / "report.json"

    def lock(self, what: str) -> None:
        """Take the directory's writer lock (one writer per work directory), or refuse."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateError(
                f"work directory {str(self.root)!r} is in use by another migrator process; "
                f"wait for it or stop it before running {what}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
