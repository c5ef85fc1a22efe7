"""The verify journal: chunks found identical by the current run of a plan (resume), closed by a
"done" record when the run completes (the next run starts over)."""

from __future__ import annotations

from typing import Any

from ..formatting import utc_now
from ..state import Journal
from ..workdir import WorkDir

JOURNAL_BATCH = 64


class VerifyJournal:
    """Chunks found identical by the current run of this plan; a finished run starts afresh."""

    def __init__(self, workdir: WorkDir, fingerprint: str, restart: bool):
        self.journal = Journal(workdir.verify_journal)
        self.fingerprint = fingerprint
        self.done: dict[tuple[str, int], tuple[int, int]] = {}
        self.resumed = False
        self._pending: list[dict[str, Any]] = []
        records = [] if restart else list(self.journal.replay())
        runs = [i for i, r in enumerate(records) if r.get("type") == "run"]
        last = runs[-1] if runs else None
        if (last is not None and records[last].get("fingerprint") == fingerprint
                and not any(r.get("type") == "done" for r in records[last:])):
            self.resumed = True
            for r in records[last:]:
                if r.get("type") == "chunk" and r.get("same"):
                    self.done[(r["table"], r["chunk"])] = (r["rows_source"], r["rows_target"])
        else:
            self.journal.rewrite([{"type": "run", "fingerprint": fingerprint, "started_at": utc_now()}])

    def record(self, table: str, chunk: int, same: bool, rows: tuple[int, int]) -> None:
        self._pending.append({"type": "chunk", "table": table, "chunk": chunk, "same": same,
                              "rows_source": rows[0], "rows_target": rows[1]})
        if len(self._pending) >= JOURNAL_BATCH:
            self.flush()

    def flush(self) -> None:
        self.journal.append_many(self._pending)
        self._pending = []

    def finish(self) -> None:
        self.flush()
        self.journal.append({"type": "done", "finished_at": utc_now()})

    def close(self) -> None:
        self.flush()
        self.journal.close()
