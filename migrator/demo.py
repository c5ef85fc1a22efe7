"""`migrator demo`: the e-wallet example fleet migrated end to end on the local sandbox.

Steps (each on the library functions the stage commands use): sandbox (4 MariaDB sources, one
seekdb target; reused when healthy, recreated otherwise), fleet generation (8 shards), plan
(findings shown), schema, copy, sync while a bounded transfer workload runs, verify during the
traffic, cutover, and a summary: write downtime, checksums, and the invariant that the sum of
balances on the target equals the sources'. A stage that is not built yet is said so, plainly,
and the demo goes on with the rest.

Every run starts fresh: shards regenerated, the target's `wallet` database dropped and the demo
work directory (DIR/demo) emptied. Works without a TTY (no live bars, wide tables).
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pymysql
from rich.console import Console
from rich.table import Table

from .copy.progress import RichReporter
from .formatting import human_bytes
from .copy.runner import CopyOptions, CopyResult, run_copy
from .db import connect, qualified, quote_ident, scalar, session
from .endpoint import Endpoint, parse_url
from .errors import MigratorError, SandboxError, StateError, TargetError
from .plan.build import build_plan
from .plan.model import Plan, save_plan
from .sandbox import Sandbox, SandboxInfo, port_is_free
from .verify.report import VerifyReport
from .workdir import WorkDir

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_SOURCES = 4
DEMO_ACCOUNTS = 40000  # accounts per shard: ~2.3M rows over 8 shards, a copy of about a minute here
DEMO_BASE_PORT = 33061  # the ports plans/ewallet.yaml was made with (target: +100)
TRAFFIC_SECONDS = 20.0
TRANSFERS_PER_SECOND = 25  # per source instance: a bounded workload, not a load test
TARGET_DB = "wallet"
PLAN_ARGS: dict[str, Any] = {  # also how plans/ewallet.yaml is made (see its README section)
    "includes": ["wallet_*.*"],
    "routes": ["wallet_*.*=wallet.*"],
    "source_column": "__source",
    "copy_only": ["wallet_*.audit_log"],
    "chunk_rows": 1000,
}
CAUGHT_UP_TIMEOUT = 180.0


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / name / "generate.py"
    spec = importlib.util.spec_from_file_location(f"migrator_example_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    not_built: list[str] = field(default_factory=list)

    @property
    def invariant_holds(self) -> bool:
        return self.balance_sources_before == self.balance_sources == self.balance_target


# ---------------------------------------------------------------- sandbox


def demo_ports_free(base: int = DEMO_BASE_PORT) -> bool:
    ports = [base + i for i in range(DEMO_SOURCES)] + [base + 100]
    return all(port_is_free(p) for p in ports)


def start_sandbox(sb: Sandbox, console: Console, base_port: int | None = DEMO_BASE_PORT) -> SandboxInfo:
    """A healthy 4-source sandbox: reused, restarted, or recreated; never left half-broken.
    A new one takes base_port.. when free (the committed plan's ports), else free ports."""
    try:
        info = sb.load()
    except SandboxError as exc:
        console.print(f"[yellow]{exc}[/]: recreating it", highlight=False)
        sb.down()
        info = None
    if info is not None and (len(info.sources) != DEMO_SOURCES or info.target is None):
        console.print(f"the sandbox in {sb.dir} has {len(info.sources)} source(s); the demo needs "
                      f"{DEMO_SOURCES} and a target: recreating it", highlight=False)
        sb.down()
        info = None
    t0 = time.monotonic()
    if info is not None:
        try:
            with console.status("checking the sandbox…"):
                info, started = sb.up(DEMO_SOURCES)
            console.print(f"sandbox {'restarted' if started else 'reused'} in {sb.dir}", highlight=False)
            return info
        except SandboxError as exc:
            console.print(f"[yellow]the sandbox in {sb.dir} could not be restarted ({exc})[/]: recreating it",
                          highlight=False)
            sb.down()
    base = base_port if base_port is not None and demo_ports_free(base_port) else None
    if base is None and base_port is not None:
        console.print(f"ports {base_port}-{base_port + DEMO_SOURCES - 1}/{base_port + 100} are taken: "
                      "using free ports (the demo writes its own plan; plans/ewallet.yaml names the fixed ports)",
                      highlight=False)
    with console.status(f"starting {DEMO_SOURCES} MariaDB sources and a seekdb target…"):
        info, _ = sb.up(DEMO_SOURCES, base_port=base)
    console.print(f"sandbox started in {time.monotonic() - t0:.1f}s in {sb.dir}", highlight=False)
    return info


def source_endpoints(info: SandboxInfo) -> list[Endpoint]:
    return [parse_url(f"{s.url}?name={s.name}", "source") for s in info.sources]


def target_endpoint(info: SandboxInfo) -> Endpoint:
    if info.target is None:
        raise SandboxError("the sandbox has no target: run `migrator sandbox down` and the demo again")
    return parse_url(info.target.url, "target")


# ---------------------------------------------------------------- fleet and balances


def shard_balances(placement: dict[str, Endpoint]) -> dict[str, tuple[int, Decimal]]:
    out = {}
    for db, ep in placement.items():
        with session(ep, "source", database=db) as conn:
            out[db] = (int(scalar(conn, "SELECT COUNT(*) FROM account")),
                       Decimal(scalar(conn, "SELECT COALESCE(SUM(balance), 0) FROM account")))
    return out


def target_balance(target: Endpoint) -> Decimal:
    with session(target, "target") as conn:
        return Decimal(scalar(conn, f"SELECT COALESCE(SUM(balance), 0) FROM {qualified(TARGET_DB, 'account')}"))


def reset_sources(sources: list[Endpoint], console: Console) -> None:
    """The last demo's cutover left the sources read-only: a fresh demo starts writable."""
    for ep in sources:
        with session(ep, "source") as conn, conn.cursor() as cur:
            if scalar(conn, "SELECT @@GLOBAL.read_only"):
                cur.execute("SET GLOBAL read_only = OFF")
                console.print(f"{ep.name}: writable again (read-only since the last demo's cutover)", highlight=False)


def reset_target(target: Endpoint) -> None:
    """A fresh demo: the merged database goes (and the recycle bin, so dropped data frees memory)."""
    with session(target, "target") as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(TARGET_DB)}")
        try:
            cur.execute("PURGE RECYCLEBIN")
        except pymysql.err.MySQLError:
            pass  # not OceanBase: nothing to purge


# ---------------------------------------------------------------- workload and sync threads


class Workload:
    """Bounded app traffic: transfers inside transactions, one thread per source instance,
    at most `rate` per second each, for `seconds`."""

    def __init__(self, ewallet: ModuleType, placement: dict[str, Endpoint], accounts: int, seconds: float,
                 rate: float):
        self.ewallet, self.accounts, self.seconds, self.rate = ewallet, accounts, seconds, rate
        by_instance: dict[str, list[str]] = {}
        for db, ep in placement.items():
            by_instance.setdefault(ep.label, []).append(db)
        self.placement = placement
        self.stop = threading.Event()
        self.done = 0
        self.declined = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(dbs, i), name=f"demo-workload-{i}", daemon=True)
                        for i, dbs in enumerate(by_instance.values())]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        for t in self.threads:
            t.join()
        if self.errors:
            raise StateError(f"the demo workload failed: {self.errors[0]}")

    def _run(self, dbs: list[str], seed: int) -> None:
        rnd = random.Random(1000 + seed)
        conns: dict[str, Any] = {}
        try:
            for db in dbs:
                conns[db] = connect(self.placement[db], "source", database=db, autocommit=False)
            deadline = time.monotonic() + self.seconds
            n = 0
            while not self.stop.is_set() and time.monotonic() < deadline:
                ok = self.ewallet.transfer(conns[dbs[n % len(dbs)]], rnd, self.accounts)
                n += 1
                with self._lock:
                    if ok:
                        self.done += 1
                    else:
                        self.declined += 1
                self.stop.wait(1.0 / self.rate)
        except (pymysql.err.MySQLError, MigratorError) as exc:
            self.errors.append(f"{', '.join(dbs)}: {exc}")
        finally:
            for c in conns.values():
                c.close()


class _StopSync(Exception):
    """Raised from run_sync's progress callback: run_sync then stops every source cleanly."""


class SyncThread(threading.Thread):
    """run_sync in the background, stoppable, tracking when each source was last caught up."""

    def __init__(self, plan: Plan, wd: WorkDir):
        super().__init__(name="demo-sync", daemon=True)
        self.plan, self.wd = plan, wd
        self.stop_requested = threading.Event()
        self.caught_up_at: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        from .sync.runner import run_sync
        from .sync.stream import SyncOptions

        try:
            run_sync(self.plan, self.wd, SyncOptions(workers=2), on_progress=self._progress)
        except _StopSync:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, raised there
            self.error = exc

    def _progress(self, msg: dict) -> None:
        src = msg["source"]
        if "checkpoint" in msg:
            self.rows[src] = sum((msg["checkpoint"] or {}).get("rows", {}).values())
        if msg.get("caught_up"):  # an idle source's poll says only this
            self.caught_up_at[src] = time.monotonic()
        if self.stop_requested.is_set():
            raise _StopSync

    def wait_caught_up(self, since: float, timeout: float = CAUGHT_UP_TIMEOUT) -> None:
        """Until every source reported being caught up at a moment after `since`."""
        names = [s.name for s in self.plan.sources]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.raise_error()
            if all(self.caught_up_at.get(n, 0) > since for n in names):
                return
            time.sleep(0.2)
        late = [n for n in names if self.caught_up_at.get(n, 0) <= since]
        raise StateError(f"sync did not catch up within {timeout:.0f}s on source(s) {', '.join(late)}; "
                         f"see `migrator sync` logs for the work directory {self.wd.root}")

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error
        if not self.is_alive() and not self.stop_requested.is_set():
            raise StateError("sync stopped unexpectedly")

    def stop(self) -> None:
        self.stop_requested.set()
        self.join(timeout=60)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def sync_available() -> bool:
    return importlib.util.find_spec("migrator.sync.runner") is not None


def cutover_function():
    """migrator.cutover.cutover when that stage is built, else None."""
    if importlib.util.find_spec("migrator.cutover") is None:
        return None
    from . import cutover as module

    return getattr(module, "cutover", None)


# ---------------------------------------------------------------- rendering


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
    verdict = "identical" if report.identical else ("errors" if report.exit_code == 2 else "DIFFERENT")
    return f"verify: {verdict}: {len(report.tables)} tables, {chunks} chunks, {rows:,} rows checksummed"


# ---------------------------------------------------------------- the demo


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
    sync = _start_sync(console, plan, wd, result)
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
        if sync is not None:
            sync.stop()
    if sync is not None:
        result.sync_rows = sync.total_rows
    result.verify_identical = report.identical
    result.verify_rows = sum(t.rows_source for t in report.tables)

    _step(console, 8, "summary")
    after = shard_balances(placement)
    result.balance_sources = sum((s for _, s in after.values()), Decimal(0))
    result.balance_target = target_balance(target)
    _summary(console, result, report)


def _plan(console: Console, sources: list[Endpoint], target: Endpoint, path: Path) -> Plan:
    from .commands.plan import print_plan_summary

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
    from .commands.plan import print_apply_report
    from .schema.apply import apply_schema

    report = apply_schema(plan, target)
    print_apply_report(console, report)
    if not report.ok:
        raise TargetError("schema apply did not create every table: see the table above")


def _start_sync(console: Console, plan: Plan, wd: WorkDir, result: DemoResult) -> SyncThread | None:
    if not sync_available():
        result.not_built.append("sync")
        console.print("[yellow]sync is not built yet:[/] the traffic below stays on the sources; "
                      "verify will report it as differences", highlight=False)
        return None
    sync = SyncThread(plan, wd)
    sync.start()
    console.print("sync started: one binlog reader per source, from the position copy recorded", highlight=False)
    return sync


def _verify_during_traffic(console: Console, plan: Plan, wd: WorkDir, workload: Workload,
                           sync: SyncThread | None) -> VerifyReport:
    from .verify.compare import verify_plan

    def settle() -> None:
        """Chunks that differed in flight are re-checked once the traffic is over and sync caught up."""
        console.print("some chunks differed while rows were in flight: re-checking them after the workload ends "
                      "and sync catches up", highlight=False)
        workload.join()
        if sync is not None:
            sync.wait_caught_up(time.monotonic())

    time.sleep(min(3.0, workload.seconds / 4))  # let some traffic flow first
    t0 = time.monotonic()
    with console.status("verifying (checksums inside each database)…"):
        report = verify_plan(plan, wd, recheck_after=settle)
    console.print(verify_table(report, f"verify during traffic ({time.monotonic() - t0:.1f}s)"))
    console.print(verify_summary(report), highlight=False)
    return report


def _cutover(console: Console, plan: Plan, wd: WorkDir, sync: SyncThread | None, report: VerifyReport,
             result: DemoResult) -> VerifyReport:
    cutover = cutover_function()
    if sync is not None:
        sync.wait_caught_up(time.monotonic())
    if cutover is None:
        if sync is not None:
            sync.stop()
        result.not_built.append("cutover")
        console.print("[yellow]cutover is not built yet:[/] no sources made read-only, no write downtime measured. "
                      "Instead: traffic stopped, sync caught up and stopped, final verify below.", highlight=False)
        return _final_verify(console, plan, wd)
    # sync keeps running through the cutover: the drain is then only its last batch
    try:
        rep = cutover(plan, wd, verify=True, say=lambda m: console.print(m, highlight=False))
    finally:
        if sync is not None:
            sync.stop()
    if sync is not None and sync.error is not None:
        raise sync.error
    result.downtime_seconds = _downtime(rep)
    if not rep.get("ok"):
        raise StateError(f"cutover did not complete: {rep.get('next_step') or wd.cutover_report}")
    parts = rep.get("downtime_parts") or {}
    v = rep.get("verify") or {}
    console.print(f"write downtime {rep['write_downtime_seconds']:.2f}s: read-only {parts.get('read_only_seconds', 0):.2f}s, "
                  f"drain {parts.get('drain_seconds', 0):.2f}s, verify {parts.get('verify_seconds', 0):.2f}s", highlight=False)
    console.print(f"cutover report: {wd.cutover_report}", highlight=False)
    if v.get("mode") == "dirty chunks":
        console.print(f"verify inside the window: {v['reverified']} of {v['chunks']} chunk(s) re-verified (changed "
                      f"since their last clean check, or copy-only), {v['kept_clean']} clean since their last check; "
                      "all identical", highlight=False)
        # the proof the summary shows is taken now (sources read-only, nothing in flight), not the
        # pass that ran during the traffic: that one may have seen rows in flight
        return _final_verify(console, plan, wd)
    final = _latest_verify(wd)
    if final is None:
        return _final_verify(console, plan, wd)
    console.print(verify_table(final, "final verify (inside the cutover, sources read-only)"))
    return final


def _downtime(rep: dict) -> float | None:
    for key in ("write_downtime_seconds", "downtime_seconds", "write_downtime", "downtime"):
        value = rep.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _latest_verify(wd: WorkDir) -> VerifyReport | None:
    from .state import read_json

    raw = read_json(wd.verify_report) if wd.verify_report.exists() else None
    return VerifyReport.model_validate(raw) if raw else None


def _final_verify(console: Console, plan: Plan, wd: WorkDir) -> VerifyReport:
    from .verify.compare import verify_plan

    with console.status("final verify…"):
        report = verify_plan(plan, wd, restart=True)
    console.print(verify_table(report, "final verify"))
    console.print(verify_summary(report), highlight=False)
    return report


def _summary(console: Console, result: DemoResult, report: VerifyReport) -> None:
    table = Table("", "", title="e-wallet migration", show_header=False)
    table.add_row("copied", f"{result.copied_rows:,} rows in {result.copy_seconds:.1f}s")
    table.add_row("traffic", f"{result.transfers:,} transfers during sync; {result.sync_rows:,} row changes replayed")
    table.add_row("write downtime", f"{result.downtime_seconds:.2f}s" if result.downtime_seconds is not None
                  else "not measured (cutover not built)" if "cutover" in result.not_built else "not reported")
    table.add_row("checksums", verify_summary(report))
    table.add_row("sum of balances", f"sources before {result.balance_sources_before:,}; sources after "
                                     f"{result.balance_sources:,}; target {result.balance_target:,}")
    if result.not_built:
        table.add_row("not built yet", ", ".join(result.not_built))
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


__all__ = ["DemoResult", "run_demo"]
