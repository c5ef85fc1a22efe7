"""CLI command of the sync stage: `migrator sync PLAN`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from ..plan.model import load_plan
from ..progress_lines import SyncTracker, Ticker
from .common import resolve_workdir, run_options, stage_metrics

console = Console()
err_console = Console(stderr=True)


def register(main: click.Group) -> None:
    """Add this stage's commands to the `migrator` group."""

    @main.command("sync")
    @click.argument("plan_path", metavar="PLAN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Work directory (default: work/<plan name>).")
    @click.option("--until-caught-up", is_flag=True, help="Exit once every source's changes up to now are applied.")
    @click.option("--duration", type=click.FloatRange(0, None), default=None, help="Stop after S seconds.")
    @click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
                  help="Serve Prometheus metrics on this port.")
    @click.option("--metrics-addr", default="127.0.0.1", show_default=True, help="Address the metrics server binds.")
    @click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
                  help="Target connections per source.")
    @click.option("--batch-rows", type=click.IntRange(1, None), default=5000, show_default=True,
                  help="Row changes per applied batch.")
    @click.option("--source", "only_sources", multiple=True, help="Sync only this source (repeatable).")
    @click.option("--sources-per-process", type=click.IntRange(1, None), default=None,
                  help="Sources one sync process serves, each in a thread (default: the sources spread over one "
                       "process per CPU core; 1 = a process per source).")
    @click.option("--wait-for-copy", is_flag=True, help="Wait for tables copy has not finished instead of refusing.")
    @click.option("--skip-ddl", multiple=True, metavar="FILE:POS",
                  help="A binlog DDL you applied to the target by hand, or an XA COMMIT sync cannot resolve "
                       "(sync names the position when it stops).")
    @click.option("--by-file-position", is_flag=True,
                  help="Resume from the binlog file/offset even where the checkpoint has a GTID.")
    @click.option("--lease-seconds", type=click.FloatRange(3, None), default=30.0, show_default=True,
                  help="Each source's lease in the target lasts this long unless renewed; another sync of the "
                       "source (another work directory or machine) takes it over only once it expired.")
    @click.option("--executor", default=None, metavar="dask://HOST:PORT",
                  help="Run each source's stream as a long-lived task on this Dask cluster (default: local processes).")
    @click.option("--json", "as_json", is_flag=True, help="Print the final per-source summary as JSON.")
    def sync_cmd(plan_path: Path, workdir: Path | None, until_caught_up: bool, duration: float | None,
                 metrics_port: int | None, metrics_addr: str, workers: int, batch_rows: int,
                 only_sources: tuple[str, ...], sources_per_process: int | None, wait_for_copy: bool,
                 skip_ddl: tuple[str, ...], by_file_position: bool, lease_seconds: float, executor: str | None,
                 as_json: bool) -> None:
        """Keep the target in step with every source's binlog until stopped (Ctrl-C / SIGTERM
        applies what was read, checkpoints and exits 0). Resumes from its checkpoint."""
        from ..sync.runner import run_sync
        from ..sync.stream import SyncOptions

        plan = load_plan(plan_path)
        wd = resolve_workdir(plan_path, workdir)
        opts = SyncOptions(until_caught_up=until_caught_up, duration=duration, workers=workers, batch_rows=batch_rows,
                           wait_for_copy=wait_for_copy, skip_ddl=list(skip_ddl), use_gtid=not by_file_position,
                           lease_seconds=lease_seconds)
        for name in only_sources:
            plan.source(name)  # unknown names fail here, clearly
        quiet = as_json or not sys.stderr.isatty()
        if not quiet:
            from ..sync.runner import default_sources_per_process

            n = len(only_sources) or len(plan.sources)
            per = sources_per_process or default_sources_per_process(n)
            err_console.print(f"syncing {n} source(s) into {plan.target.engine} in {-(-n // per)} process(es); "
                              "Ctrl-C stops cleanly")
        names = list(only_sources) or [s.name for s in plan.sources]
        # one line every --progress-interval seconds (rows, rows/s, lag percentiles, worst sources),
        # on a terminal too: sync has no other live view; and WORKDIR/live/sync.json for status --watch
        with stage_metrics("sync", metrics_port, metrics_addr) as metrics:
            tracker = SyncTracker(names, metrics)
            ticker = Ticker("sync", run_options().progress_interval, tracker.snapshot, live_path=wd.live("sync"),
                            log_lines=not as_json)
            ticker.start()
            state = "failed"
            try:
                if executor and executor != "local":
                    from ..sync.dasksync import run_sync_dask

                    result = run_sync_dask(plan, wd, opts, executor, sources=list(only_sources) or None)
                else:
                    result = run_sync(plan, wd, opts, sources=list(only_sources) or None, progress=tracker,
                                      sources_per_process=sources_per_process)
                state = "finished"
            finally:
                ticker.stop(state)
        summary = {name: {"position": r.checkpoint.position.model_dump(mode="json") if r.checkpoint else None,
                          "rows": r.rows, "caught_up": r.caught_up}
                   for name, r in result.sources.items()}
        if as_json:
            click.echo(json.dumps({"seconds": round(result.seconds, 3), "sources": summary}, indent=2, default=str))
            return
        for name, s in summary.items():
            pos = s["position"] or {}
            rows = ", ".join(f"{k} {v}" for k, v in s["rows"].items())
            console.print(f"{name}: at {pos.get('file')}:{pos.get('pos')} "
                          f"{'(caught up)' if s['caught_up'] else ''} rows {rows}", highlight=False)
        console.print(f"applied {result.rows} row change(s) in {result.seconds:.1f}s", highlight=False)
