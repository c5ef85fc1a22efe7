"""`migrator sync`: one process per source (binlog parsing is CPU-bound Python, so sources scale
across cores), the coordinating process collects progress, serves metrics and relays stops.

Each source process owns its binlog stream and its checkpoint file; the only state they share
is the record of applied DDL (file-locked). SIGINT/SIGTERM: every source applies what it has
read, checkpoints and exits 0. A source process dies with its parent (PR_SET_PDEATHSIG), so a
kill -9 of `migrator sync` never leaves a stray writer behind.
"""

from __future__ import annotations

import ctypes
import gc
import faulthandler
import logging
import logging.handlers
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import time
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..db import session
from ..engine.locks import hold
from ..errors import ConfigError, MigratorError, SourceError, StateError, TargetError
from ..plan.model import Plan
from ..positions import read_position
from ..state import read_json
from ..workdir import WorkDir
from .metrics import SyncMetrics
from .copystate import source_copy
from .contracts import Checkpoint, SyncOptions, SyncStopped, gtid_distance, status_line
from .stream import SourceSync

log = logging.getLogger(__name__)
ERROR_CLASSES: dict[int, type[MigratorError]] = {2: ConfigError, 3: StateError, 4: SourceError, 5: TargetError}


@dataclass
class SourceResult:
    source: str
    checkpoint: dict[str, Any] | None = None
    caught_up: bool = False
    error: str | None = None
    exit_code: int = 0
    rows: dict[str, int] = field(default_factory=dict)


@dataclass
class SyncResult:
    sources: dict[str, SourceResult]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(sum(r.rows.values()) for r in self.sources.values())


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the child notices a changed parent pid instead


DURATION_GRACE = 5.0  # seconds past --duration before the parent tells slow starters to stop
SOURCE_LOCK_WAIT = 60.0  # seconds a source process waits for the previous one to exit


def hold_source_lock(workdir: WorkDir, source: str, wait: float = SOURCE_LOCK_WAIT) -> int:
    """One writer per source, for the life of this process: a source process of a sync that was
    killed can outlive it briefly (it flushes its batch and checkpoints when it sees its parent
    gone); a new run's process waits for it rather than applying and checkpointing beside it."""
    return hold(workdir.sync_lock(source), wait=wait, note=f"{os.getpid()}\n",
                waiting=lambda holder: log.warning("source %s: waiting for the previous sync process (pid %s) to exit",
                                                   source, holder),
                busy=lambda holder: StateError(f"source {source}: another sync process (pid {holder}) still writes "
                                               "for it; stop it, then run sync again"))  # released when the process exits


def _source_main(plan_json: str, source: str, root: str, options_json: str, q: Any, stop_event: Any,
                 log_level: int) -> None:
    """Entry point of one source's process."""
    _die_with_parent()
    gc.freeze()  # what the fork server imported stays shared: collections no longer write to those pages
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the parent, which relays it
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s [{source}] %(message)s", stream=sys.stderr)
    log_file = _source_log(WorkDir(root), source, log_level)
    # the library warns about binlog_row_metadata on every table map; we supply column info ourselves
    logging.getLogger("pymysqlreplication").setLevel(max(log_level, logging.ERROR))
    parent = mp.parent_process()

    def stop() -> bool:
        return stop_event.is_set() or (parent is not None and not parent.is_alive())

    def report(msg: dict) -> None:
        q.put({"source": source, **msg})

    try:
        plan = Plan.model_validate_json(plan_json)
        opts = SyncOptions.model_validate_json(options_json)
        hold_source_lock(WorkDir(root), source)
        sync = SourceSync(plan, source, WorkDir(root), opts, stop=stop, report=report)
        cp = sync.run()
        report({"done": True, "checkpoint": cp.model_dump(mode="json"), "caught_up": sync.caught_up})
    except SyncStopped:
        report({"done": True})  # stopped (--duration, SIGTERM) before it began: a clean stop
    except MigratorError as exc:
        log.error("%s", exc)
        report({"done": True, "error": str(exc), "exit_code": exc.exit_code})
        sys.exit(exc.exit_code)
    except BaseException as exc:  # noqa: BLE001 - a bug or MemoryError: report it with its traceback
        log.error("internal error: %r\n%s", exc, traceback.format_exc())
        report({"done": True, "error": f"internal error: {exc!r}\n{traceback.format_exc()}", "exit_code": 70})
        sys.exit(70)
    finally:
        log_file.close()


def _source_log(workdir: WorkDir, source: str, level: int) -> Any:
    """The source process also logs to sync/SRC.log (and dumps Python tracebacks there on a fatal
    signal): when it dies without a word on the queue, the parent shows its last lines."""
    path = workdir.sync_log(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=1)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(min(level, logging.INFO))
    root_logger = logging.getLogger()
    root_logger.addHandler(handler)
    root_logger.setLevel(min(root_logger.level or logging.INFO, logging.INFO))
    for h in root_logger.handlers:  # stderr keeps the user's level
        if h is not handler:
            h.setLevel(level)
    f = open(path, "a")  # noqa: SIM115 - kept open for faulthandler for the process's life
    faulthandler.enable(file=f)
    return f


def died_without_report(workdir: WorkDir, source: str, exitcode: int) -> str:
    """What a user can act on when a source process ended without reporting an error."""
    if exitcode < 0:
        try:
            cause = f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            cause = f"killed by signal {-exitcode}"
        cause += " (the OOM killer sends SIGKILL: see `dmesg`)" if exitcode == -signal.SIGKILL else ""
    elif exitcode == 255:
        cause = ("lost together with the process that started it (multiprocessing's fork server died: killed, "
                 "or out of memory?)")
    else:
        cause = f"exited with code {exitcode} without reporting an error"
    path = workdir.sync_log(source)
    try:
        tail = path.read_text(errors="replace").splitlines()[-5:]
    except OSError:
        tail = []
    last = ("; its last log lines (" + str(path) + "):\n  " + "\n  ".join(tail)) if tail else ""
    return (f"source {source}: the sync process {cause}. Its checkpoint is intact: run `migrator sync` again to "
            f"resume{last}")


def run_sync(plan: Plan, workdir: WorkDir, options: SyncOptions | None = None, *, metrics_port: int | None = None,
             metrics_addr: str = "127.0.0.1", sources: list[str] | None = None,
             on_progress: Any = None) -> SyncResult:
    """Run sync for every source of the plan until stopped (SIGINT/SIGTERM), caught up
    (options.until_caught_up) or options.duration elapsed. Raises the first source's error
    after the others stopped cleanly."""
    options = options or SyncOptions()
    names = sources or [s.name for s in plan.sources]
    if not names:
        raise ConfigError("the plan has no sources to sync")
    started = time.monotonic()
    if options.wait_for_copy and not wait_for_copy_unlocked(plan, workdir, names, options, started):
        return SyncResult({n: SourceResult(n) for n in names}, time.monotonic() - started)
    workdir.lock("sync")
    # forkserver: sync's modules are imported once, by the fork server; each source process is then
    # a fork of it (a spawned process re-imported everything: ~0.5 s of CPU per source)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["migrator.sync.stream", "migrator.sync.runner"])
    q = ctx.Queue()
    stop_event = ctx.Event()
    metrics = SyncMetrics(names)
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_addr)
    results = {n: SourceResult(n) for n in names}
    previous = _install_stop_handlers(stop_event)
    procs = {}
    try:
        plan_json, opts_json = plan.model_dump_json(), options.model_dump_json()
        level = logging.getLogger().getEffectiveLevel()
        with _main_module_hidden():
            for name in names:
                p = ctx.Process(target=_source_main, name=f"sync-{name}", daemon=False,
                                args=(plan_json, name, str(workdir.root), opts_json, q, stop_event, level))
                p.start()
                procs[name] = p
        while any(p.is_alive() for p in procs.values()):
            _drain(q, results, metrics, on_progress, timeout=0.5)
            if options.duration is not None and time.monotonic() - started >= options.duration + DURATION_GRACE:
                stop_event.set()  # sources still starting when --duration ends stop cleanly too
        _drain(q, results, metrics, on_progress, timeout=0.2)
        for name, p in procs.items():
            p.join()
            if p.exitcode and not results[name].error:
                results[name].error = died_without_report(workdir, name, p.exitcode)
                results[name].exit_code = 70 if p.exitcode > 0 else 4
    finally:
        stop_event.set()
        for p in procs.values():
            p.join(timeout=30)
        _restore_stop_handlers(previous)
        metrics.stop()
        _stop_fork_server()
        workdir.unlock()
    failed = [r for r in results.values() if r.error]
    if failed:
        first = failed[0]
        others = f" ({len(failed) - 1} other source(s) failed too: {', '.join(r.source for r in failed[1:])})" if len(failed) > 1 else ""
        raise ERROR_CLASSES.get(first.exit_code, MigratorError)(first.error + others)
    return SyncResult(results, time.monotonic() - started)


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """multiprocessing re-imports the parent's __main__ in every child it starts (`migrator` is
    the CLI: click, rich, sqlglot, the plan builder...): ~1 s of CPU and ~40 MB per source
    process, and with a fleet of sources the start-up alone kept both cores busy. A source
    process needs only migrator.sync (preloaded by the fork server), so the parent's __main__
    is hidden while the processes start."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def wait_for_copy_unlocked(plan: Plan, workdir: WorkDir, names: list[str], options: SyncOptions,
                           started: float) -> bool:
    """--wait-for-copy: wait, WITHOUT the work directory's lock (`migrator copy` needs it to
    finish), until copy has finished every table of these sources. False when stopped first
    (Ctrl-C, SIGTERM, or --duration elapsed): a clean stop."""
    stopping: list[int] = []
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, lambda signum, _frame: stopping.append(signum))
        except ValueError:  # not the main thread
            pass
    try:
        warned = ""
        while True:
            waiting = [t for n in names for t in source_copy(workdir, plan, n).incomplete]
            if not waiting:
                return True
            shown = ", ".join(waiting[:10]) + (f" and {len(waiting) - 10} more" if len(waiting) > 10 else "")
            if shown != warned:
                log.warning("waiting for copy to finish %s", shown)
                warned = shown
            if stopping or (options.duration is not None and time.monotonic() - started >= options.duration):
                log.warning("stopped while waiting for copy; nothing was applied")
                return False
            time.sleep(1.0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_fork_server() -> None:
    """The fork server is per process and its children inherit ITS stderr and environment: a
    second run in the same process (library use, tests) must not log to where stderr pointed when
    the first run started, nor read passwords from the environment as it was then."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if server is not None and hasattr(server, "_stop"):
        server._stop()


def _drain(q: Any, results: dict[str, SourceResult], metrics: SyncMetrics, on_progress: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            msg = q.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue_mod.Empty:
            return
        r = results[msg["source"]]
        if "checkpoint" in msg:
            r.checkpoint = msg["checkpoint"]
            r.rows = dict(msg["checkpoint"].get("rows", {}))
            r.caught_up = bool(msg.get("caught_up"))
        if "error" in msg:
            r.error, r.exit_code = msg["error"], msg.get("exit_code", 70)
            log.error("%s", r.error)
        metrics.update(msg)
        if on_progress is not None:
            on_progress(msg)
        if time.monotonic() >= deadline:
            return


def _install_stop_handlers(stop_event: Any) -> dict:
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, lambda *_: stop_event.set())
        except ValueError:  # not the main thread (library use): the caller stops us
            pass
    return previous


def _restore_stop_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def sync_status(workdir: WorkDir, plan: Plan, *, live: bool = True) -> list[dict[str, Any]]:
    """Per source: checkpoint position, lag in seconds, transactions (GTID) and bytes, rows applied.
    `live` reads each source's current position (else the one the last sync pass saw)."""
    out = []
    for sp in plan.sources:
        raw = read_json(workdir.sync_checkpoint(sp.name))
        if not raw:
            out.append({"source": sp.name, "state": "not started"})
            continue
        cp = Checkpoint.model_validate(raw)
        state = "synced"
        if live:
            try:
                with session(sp.endpoint(), "source") as conn:
                    cp.head = read_position(conn, sp.flavor)
            except MigratorError as exc:
                state = f"source unreachable: {exc}"
        line = status_line(cp)
        if line["behind"]:
            state = "behind"
        if cp.xa_prepared:  # the checkpoint waits at the oldest undecided XA PREPARE
            state += f" (held at {len(cp.xa_prepared)} prepared XA transaction(s): XA COMMIT or ROLLBACK them)"
        out.append({
            "source": sp.name, "state": state, "xa_prepared": cp.xa_prepared,
            "position": f"{cp.position.file}:{cp.position.pos}", "gtid": cp.position.gtid,
            "head": f"{cp.head.file}:{cp.head.pos}" if cp.head else None,
            "lag_seconds": line["lag_seconds"], "lag_bytes": line["lag_bytes"],
            "lag_transactions": gtid_distance(cp.position.gtid, cp.head.gtid if cp.head else "", sp.flavor),
            "rows": cp.rows, "ddl_applied": cp.ddl_applied, "retries": cp.retries, "updated_at": cp.updated_at,
            "runs_on": cp.runs_on,  # Dask: the worker running this source (dasksync.py)
        })
    return out
