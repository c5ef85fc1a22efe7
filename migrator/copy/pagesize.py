"""Page size per table, adapted so a page takes about `page_seconds`: shared by the runner and
remote tasks (each keeps its own sizes)."""

from __future__ import annotations

import threading

from ..plan.model import TablePlan
from .contracts import CopyOptions

MAX_PAGE_BYTES = 16 * 1024 * 1024
FIRST_PAGE_BYTES = 4 * 1024 * 1024


class PageSizing:
    """Page size per table, adapted to page_seconds; shared by the runner and remote tasks."""

    opts: CopyOptions
    _lock: threading.Lock
    _page_rows: dict[str, int]

    def page_rows(self, table: TablePlan) -> int:
        with self._lock:
            return self._page_rows.get(table.id) or self.first_page_rows(table)

    def first_page_rows(self, table: TablePlan) -> int:
        if self.opts.initial_page_rows:
            return self.opts.initial_page_rows
        row_bytes = table.estimated_bytes / table.estimated_rows if table.estimated_rows and table.estimated_bytes else 200
        rows = int(FIRST_PAGE_BYTES / max(row_bytes, 20))
        return max(self.opts.min_page_rows, min(self.opts.max_page_rows, rows))

    def shrink(self, table: TablePlan, limit: int) -> None:
        """A page too long for one aggregated value: halve the table's pages."""
        with self._lock:
            self._page_rows[table.id] = max(self.opts.min_page_rows, limit // 2)

    def adapt(self, table: TablePlan, limit: int, rows: int, nbytes: int, seconds: float) -> None:
        """Aim the next page at page_seconds (within 0.5x..2x of this one) and MAX_PAGE_BYTES."""
        if rows < limit:
            return
        factor = max(0.5, min(2.0, self.opts.page_seconds / max(seconds, 1e-3)))
        new = int(limit * factor)
        if nbytes:
            new = min(new, int(limit * MAX_PAGE_BYTES / nbytes))
        with self._lock:
            self._page_rows[table.id] = max(self.opts.min_page_rows, min(self.opts.max_page_rows, new))


