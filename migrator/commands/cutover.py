"""CLI command of the cutover stage: `migrator cutover PLAN [--dry-run | --rollback]`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..cutover_report import CutoverDryRun, CutoverReport
from ..errors import ExitCode
from ..logsetup import progress_log
from ..plan.model import load_plan
from ..progress import CallbackSink, CutoverStep
from ..progress_lines import Ticker
from .common import exit_with, metrics_options, resolve_workdir, run_options, stage_metrics

console = Console()
err_console = Console(stderr=True)


@click.command("cutover")
@click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work directory (default: work/<plan name>).")
@click.option("--yes", is_flag=True, help="Do not ask before making the sources read-only.")
@click.option("--rollback", is_flag=True, help="Make the sources writable again.")
@click.option("--max-lag", type=click.FloatRange(0, None), default=30.0, show_default=True,
              help="Refuse when a source is more than this many seconds behind.")
@click.option("--no-verify", is_flag=True, help="Skip the final verify (not recommended).")
@click.option("--full-verify", is_flag=True,
              help="Checksum every chunk inside the read-only window, not only those changed since their last "
                   "clean check (`migrator verify PLAN --follow`).")
@click.option("--dry-run", is_flag=True,
              help="Print the checks and steps cutover would take now (lag, chunks to re-verify, expected "
                   "downtime) and change nothing.")
@click.option("--parallel", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Chunks re-verified at once inside the window.")
@metrics_options
def cutover_cmd(plan_path: Path, workdir: Path | None, yes: bool, rollback: bool, max_lag: float,
                no_verify: bool, full_verify: bool, dry_run: bool, parallel: int, metrics_port: int | None,
                metrics_addr: str) -> None:
    """Switch writes to the target: sources read-only, sync drained, re-verify of the chunks changed
    since their last clean check (or every chunk with --full-verify), report."""
    from ..cutover import cutover
    from ..cutover import dry_run as do_dry_run
    from ..cutover import rollback as do_rollback

    plan = load_plan(plan_path)
    wd = resolve_workdir(plan_path, workdir)
    if rollback:
        for line in do_rollback(plan, wd):
            console.print(line, highlight=False)
        return
    if dry_run:
        print_dry_run(do_dry_run(plan, wd, max_lag=max_lag, parallel=parallel), full_verify)
        return
    if not yes:
        click.confirm(f"make all {len(plan.sources)} source(s) read-only now and switch to the target?", abort=True)
    steps: list[str] = []
    ticker = Ticker("cutover", run_options().progress_interval,
                    lambda: {"line": steps[-1] if steps else "starting", "steps": len(steps)},
                    live_path=wd.live("cutover"), log_lines=False)

    with stage_metrics("cutover", metrics_port, metrics_addr) as metrics:
        def say(step: CutoverStep) -> None:
            message = step.message
            steps.append(message)
            metrics.cutover(step.step)
            if err_console.is_terminal:
                err_console.print(message, highlight=False)
            else:  # timestamped, and JSON with --log-format json
                progress_log(f"cutover: {message}", stage="cutover")

        ticker.start()
        state = "failed"
        try:
            report = cutover(plan, wd, max_lag=max_lag, verify=not no_verify, full_verify=full_verify,
                             parallel=parallel, progress=CallbackSink(say))
            metrics.cutover(None)
            if report.write_downtime_seconds is not None:
                metrics.cutover_downtime.set(report.write_downtime_seconds)
            state = "finished"
        finally:
            ticker.stop(state)
    print_result(report)
    console.print(f"cutover report: {wd.cutover_report}", highlight=False)
    console.print(report.next_step or "", highlight=False)
    if not report.ok:
        exit_with(ExitCode.DIFFERENT)


def print_result(report: CutoverReport) -> None:
    """The write downtime with its parts, and how many chunks the window re-verified."""
    line = report.downtime_line()
    if line is not None:
        console.print(line, highlight=False, soft_wrap=True)
    v = report.verify
    if v is not None and v.mode == "dirty chunks":
        console.print(f"verify: {v.reverified} of {v.chunks} chunk(s) re-verified in the window, "
                      f"{v.kept_clean} kept clean since their last check", highlight=False, soft_wrap=True)


def print_dry_run(doc: CutoverDryRun, full_verify: bool) -> None:
    """`cutover --dry-run`: lag, chunk states, steps and the expected window (nothing changed)."""
    for name, lag in doc.lag_seconds.items():
        console.print(f"{name}: lag {lag if lag is not None else '?'}s", highlight=False, soft_wrap=True)
    states = ", ".join(f"{n} {k}" for k, n in sorted(doc.chunk_states.items()))
    console.print(f"chunks: {doc.chunks} ({states})", highlight=False, soft_wrap=True)
    if full_verify:
        console.print(f"--full-verify: every one of the {doc.chunks} chunk(s) is checksummed in the window",
                      highlight=False, soft_wrap=True)
    else:
        shown = ", ".join(doc.reverify[:10]) + (f" and {len(doc.reverify) - 10} more"
                                                 if len(doc.reverify) > 10 else "")
        console.print(f"dirty now (re-verified in the window): {len(doc.reverify)}" + (f": {shown}" if shown else ""),
                      highlight=False, soft_wrap=True)
    for i, step in enumerate(doc.steps, 1):
        console.print(f"  {i}. {step}", highlight=False, soft_wrap=True)
    e = doc.expected_downtime
    console.print(f"expected write downtime ~{e.total_seconds:.2f}s (read-only {e.read_only_seconds:.2f}s, "
                  f"drain {e.drain_seconds:.2f}s, re-verify {e.verify_seconds:.2f}s"
                  + (", more with --full-verify" if full_verify else "") + ")", highlight=False, soft_wrap=True)
    for r in doc.would_refuse:
        console.print(f"[red]would refuse:[/] {r}", highlight=False, soft_wrap=True)
    console.print("dry run: nothing was changed", highlight=False, soft_wrap=True)


def register(main: click.Group) -> None:
    """Add this stage's command to the `migrator` group."""
    main.add_command(cutover_cmd)
