"""Progress display for `migrator copy`: rich bars per source and overall on a TTY; otherwise
only warnings and the final summary."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..plan.model import Plan, TablePlan
from .runner import CopyResult
from .state import CopyState


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total else ""
        speed = f"  {task.speed:,.0f} rows/s" if task.speed else ""
        return Text(f"{int(task.completed):,}{total} rows  {human_bytes(task.fields.get('bytes', 0))}{speed}")


class RichReporter:
    """Reporter for CopyRunner; thread-safe (rich Progress locks internally)."""

    def __init__(self, console: Console, err_console: Console, live: bool | None = None):
        self.console = console
        self.err = err_console
        self.live = console.is_terminal if live is None else live
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.t0 = time.monotonic()

    def start(self, plan: Plan, state: CopyState) -> None:
        if not self.live:
            return
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), _RowsColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=False)
        totals: dict[str, list[int]] = {}
        for t in plan.active_tables():
            p = state.table_progress(t.id)
            for name in (t.source, "\0all"):
                tot = totals.setdefault(name, [0, 0, 0])
                tot[0] += max(t.estimated_rows, p.rows)
                tot[1] += p.rows
                tot[2] += p.bytes
        for name, (total, done, nbytes) in totals.items():
            label = "[bold]all sources[/]" if name == "\0all" else name
            self.bytes[name] = nbytes
            self.tasks[name] = self.progress.add_task(label, total=total or None, completed=done, bytes=nbytes)
        self.progress.start()

    def advance(self, table: TablePlan, rows: int, nbytes: int) -> None:
        if not self.progress:
            return
        with self._lock:
            for name in (table.source, "\0all"):
                self.bytes[name] = self.bytes.get(name, 0) + nbytes
                self.progress.update(self.tasks[name], advance=rows, bytes=self.bytes[name])

    def throttled(self, reason: str | None) -> None:
        """Why copying is slowed down: beside the overall bar on a TTY, else one log line."""
        if self.progress and "\0all" in self.tasks:
            label = "[bold]all sources[/]" + (f" [yellow](throttled: {reason})[/]" if reason else "")
            self.progress.update(self.tasks["\0all"], description=label)
            return
        if reason:
            self.err.print(f"[yellow]throttling:[/] {reason}", highlight=False, soft_wrap=True)
        else:
            self.err.print("throttling ended", highlight=False)

    def warn(self, message: str) -> None:
        target = self.progress.console if self.progress else self.err
        target.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def finish(self, result: CopyResult) -> None:
        if self.progress:
            self.progress.stop()
        self.console.print(summary_table(result))
        rate = result.rows_this_run / result.seconds if result.seconds else 0
        earlier = result.rows - result.rows_this_run
        self.console.print(f"{result.rows_this_run:,} rows copied in {result.seconds:.1f}s ({rate:,.0f} rows/s)"
                           + (f"; {earlier:,} rows were copied by earlier runs" if earlier else ""), highlight=False)


def summary_table(result: CopyResult) -> Table:
    table = Table("source", "table", "target", "rows", "size", "status", title="copy summary")
    for r in result.tables:
        status = {"done": "[green]done[/]", "failed": "[red]failed[/]"}.get(r.status, r.status)
        table.add_row(r.table.source, r.table.source_name, r.table.target_name, f"{r.rows:,}",
                      human_bytes(r.bytes), status)
    return table
