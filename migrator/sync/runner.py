"""`migrator sync`: a few sync processes, each serving a group of sources (one per core by
default: binlog parsing is CPU-bound Python, so groups scale across cores), each source streaming
in a thread of its own; the coordinating process collects progress, serves metrics and relays stops.

Each source owns its binlog stream, its checkpoint file, its lock and its log (sync/SRC.log); a
source that fails stops alone and reports why. The only state sources share is the record of
applied DDL (file-locked). SIGINT/SIGTERM: every source applies what it has read, checkpoints and
exits. A sync process dies with its parent (PR_SET_PDEATHSIG), so a kill -9 of `migrator sync`
never leaves a stray writer behind.
"""

from __future__ import annotations

import ctypes
import gc
import faulthandler
import logging
import logging.handlers
import math
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..db import session
from ..engine.locks import hold
from ..errors import ConfigError, ExitCode, InternalError, MigratorError, SourceError, StateError, TargetError
from ..plan.model import Plan
from ..positions import read_position
from ..state import read_json
from ..workdir import WorkDir
from ..metrics import current as current_metrics
from ..progress import Progress, SyncProgress, SyncWire, as_sink
from .metrics import SyncMetrics
from .copystate import source_copy
from .contracts import Checkpoint, SourceStatus, SyncOptions, SyncStopped, gtid_distance, status_line
from .stream import SourceSync

log = logging.getLogger(__name__)
# a source process's exit code back to the error it stands for (errors.ExitCode)
ERROR_CLASSES: dict[int, type[MigratorError]] = {
    c.exit_code: c for c in (ConfigError, StateError, SourceError, TargetError, InternalError)}


@dataclass
class SourceResult:
    source: str
    checkpoint: Checkpoint | None = None  # the last one reported
    caught_up: bool = False
    error: str | None = None
    exit_code: int = 0
    finished: bool = False  # the source reported its end (else its process died under it)
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


STOP_CHECK_SECONDS = 0.2  # how often a sync process looks for a stop or its coordinator's death
DURATION_GRACE = 5.0  # seconds past --duration before the parent tells slow starters to stop
SOURCE_LOCK_WAIT = 60.0  # seconds a source process waits for the previous one to exit


def hold_source_lock(workdir: WorkDir, source: str, wait: float = SOURCE_LOCK_WAIT) -> int:
    """One writer per source, while its stream runs (released when its thread ends, or its process
    exits): a sync process of a run that was killed can outlive it briefly (it flushes its batches
    and checkpoints when it sees its parent gone); a new run waits for it rather than applying and
    checkpointing beside it."""
    return hold(workdir.sync_lock(source), wait=wait, note=f"{os.getpid()}\n",
                waiting=lambda holder: log.warning("source %s: waiting for the previous sync process (pid %s) to exit",
                                                   source, holder),
                busy=lambda holder: StateError(f"source {source}: another sync process (pid {holder}) still writes "
                                               "for it; stop it, then run sync again"))  # released when the process exits


def default_sources_per_process(n_sources: int, cpus: int | None = None) -> int:
    """One sync process per core, the fleet's sources spread evenly over them. Binlog parsing is
    CPU-bound Python (one core per process, the GIL), so more processes than cores buy no speed
    while each costs ~25 MB and its own idle wake-ups; fewer leave a core unused in a catch-up.
    A fleet no larger than the core count keeps one process per source."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(1, math.ceil(n_sources / max(1, cpus)))


def source_groups(names: list[str], per_process: int) -> list[list[str]]:
    """The sources of each sync process, in plan order, sizes differing by at most one."""
    n_procs = max(1, math.ceil(len(names) / max(1, per_process)))
    size, extra = divmod(len(names), n_procs)
    groups, i = [], 0
    for g in range(n_procs):
        k = size + (1 if g < extra else 0)
        groups.append(names[i:i + k])
        i += k
    return [g for g in groups if g]


def _group_main(plan_json: str, names: list[str], root: str, options_json: str, q: Any, stop_event: Any,
                log_level: int, group: int, heartbeats: bool) -> None:
    """Entry point of one sync process: each of its sources streams in a thread of its own
    (readers are non-blocking, applying waits on the target: the threads interleave). A source
    that fails stops alone and reports why; the process ends when all its sources have."""
    _die_with_parent()
    gc.freeze()  # what the fork server imported stays shared: collections no longer write to those pages
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C reaches the parent, which relays it
    terminated: list[int] = []  # a plain list: the handler must not take a lock the loop below may hold
    signal.signal(signal.SIGTERM, lambda signum, _frame: terminated.append(signum))
    workdir = WorkDir(root)
    threads = {f"sync-{i}": name for i, name in enumerate(names)}
    logs = SourceLogs(workdir, threads, log_level, group)
    parent = mp.parent_process()
    stopping = threading.Event()  # what the sources poll (per binlog event: a plain flag, no system call)
    plan = Plan.model_validate_json(plan_json)  # one copy per process: sources only read it
    opts = SyncOptions.model_validate_json(options_json)
    workers = [threading.Thread(target=_run_source, name=tname,
                                args=(plan, name, workdir, opts, stopping.is_set, q, heartbeats))
               for tname, name in threads.items()]
    try:
        for t in workers:
            t.start()
        while any(t.is_alive() for t in workers):
            # the coordinator's stop (SIGTERM, --duration, Ctrl-C relayed) or its death reach every source
            if terminated or stop_event.is_set() or (parent is not None and not parent.is_alive()):
                stopping.set()
            time.sleep(STOP_CHECK_SECONDS)
    finally:
        logs.close()


def _run_source(plan: Plan, source: str, workdir: WorkDir, opts: SyncOptions, stop: Any, q: Any,
                heartbeats: bool) -> None:
    """One source's stream, in its thread: whatever ends it is reported to the coordinator.
    An idle poll's heartbeat ({"caught_up": ...} alone) goes only to a caller that follows
    progress (run_sync's progress): the metrics and the result need none, and a fleet's idle CPU
    went to them. Messages are SyncProgress's wire form (a dict; the coordinator validates it)."""

    def report(msg: SyncWire) -> None:
        if heartbeats or len(msg) != 1 or "caught_up" not in msg:
            q.put({"source": source, **msg})

    lock = None
    try:
        lock = hold_source_lock(workdir, source)
        sync = SourceSync(plan, source, workdir, opts, stop=stop, report=report)
        cp = sync.run()
        report({"done": True, "checkpoint": cp.model_dump(mode="json"), "caught_up": sync.caught_up})
    except SyncStopped:
        report({"done": True})  # stopped (--duration, SIGTERM) before it began: a clean stop
    except MigratorError as exc:
        log.error("%s", exc)
        report({"done": True, "error": str(exc), "exit_code": exc.exit_code})
    except BaseException as exc:  # noqa: BLE001 - a bug or MemoryError: report it with its traceback
        log.error("internal error: %r\n%s", exc, traceback.format_exc())
        report({"done": True, "error": f"internal error: {exc!r}\n{traceback.format_exc()}",
                "exit_code": ExitCode.INTERNAL})
    finally:
        if lock is not None:
            os.close(lock)  # the next run's writer for this source may start


class SourceLogs:
    """Logging of a sync process serving several sources: each record is tagged with the source
    whose thread logged it (threads a source starts are named `<its thread>/...`), goes to stderr
    as `[source]` and to that source's sync/SRC.log, so when a source dies without a word on the
    queue the coordinator shows its own last lines. Python tracebacks of a fatal signal (all
    threads) go to sync/process-K.faults."""

    def __init__(self, workdir: WorkDir, threads: dict[str, str], level: int, group: int):
        self.threads = threads
        root = logging.getLogger()
        for h in list(root.handlers):
            root.removeHandler(h)
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(source)s] %(message)s"))
        stderr.setLevel(level)
        stderr.addFilter(self.tag)
        root.addHandler(stderr)
        self.files: dict[str, logging.Handler] = {}
        for name in threads.values():
            path = workdir.sync_log(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            h = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=1)
            h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self.files[name] = h
        by_source = _BySource(self.files)
        by_source.setLevel(min(level, logging.INFO))
        by_source.addFilter(self.tag)
        root.addHandler(by_source)
        root.setLevel(min(level, logging.INFO))
        # the library warns about binlog_row_metadata on every table map; we supply column info ourselves
        logging.getLogger("pymysqlreplication").setLevel(max(level, logging.ERROR))
        faults = workdir.sync_faults(group)
        faults.parent.mkdir(parents=True, exist_ok=True)
        self.faults = open(faults, "w")  # noqa: SIM115 - kept open for faulthandler for the process's life
        faulthandler.enable(file=self.faults, all_threads=True)

    def tag(self, record: logging.LogRecord) -> bool:
        record.source = self.threads.get(record.threadName.split("/", 1)[0], "-")
        return True

    def close(self) -> None:
        for h in self.files.values():
            h.close()
        faulthandler.disable()
        self.faults.close()


class _BySource(logging.Handler):
    """Hands each record to the file handler of the source it is tagged with."""

    def __init__(self, files: dict[str, logging.Handler]):
        super().__init__()
        self.files = files

    def emit(self, record: logging.LogRecord) -> None:
        h = self.files.get(getattr(record, "source", ""))
        if h is not None:
            h.handle(record)


def died_without_report(workdir: WorkDir, source: str, exitcode: int, group: int | None = None) -> str:
    """What a user can act on when a source's sync process ended without the source reporting
    an error (the process was killed, or crashed: every source it served is told this)."""
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
    faults = workdir.sync_faults(group) if group is not None else None
    if faults is not None and faults.exists() and faults.stat().st_size:
        last += f"\n  Python tracebacks of the fatal error: {faults}"
    return (f"source {source}: the sync process {cause}. Its checkpoint is intact: run `migrator sync` again to "
            f"resume{last}")


def run_sync(plan: Plan, workdir: WorkDir, options: SyncOptions | None = None, *, metrics_port: int | None = None,
             metrics_addr: str = "127.0.0.1", sources: list[str] | None = None,
             progress: Progress | None = None, sources_per_process: int | None = None) -> SyncResult:
    """Run sync for every source of the plan until stopped (SIGINT/SIGTERM), caught up
    (options.until_caught_up) or options.duration elapsed. Raises the first source's error
    after the others stopped cleanly. progress: a sink (migrator.progress) given every source's
    SyncProgress events, in this thread. `sources_per_process`: sources served by one sync process
    (default: default_sources_per_process, one process per core)."""
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
    ctx.set_forkserver_preload(["migrator.sync.forkserver_init", "migrator.sync.stream", "migrator.sync.runner"])
    q = ctx.Queue()
    stop_event = ctx.Event()
    shared = current_metrics()  # the CLI's registry (--metrics-port serves every stage's metrics)
    metrics = SyncMetrics(names, registry=shared.registry if shared is not None else None)
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_addr)
    results = {n: SourceResult(n) for n in names}
    sink = as_sink(progress)
    previous = _install_stop_handlers(stop_event)
    per_process = sources_per_process or default_sources_per_process(len(names))
    groups = source_groups(names, per_process)
    log.info("syncing %d source(s) in %d process(es), up to %d source(s) each", len(names), len(groups),
             max(len(g) for g in groups))
    procs: list[tuple[Any, list[str]]] = []
    try:
        plan_json, opts_json = plan.model_dump_json(), options.model_dump_json()
        level = logging.getLogger().getEffectiveLevel()
        with _main_module_hidden():
            for k, group in enumerate(groups):
                p = ctx.Process(target=_group_main, name=f"sync-{k}", daemon=False,
                                args=(plan_json, group, str(workdir.root), opts_json, q, stop_event, level, k,
                                      progress is not None))
                p.start()
                procs.append((p, group))
        while any(p.is_alive() for p, _ in procs):
            _drain(q, results, metrics, sink, timeout=0.5)
            if options.duration is not None and time.monotonic() - started >= options.duration + DURATION_GRACE:
                stop_event.set()  # sources still starting when --duration ends stop cleanly too
        while _drain(q, results, metrics, sink, timeout=0.2):
            pass  # every word the processes put on the queue before they ended
        for k, (p, group) in enumerate(procs):
            p.join()
            for name in group:
                if p.exitcode and not results[name].finished:
                    results[name].error = died_without_report(workdir, name, p.exitcode, k)
                    results[name].exit_code = ExitCode.INTERNAL if p.exitcode > 0 else ExitCode.SOURCE
    finally:
        stop_event.set()
        for p, _ in procs:
            p.join(timeout=30)
        _restore_stop_handlers(previous)
        metrics.stop()
        _stop_fork_server()
        workdir.unlock()
    return sync_result(results, started)


def sync_result(results: dict[str, SourceResult], started: float) -> SyncResult:
    """The run's result; the first failed source's error (typed by its exit code) when any failed,
    after the others stopped cleanly."""
    failed = [r for r in results.values() if r.error]
    if failed:
        first = failed[0]
        others = (f" ({len(failed) - 1} other source(s) failed too: {', '.join(r.source for r in failed[1:])})"
                  if len(failed) > 1 else "")
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


def _drain(q: Any, results: dict[str, SourceResult], metrics: SyncMetrics, progress: Progress,
           timeout: float) -> int:
    """Handle the sources' messages for up to `timeout` s; returns how many there were."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        try:
            msg = q.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue_mod.Empty:
            return n
        n += 1
        event = SyncProgress.model_validate(msg)
        r = results[event.source]
        if event.checkpoint is not None:
            r.checkpoint = event.checkpoint
            r.rows = dict(r.checkpoint.rows)
        if event.caught_up is not None:  # with the checkpoint, or alone from an idle poll
            r.caught_up = event.caught_up
        if event.error is not None:
            r.error, r.exit_code = event.error, ExitCode.INTERNAL if event.exit_code is None else event.exit_code
            log.error("%s", r.error)
        if event.done:
            r.finished = True
        metrics.emit(event)
        progress.emit(event)
        if time.monotonic() >= deadline:
            return n


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


def sync_status(workdir: WorkDir, plan: Plan, *, live: bool = True) -> list[SourceStatus]:
    """Per source: checkpoint position, lag in seconds, transactions (GTID) and bytes, rows applied.
    `live` reads each source's current position (else the one the last sync pass saw)."""
    out = []
    for sp in plan.sources:
        raw = read_json(workdir.sync_checkpoint(sp.name))
        if not raw:
            out.append(SourceStatus(source=sp.name, state="not started", started=False))
            continue
        cp = Checkpoint.model_validate(raw)
        state, unreachable = "synced", None
        if live:
            try:
                with session(sp.endpoint(), "source") as conn:
                    cp.head = read_position(conn, sp.flavor)
            except MigratorError as exc:
                unreachable = str(exc)
                state = f"source unreachable: {exc}"
        line = status_line(cp)
        if line["behind"]:
            state = "behind"
        if cp.xa_prepared:  # the checkpoint waits at the oldest undecided XA PREPARE
            state += f" (held at {len(cp.xa_prepared)} prepared XA transaction(s): XA COMMIT or ROLLBACK them)"
        out.append(SourceStatus(
            source=sp.name, state=state, unreachable=unreachable, xa_prepared=cp.xa_prepared,
            position=f"{cp.position.file}:{cp.position.pos}", gtid=cp.position.gtid,
            head=f"{cp.head.file}:{cp.head.pos}" if cp.head else None,
            lag_seconds=line["lag_seconds"], lag_bytes=line["lag_bytes"],
            lag_transactions=gtid_distance(cp.position.gtid, cp.head.gtid if cp.head else "", sp.flavor),
            rows=cp.rows, ddl_applied=cp.ddl_applied, retries=cp.retries, updated_at=cp.updated_at,
            runs_on=cp.runs_on))
    return out
