"""`migrator sync PLAN --executor dask://HOST:PORT`: each source's binlog stream runs as one
long-lived task on a Dask worker.

What makes a source movable: its checkpoint and lease live in the target (targetstate.py), not
on the machine that runs it. A task claims the source's lease, resumes from the target's
checkpoint and syncs until told to stop. When its worker dies, the scheduler runs the task again
on another worker; that one waits until the dead worker's lease expires (`--lease-seconds`),
then takes it over and resumes from the checkpoint the target holds: no change lost (the
checkpoint commits with the batch it covers), none applied twice where that matters (the
one-connection path is exactly once; other batches are idempotent to replay).

The coordinator (the `migrator sync` process) sends each task the plan, the options and the
source's copy positions (workers have no work directory: each task keeps its own scratch one),
beats a heartbeat in a Dask Variable and sets the stop flag there on Ctrl-C / SIGTERM. A task
whose coordinator stopped beating (killed) stops too, releasing its lease, so a new coordinator's
tasks take over. The coordinator writes the work directory's sync/SRC.json from the target's
rows, with the worker each source runs on (`runs_on`, shown by `status`).

Limits: DDL replayed by sources merged into one target table is coordinated through the work
directory's sync/ddl.jsonl, which Dask tasks do not share: merged shards with DDL during sync
should run locally. Endpoints travel in task arguments as copy's tasks do (executor.py: credentials=send|worker).
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..db import session
from ..endpoint import Endpoint
from ..errors import ConfigError, ExitCode, MigratorError, StateError
from ..executor import DaskExecutor, make_executor
from ..plan.model import Plan
from ..state import atomic_write_json
from ..workdir import WorkDir
from .contracts import Checkpoint, SyncOptions, SyncStopped
from .copystate import SourceCopy, source_copy
from .runner import SourceResult, SyncResult, sync_result, wait_for_copy_unlocked
from .stream import SourceSync
from .targetstate import NOW, TABLE, LeaseHeld, plan_identity

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0  # the coordinator beats this often
ORPHAN_SECONDS = 20.0  # a task whose coordinator has not beaten for this long stops (releases its lease)
VIEW_SECONDS = 1.0  # the work directory's checkpoint views are rewritten from the target this often


@dataclass
class SourceTask:
    """Everything a worker needs to sync one source: picklable, no work-directory paths."""

    plan_json: str
    source: str
    options_json: str
    copy: SourceCopy
    run_id: str
    # the source's and the target's endpoints as the executor ships them (credentials=send: with
    # their passwords; =worker: by reference): the plan's URLs hold no password
    endpoints: tuple[Endpoint, Endpoint] | None = None


class RemoteSourceSync(SourceSync):
    """A SourceSync inside a Dask worker: copy positions from the coordinator, a scratch work
    directory, the worker named in its lease."""

    def __init__(self, *args: Any, copy: SourceCopy, worker: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._copy = copy
        if worker:
            self.held.note["worker"] = worker

    def copy_state(self) -> SourceCopy:
        return self._copy


class CoordinatorWatch:
    """Inside a task: the coordinator's stop flag and heartbeat (a Dask Variable), read by a
    thread so the stream's loops check a local flag."""

    def __init__(self, run_id: str):
        from distributed import Variable, get_client

        self.var = Variable(variable_name(run_id), client=get_client())
        self._stop = threading.Event()
        self._closed = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="coordinator-watch", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        last_beat, seen_at = None, time.monotonic()
        while not self._closed.wait(0.5):
            try:
                value = self.var.get(timeout=5)
            except Exception:  # noqa: BLE001 - scheduler unreachable: counts as a missed beat
                value = None
            if isinstance(value, dict):
                if value.get("stop"):
                    self._stop.set()
                if value.get("beat") != last_beat:
                    last_beat, seen_at = value.get("beat"), time.monotonic()
            if time.monotonic() - seen_at > ORPHAN_SECONDS:
                log.warning("sync task: no heartbeat from the coordinator for %.0f s: stopping", ORPHAN_SECONDS)
                self._stop.set()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._closed.set()


def variable_name(run_id: str) -> str:
    return f"migrator-sync-{run_id}"


def sync_source_task(task: SourceTask) -> dict[str, Any]:
    """Run on a worker: sync one source until stopped; returns its last checkpoint."""
    from distributed import get_worker, secede

    worker = get_worker().address
    secede()  # a long-lived task: it does not hold one of the worker's task threads
    watch = CoordinatorWatch(task.run_id)
    root = Path(tempfile.mkdtemp(prefix=f"migrator-sync-{task.source}-"))
    plan = Plan.model_validate_json(task.plan_json)
    opts = SyncOptions.model_validate_json(task.options_json)
    # a worker that died holds the lease until it expires; a live holder renews it and is refused
    patience = time.monotonic() + 2 * opts.lease_seconds + 10
    try:
        while True:
            sync = RemoteSourceSync(plan, task.source, WorkDir(root), opts, stop=watch.stopped, copy=task.copy,
                                    worker=worker, endpoints=task.endpoints)
            try:
                cp = sync.run()
                return {"checkpoint": cp.model_dump(mode="json"), "caught_up": sync.caught_up, "worker": worker}
            except LeaseHeld as exc:
                if watch.stopped() or time.monotonic() > patience:
                    raise
                log.info("source %s: waiting %.0f s for the lease of its previous worker to expire", task.source,
                         exc.expires_in)
                time.sleep(min(max(exc.expires_in, 0.2) + 0.3, 5.0))
            except SyncStopped:
                return {"checkpoint": None, "caught_up": False, "worker": worker}
    finally:
        watch.close()
        shutil.rmtree(root, ignore_errors=True)


def run_sync_dask(plan: Plan, workdir: WorkDir, options: SyncOptions, executor_url: str, *,
                  sources: list[str] | None = None) -> SyncResult:
    """Like runner.run_sync, each source on a Dask worker (see the module doc)."""
    names = sources or [s.name for s in plan.sources]
    if not names:
        raise ConfigError("the plan has no sources to sync")
    started = time.monotonic()
    if options.wait_for_copy and not wait_for_copy_unlocked(plan, workdir, names, options, started):
        return SyncResult({n: SourceResult(n) for n in names}, time.monotonic() - started)
    copies = {n: source_copy(workdir, plan, n) for n in names}
    for name, copy in copies.items():
        if copy.incomplete:
            raise StateError(f"source {name}: copy has not finished table(s) {', '.join(copy.incomplete[:10])}; "
                             "finish `migrator copy` first, or run sync with --wait-for-copy")
        if copy.start is None:
            raise StateError(f"source {name}: copy has not recorded a start position: run `migrator copy` first")
    executor = make_executor(executor_url, 1, endpoints=plan.endpoints())
    if not isinstance(executor, DaskExecutor):
        raise ConfigError(f"--executor {executor_url!r}: sync runs on Dask (dask://HOST:PORT) or locally (no --executor)")
    workdir.lock("sync")
    from distributed import Variable

    client = executor.client
    run_id = uuid.uuid4().hex[:12]
    beat = Variable(variable_name(run_id), client=client)
    stopping = threading.Event()
    previous = _install_stop_handlers(stopping)
    results = {n: SourceResult(n) for n in names}
    views = CheckpointViews(plan, workdir, names)
    futures: dict[Any, str] = {}
    try:
        n = 0
        beat.set({"stop": False, "beat": n})
        plan_json, opts_json = plan.model_dump_json(), options.model_dump_json()
        for name in names:
            endpoints = (executor.ship(plan.source(name).endpoint(), "source"),
                         executor.ship(plan.target.endpoint(), "target"))
            task = SourceTask(plan_json, name, opts_json, copies[name], run_id, endpoints)
            fut = client.submit(sync_source_task, task, pure=False, retries=0, key=f"migrator-sync-{name}-{run_id}")
            futures[fut] = name
        pending = set(futures)
        next_view = 0.0
        while pending:
            n += 1
            if options.duration is not None and time.monotonic() - started >= options.duration + 5.0:
                stopping.set()  # tasks still waiting for a lease when --duration ends stop too
            beat.set({"stop": stopping.is_set(), "beat": n})
            done = executor.wait_first(pending, timeout=HEARTBEAT_SECONDS)
            for fut in done:
                pending.discard(fut)
                _collect(fut, results[futures[fut]])
            if time.monotonic() >= next_view:
                views.write()
                next_view = time.monotonic() + VIEW_SECONDS
    finally:
        try:
            beat.set({"stop": True, "beat": -1})
            for fut in futures:
                if not fut.done():
                    try:
                        fut.result(timeout=60)
                    except Exception:  # noqa: BLE001, S110 - leaving on an error already raised: let tasks stop first
                        pass
            views.write()
        finally:
            _restore_stop_handlers(previous)
            executor.close()
            workdir.unlock()
    return sync_result(results, started)


def _collect(fut: Any, r: SourceResult) -> None:
    try:
        out = fut.result()
    except MigratorError as exc:
        r.error, r.exit_code = str(exc), exc.exit_code
        log.error("%s", exc)
        return
    except Exception as exc:  # noqa: BLE001 - lost on too many workers (KilledWorker), a bug: reported
        r.error, r.exit_code = f"source {r.source}: its sync task failed on Dask: {type(exc).__name__}: {exc}", ExitCode.INTERNAL
        log.error("%s", r.error)
        return
    if out.get("checkpoint"):
        r.checkpoint = Checkpoint.model_validate(out["checkpoint"])
        r.rows = dict(r.checkpoint.rows)
    r.caught_up = bool(out.get("caught_up"))


class CheckpointViews:
    """The work directory's sync/SRC.json, written from the checkpoints the target holds (the
    tasks write only their workers' scratch directories), with where each source runs."""

    def __init__(self, plan: Plan, workdir: WorkDir, names: list[str]):
        self.plan_id = plan_identity(Plan.model_validate_json(plan.model_dump_json()))  # as the tasks compute it
        self.target = plan.target.endpoint()
        self.workdir = workdir
        self.names = names

    def write(self) -> None:
        try:
            with session(self.target, "target") as conn, conn.cursor() as cur:
                cur.execute(f"SELECT `source`, `checkpoint`, `owner_note`, `lease_expires` - {NOW} FROM {TABLE} "
                            "WHERE `plan_id` = %s", (self.plan_id,))
                rows = cur.fetchall()
        except MigratorError as exc:
            log.warning("could not read the sync checkpoints from the target: %s", exc)
            return
        for source, raw, note, expires_in in rows:
            if source not in self.names or not raw:
                continue
            cp = Checkpoint.model_validate_json(raw)
            n = json.loads(note) if note else {}
            live = float(expires_in or 0) > 0
            cp.runs_on = (f"{n.get('worker') or n.get('host')} (pid {n.get('pid')})" if live else "") if n else ""
            atomic_write_json(self.workdir.sync_checkpoint(source), cp.model_dump(mode="json"))


def _install_stop_handlers(stopping: threading.Event) -> dict:
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, lambda *_: stopping.set())
        except ValueError:  # not the main thread (library use)
            pass
    return previous


def _restore_stop_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)

