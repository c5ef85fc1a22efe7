"""The demo's steps in order: sandbox, fleet, plan, schema, copy, sync under traffic with a
verify during it, cutover, summary; each on the library functions the stage commands use."""

from __future__ import annotations

import shutil
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..copy.runner import CopyOptions, run_copy
from ..endpoint import Endpoint
from ..errors import StateError, TargetError
from ..plan.build import build_plan
from ..plan.model import Plan, save_plan
from ..progress import CallbackSink
from ..sandbox import Sandbox
from ..verify.report import VerifyReport
from ..workdir import WorkDir
from .sandbox import DEMO_BASE_PORT, reset_sources, reset_target, source_endpoints, start_sandbox, target_endpoint
from .summary import DemoCopyReporter, DemoResult, print_summary, verify_summary, verify_table
from .syncthread import SyncThread
from .workload import DEMO_ACCOUNTS, TRAFFIC_SECONDS, TRANSFERS_PER_SECOND, Workload, load_example, shard_balances, target_balance

PLAN_ARGS: dict[str, Any] = {  # also how plans/ewallet.yaml is made (see its README section)
    "includes": ["wallet_*.*"],
    "routes": ["wallet_*.*=wallet.*"],
    "source_column": "__source",
    "copy_only": ["wallet_*.audit_log"],
    "chunk_rows": 1000,
}


def run_demo(directory: Path, *, console: Console, keep: bool = True, accounts: int = DEMO_ACCOUNTS,
             traffic_seconds: float = TRAFFIC_SECONDS, rate: float = TRANSFERS_PER_SECOND,
             base_port: int | None = DEMO_BASE_PORT) -> DemoResult:
    """Run the whole demo; returns its figures. Raises MigratorError when a step fails.
    base_port None: a new sandbox on free ports (tests)."""
    if not console.is_terminal and console.width < 160:
        console = Console(file=console.file, width=160)  # logs and pipes: do not cut table cells
    sb = Sandbox(directory)
    demo_dir = sb.dir / "demo"
    result = DemoResult(plan_path=demo_dir / "ewallet.yaml", workdir=demo_dir / "work")
    started = time.monotonic()
    try:
        _run(sb, console, result, accounts, traffic_seconds, rate, base_port)
    finally:
        if not keep:
            sb.down()
    console.print(f"demo finished in {time.monotonic() - started:.0f}s; "
                  + (f"sandbox left running: `migrator sandbox down --dir {directory}` stops it" if keep
                     else "sandbox stopped"), highlight=False)
    return result


def _step(console: Console, n: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{n}. {title}", align="left")


def _run(sb: Sandbox, console: Console, result: DemoResult, accounts: int, traffic_seconds: float,
         rate: float, base_port: int | None) -> None:
    ewallet = load_example("ewallet")

    _step(console, 1, "sandbox: 4 MariaDB sources (binlog ROW, GTID), 1 OceanBase seekdb target")
    info = start_sandbox(sb, console, base_port)
    sources, target = source_endpoints(info), target_endpoint(info)
    console.print(f"sources: {', '.join(f'{e.name} {e.host}:{e.port}' for e in sources)}; "
                  f"target: seekdb {target.host}:{target.port}", highlight=False)

    _step(console, 2, f"e-wallet fleet: 8 shards, {accounts:,} accounts each")
    shutil.rmtree(result.plan_path.parent, ignore_errors=True)  # fresh demo state
    reset_sources(sources, console)
    reset_target(target)
    t0 = time.monotonic()
    with console.status("generating shards…"):
        where = ewallet.generate([(e.host, e.port) for e in sources], accounts)
    by_addr = {f"{e.host}:{e.port}": e for e in sources}
    placement = {db: by_addr[addr] for db, addr in where.items()}
    balances = shard_balances(placement)
    fleet = Table("shard", "instance", "accounts", "sum(balance)", title="sources")
    for db, (n, s) in balances.items():
        fleet.add_row(db, placement[db].name, f"{n:,}", f"{s:,}")
    console.print(fleet)
    result.balance_sources_before = sum((s for _, s in balances.values()), Decimal(0))
    console.print(f"generated in {time.monotonic() - t0:.1f}s; sum of balances over all shards: "
                  f"[bold]{result.balance_sources_before:,}[/]", highlight=False)

    _step(console, 3, "plan: merge wallet_* into one `wallet` database, shard identity in __source")
    plan = _plan(console, sources, target, result.plan_path)

    _step(console, 4, "schema: create the target tables")
    _schema(console, plan, target)

    _step(console, 5, "copy: chunks in parallel, binlog position recorded first")
    wd = WorkDir(result.workdir)
    copy = run_copy(plan, wd, CopyOptions(), DemoCopyReporter(console, console), plan_path=result.plan_path)
    result.copied_rows, result.copy_seconds = copy.rows, copy.seconds

    _step(console, 6, f"sync while the app writes: transfers for {traffic_seconds:.0f}s, verify during the traffic")
    workload = Workload(ewallet, placement, accounts, traffic_seconds, rate)
    sync = _start_sync(console, plan, wd)
    try:
        workload.start()
        console.print(f"workload: transfers between accounts of each shard, one transaction each (debit, credit, "
                      f"transfer row, 2 ledger entries), up to {rate:.0f}/s per instance", highlight=False)
        report = _verify_during_traffic(console, plan, wd, workload, sync)
        workload.join()
        result.transfers = workload.done
        console.print(f"workload done: {workload.done:,} transfers committed ({workload.declined:,} declined for "
                      f"lack of funds)", highlight=False)

        _step(console, 7, "cutover")
        report = _cutover(console, plan, wd, sync, report, result)
    finally:
        workload.stop.set()
        sync.stop()
    result.sync_rows = sync.total_rows
    result.verify_identical = report.identical
    result.verify_rows = sum(t.rows_source for t in report.tables)

    _step(console, 8, "summary")
    after = shard_balances(placement)
    result.balance_sources = sum((s for _, s in after.values()), Decimal(0))
    result.balance_target = target_balance(target)
    print_summary(console, result, report)


def _plan(console: Console, sources: list[Endpoint], target: Endpoint, path: Path) -> Plan:
    from ..plan.show import print_plan_summary

    with console.status("reading source catalogs…"):
        plan = build_plan(sources, target, name="ewallet", **PLAN_ARGS)
    save_plan(plan, path)
    print_plan_summary(console, plan)
    if plan.blocking():
        raise StateError(f"the demo plan has {len(plan.blocking())} blocking finding(s): see {path}")
    console.print(f"plan written to {path}: {len(plan.active_tables())} source tables into "
                  f"{len({t.target_name for t in plan.active_tables()})} target tables. The findings above are "
                  "what a DBA reviews: audit_log has no key (copy-only; nothing writes it during the demo), "
                  "the latin1 table is converted, the trigger is not migrated.", highlight=False)
    return plan


def _schema(console: Console, plan: Plan, target: Endpoint) -> None:
    from ..schema.show import print_apply_report
    from ..schema.apply import apply_schema

    report = apply_schema(plan, target)
    print_apply_report(console, report)
    if not report.ok:
        raise TargetError("schema apply did not create every table: see the table above")


def _start_sync(console: Console, plan: Plan, wd: WorkDir) -> SyncThread:
    sync = SyncThread(plan, wd)
    sync.start()
    console.print("sync started: one binlog reader per source, from the position copy recorded", highlight=False)
    return sync


def _verify_during_traffic(console: Console, plan: Plan, wd: WorkDir, workload: Workload,
                           sync: SyncThread) -> VerifyReport:
    from ..verify.compare import verify_plan

    def settle() -> None:
        """Chunks that differed in flight are re-checked once the traffic is over and sync caught up."""
        console.print("some chunks differed while rows were in flight: re-checking them after the workload ends "
                      "and sync catches up", highlight=False)
        workload.join()
        sync.wait_caught_up(time.monotonic())

    time.sleep(min(3.0, workload.seconds / 4))  # let some traffic flow first
    t0 = time.monotonic()
    with console.status("verifying (checksums inside each database)…"):
        report = verify_plan(plan, wd, recheck_after=settle)
    console.print(verify_table(report, f"verify during traffic ({time.monotonic() - t0:.1f}s)"))
    console.print(verify_summary(report), highlight=False)
    return report


def _cutover(console: Console, plan: Plan, wd: WorkDir, sync: SyncThread, report: VerifyReport,
             result: DemoResult) -> VerifyReport:
    from ..cutover import cutover

    sync.wait_caught_up(time.monotonic())
    # sync keeps running through the cutover: the drain is then only its last batch
    try:
        rep = cutover(plan, wd, verify=True,
                      progress=CallbackSink(lambda step: console.print(step.message, highlight=False)))
    finally:
        sync.stop()
    if sync.error is not None:
        raise sync.error
    result.downtime_seconds = rep.write_downtime_seconds
    if not rep.ok:
        raise StateError(f"cutover did not complete: {rep.next_step or wd.cutover_report}")
    console.print(rep.downtime_line(), highlight=False)
    console.print(f"cutover report: {wd.cutover_report}", highlight=False)
    v = rep.verify
    if v is not None and v.mode == "dirty chunks":
        console.print(f"verify inside the window: {v.reverified} of {v.chunks} chunk(s) re-verified (changed "
                      f"since their last clean check, or copy-only), {v.kept_clean} clean since their last check; "
                      "all identical", highlight=False)
        # the proof the summary shows is taken now (sources read-only, nothing in flight), not the
        # pass that ran during the traffic: that one may have seen rows in flight
        return _final_verify(console, plan, wd)
    final = _latest_verify(wd)
    if final is None:
        return _final_verify(console, plan, wd)
    console.print(verify_table(final, "final verify (inside the cutover, sources read-only)"))
    return final


def _latest_verify(wd: WorkDir) -> VerifyReport | None:
    return VerifyReport.load(wd.verify_report)


def _final_verify(console: Console, plan: Plan, wd: WorkDir) -> VerifyReport:
    from ..verify.compare import VerifyOptions, verify_plan

    with console.status("final verify…"):
        report = verify_plan(plan, wd, VerifyOptions(restart=True))
    console.print(verify_table(report, "final verify"))
    console.print(verify_summary(report), highlight=False)
    return report
