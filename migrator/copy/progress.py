"""Progress display for `migrator copy`: rich bars per source and overall on a TTY (for a fleet:
overall plus the busiest sources); otherwise one line every few seconds (CopyTracker), warnings
and the final summary. CopyTracker also writes WORKDIR/live/copy.json and the copy metrics."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from ..formatting import human_bytes
from ..progress_lines import RateMeter, Ticker, fmt_eta
from ..progress import CopyFinished, CopyProgress, CopyStarted
from .contracts import CopyReporter, CopyResult


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        total = f"/{int(task.total):,}" if task.total else ""
        speed = f"  {task.speed:,.0f} rows/s" if task.speed else ""
        return Text(f"{int(task.completed):,}{total} rows  {human_bytes(task.fields.get('bytes', 0))}{speed}")


ALL = "\0all"
FLEET_BARS = 8  # more sources than this: the overall bar plus this many bars of the busiest sources
REPICK_SECONDS = 1.0


class _SourceCount:
    """One source's counters while its bar is not shown (a few ints, not a rich task)."""

    __slots__ = ("total", "done", "bytes", "recent")

    def __init__(self, total: int, done: int, nbytes: int):
        self.total, self.done, self.bytes, self.recent = total, done, nbytes, 0


class RichReporter(CopyReporter):
    """Copy's display on a terminal (a Progress sink, see CopyReporter); thread-safe. Up to FLEET_BARS sources: one bar each plus the
    overall bar. A fleet: the overall bar plus FLEET_BARS bars showing the sources that copied
    the most rows over the last second; a finished source's counters are dropped."""

    def __init__(self, console: Console, err_console: Console, live: bool | None = None):
        self.console = console
        self.err = err_console
        self.live = console.is_terminal if live is None else live
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.fleet = False
        self.sources: dict[str, _SourceCount] = {}  # fleet: per-source counters
        self.slots: list[tuple[int, str | None]] = []  # fleet: (bar, source shown in it)
        self._picked = 0.0
        self._all_label = "[bold]all sources[/]"
        self._lock = threading.Lock()
        self.t0 = time.monotonic()

    def start(self, started: CopyStarted) -> None:
        if not self.live:
            return
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), _RowsColumn(),
                                 TimeRemainingColumn(), console=self.console, transient=False)
        totals: dict[str, list[int]] = {}
        for source, c in started.sources.items():
            totals[source] = [c.total, c.done, c.bytes]
            if len(totals) == 1:
                totals[ALL] = [0, 0, 0]  # the overall bar right after the first source's
            for i, n in enumerate((c.total, c.done, c.bytes)):
                totals[ALL][i] += n
        self.fleet = len(totals) - 1 > FLEET_BARS
        for name, (total, done, nbytes) in totals.items():
            if self.fleet and name != ALL:
                if done < total or not total:
                    self.sources[name] = _SourceCount(total, done, nbytes)
                continue
            label = "[bold]all sources[/]" if name == ALL else name
            self.bytes[name] = nbytes
            self.tasks[name] = self.progress.add_task(label, total=total or None, completed=done, bytes=nbytes)
        if self.fleet:
            self._all_label = f"[bold]all {len(totals) - 1} sources[/]"
            self.progress.update(self.tasks[ALL], description=self._all_label)
            self.slots = [(self.progress.add_task("", total=None, visible=False), None) for _ in range(FLEET_BARS)]
        self.progress.start()

    def advance(self, event: CopyProgress) -> None:
        if not self.progress:
            return
        rows, nbytes = event.rows, event.bytes
        with self._lock:
            self.bytes[ALL] = self.bytes.get(ALL, 0) + nbytes
            self.progress.update(self.tasks[ALL], advance=rows, bytes=self.bytes[ALL])
            if not self.fleet:
                name = event.source
                self.bytes[name] = self.bytes.get(name, 0) + nbytes
                self.progress.update(self.tasks[name], advance=rows, bytes=self.bytes[name])
                return
            self._count(event.source, rows, nbytes)

    def _count(self, source: str, rows: int, nbytes: int) -> None:
        count = self.sources.get(source)
        if count is None:  # finished earlier (estimate too low) or resumed: show it again
            count = self.sources[source] = _SourceCount(0, 0, 0)
        count.done += rows
        count.bytes += nbytes
        count.recent += rows
        count.total = max(count.total, count.done)
        for task, shown in self.slots:
            if shown == source:
                assert self.progress is not None
                self.progress.update(task, completed=count.done, total=count.total or None, bytes=count.bytes)
        now = time.monotonic()
        if now - self._picked >= REPICK_SECONDS:
            self._picked = now
            self._repick()

    def _repick(self) -> None:
        """Show the sources that copied the most rows since the last pick; drop finished ones."""
        assert self.progress is not None
        busiest = sorted((n for n, c in self.sources.items() if c.recent), key=lambda n: -self.sources[n].recent)
        busiest = busiest[:len(self.slots)]
        keep = [shown for _, shown in self.slots if shown in busiest]
        new = iter(n for n in busiest if n not in keep)
        slots = []
        for task, shown in self.slots:
            if shown not in keep:
                shown = next(new, None)
                if shown is None:
                    self.progress.update(task, visible=False)
                else:
                    c = self.sources[shown]
                    self.progress.reset(task, total=c.total or None, completed=c.done, description=f"  {shown}",
                                        visible=True, bytes=c.bytes)
            slots.append((task, shown))
        self.slots = slots
        for name in [n for n, c in self.sources.items() if c.total and c.done >= c.total and n not in busiest]:
            del self.sources[name]  # finished: forget it (re-added if more rows arrive)
        for c in self.sources.values():
            c.recent = 0

    def throttled(self, reason: str | None) -> None:
        """Why copying is slowed down: beside the overall bar on a TTY, else one log line."""
        if self.progress and ALL in self.tasks:
            label = self._all_label + (f" [yellow](throttled: {reason})[/]" if reason else "")
            self.progress.update(self.tasks[ALL], description=label)
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


log = logging.getLogger("migrator.copy")


class CopyTracker(CopyReporter):
    """Counts rows per source; every `interval` seconds a progress line (when `echo`: the output
    is not a terminal) and WORKDIR/live/copy.json; warnings and throttling are logged when `echo`.
    `metrics`: a migrator.metrics.Metrics (or None)."""

    def __init__(self, interval: float, *, live_path: Path | None = None, echo: bool = True, metrics: Any = None):
        self.interval, self.live_path, self.echo, self.metrics = interval, live_path, echo, metrics
        self._lock = threading.Lock()
        self.total: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.bytes = 0
        self.rate = RateMeter()
        self.reason: str | None = None
        self.warnings: list[str] = []
        self.ticker: Ticker | None = None

    def start(self, started: CopyStarted) -> None:
        for source, c in started.sources.items():
            self.total[source] = self.total.get(source, 0) + c.total
            self.done[source] = self.done.get(source, 0) + c.done
            self.bytes += c.bytes
        self.rate.update(sum(self.done.values()))
        if self.metrics is not None:
            for source, total in self.total.items():
                self.metrics.copy_rows_estimated.labels(source).set(total)
                self.metrics.copy_rows.labels(source).inc(0)
        self.ticker = Ticker("copy", self.interval, self.snapshot, live_path=self.live_path, log_lines=self.echo)
        self.ticker.start()

    def advance(self, event: CopyProgress) -> None:
        source, rows, nbytes = event.source, event.rows, event.bytes
        with self._lock:
            self.done[source] = self.done.get(source, 0) + rows
            self.total[source] = max(self.total.get(source, 0), self.done[source])
            self.bytes += nbytes
        if self.metrics is not None:
            self.metrics.copy_rows.labels(source).inc(rows)
            self.metrics.copy_bytes.labels(source).inc(nbytes)

    def throttled(self, reason: str | None) -> None:
        self.reason = reason
        if self.metrics is not None:
            self.metrics.set_throttled("copy", reason)
        if self.echo:
            if reason:
                log.warning("throttling: %s", reason)
            else:
                log.warning("throttling ended")

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings = (self.warnings + [message])[-20:]
        if self.echo:
            log.warning("%s", message)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            done, total = sum(self.done.values()), sum(self.total.values())
            busy = sum(1 for s, d in self.done.items() if d < self.total.get(s, 0))
            sources = {s: {"rows": d, "rows_total": self.total.get(s, 0)} for s, d in self.done.items()}
            nbytes, warnings = self.bytes, list(self.warnings)
        rate = self.rate.update(done)
        eta = (total - done) / rate if rate > 0 and total >= done else None
        pct = 100.0 * done / total if total else 100.0
        line = (f"{done:,}/{total:,} rows ({pct:.1f}%), {human_bytes(nbytes)}, {rate:,.0f} rows/s, ETA {fmt_eta(eta)}, "
                f"{busy} of {len(sources)} source(s) copying")
        if self.reason:
            line += f"; throttled: {self.reason}"
        return {"line": line, "rows": done, "rows_total": total, "bytes": nbytes, "rows_per_second": round(rate, 1),
                "eta_seconds": None if eta is None else round(eta, 1), "sources_copying": busy,
                "throttled": self.reason, "sources": sources, "warnings": warnings}

    def finish(self, result: CopyResult) -> None:
        if self.ticker is not None:
            self.ticker.stop("finished" if result.ok else "failed")


class Reporters:
    """Several copy sinks as one (the display, and the tracker behind it)."""

    def __init__(self, *reporters: Any):
        self.reporters = [r for r in reporters if r is not None]

    def emit(self, event: Any) -> None:
        # at the end, the tracker's last line before the display's summary table
        for r in reversed(self.reporters) if isinstance(event, CopyFinished) else self.reporters:
            r.emit(event)


class SummaryReporter(CopyReporter):
    """No live display (not a terminal): the summary table and totals at the end only."""

    def __init__(self, console: Console):
        self.console = console
        self.progress = None

    def warn(self, message: str) -> None:
        pass

    def finish(self, result: CopyResult) -> None:
        RichReporter.finish(self, result)  # type: ignore[arg-type]
