"""What the demo measured and how it is shown: the copy and verify tables (one row per target
table, not per shard) and the closing summary with the balance invariant."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ..copy.progress import RichReporter
from ..copy.runner import CopyResult
from ..errors import ExitCode, StateError
from ..formatting import human_bytes
from ..verify.report import VerifyReport
from ..workdir import WorkDir


@dataclass
class DemoResult:
    plan_path: Path
    workdir: Path
    copied_rows: int = 0
    copy_seconds: float = 0.0
    transfers: int = 0
    sync_rows: int = 0
    verify_identical: bool = False
    verify_rows: int = 0
    balance_sources_before: Decimal = Decimal(0)
    balance_sources: Decimal = Decimal(0)
    balance_target: Decimal = Decimal(0)
    downtime_seconds: float | None = None

    @property
    def invariant_holds(self) -> bool:
        return self.balance_sources_before == self.balance_sources == self.balance_target


class DemoCopyReporter(RichReporter):
    """Live bars on a terminal; at the end one row per target table instead of one per shard."""

    def finish(self, result: CopyResult) -> None:
        if self.progress:
            self.progress.stop()
        by_target: dict[str, list] = {}
        for r in result.tables:
            by_target.setdefault(r.table.target_name, []).append(r)
        table = Table("target table", "shards", "mode", "rows", "size", "status", title="copy")
        for name, rs in by_target.items():
            statuses = {r.status for r in rs}
            table.add_row(name, str(len(rs)), ", ".join(sorted({r.table.mode for r in rs})),
                          f"{sum(r.rows for r in rs):,}", human_bytes(sum(r.bytes for r in rs)),
                          "[green]done[/]" if statuses == {"done"} else ", ".join(sorted(statuses)))
        self.console.print(table)
        rate = result.rows_this_run / result.seconds if result.seconds else 0
        self.console.print(f"{result.rows_this_run:,} rows copied in {result.seconds:.1f}s ({rate:,.0f} rows/s)",
                           highlight=False)


def verify_table(report: VerifyReport, title: str) -> Table:
    by_target: dict[str, list] = {}
    for t in report.tables:
        by_target.setdefault(t.target_table, []).append(t)
    table = Table("target table", "rows (sources/target)", "chunks", "differed in flight", "status", title=title)
    for name, ts in by_target.items():
        status = ("[green]identical[/]" if all(t.status == "identical" for t in ts)
                  else "[red]" + ", ".join(sorted({t.status for t in ts if t.status != "identical"})) + "[/]")
        table.add_row(name, f"{sum(t.rows_source for t in ts):,} / {sum(t.rows_target for t in ts):,}",
                      str(sum(t.chunks for t in ts)), str(sum(t.chunks_differing for t in ts)), status)
    return table


def verify_summary(report: VerifyReport) -> str:
    rows = sum(t.rows_source for t in report.tables)
    chunks = sum(t.chunks for t in report.tables)
    verdict = "identical" if report.identical else ("errors" if report.exit_code == ExitCode.UNCHECKED else "DIFFERENT")
    return f"verify: {verdict}: {len(report.tables)} tables, {chunks} chunks, {rows:,} rows checksummed"


def print_summary(console: Console, result: DemoResult, report: VerifyReport) -> None:
    table = Table("", "", title="e-wallet migration", show_header=False)
    table.add_row("copied", f"{result.copied_rows:,} rows in {result.copy_seconds:.1f}s")
    table.add_row("traffic", f"{result.transfers:,} transfers during sync; {result.sync_rows:,} row changes replayed")
    table.add_row("write downtime", f"{result.downtime_seconds:.2f}s" if result.downtime_seconds is not None
                  else "not reported")
    table.add_row("checksums", verify_summary(report))
    table.add_row("sum of balances", f"sources before {result.balance_sources_before:,}; sources after "
                                     f"{result.balance_sources:,}; target {result.balance_target:,}")
    console.print(table)
    if result.invariant_holds:
        console.print(f"[bold green]balance invariant holds:[/] sum of balances on the target = sources = "
                      f"{result.balance_target:,}", highlight=False)
    else:
        console.print(f"[bold red]balance invariant BROKEN:[/] target {result.balance_target:,} vs sources "
                      f"{result.balance_sources:,} (before the traffic {result.balance_sources_before:,})",
                      highlight=False)
    if not report.identical or not result.invariant_holds:
        raise StateError("the demo's target differs from its sources: see the verify table and "
                         f"{WorkDir(result.workdir).verify_report}")
