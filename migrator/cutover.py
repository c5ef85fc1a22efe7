"""`migrator cutover`: stop writes on every source, drain sync, verify, report.

Order (write downtime runs from step 2 to the end of step 4, reported in those three parts):
  1. refuse when a source has no sync checkpoint or is more than `max_lag` seconds behind;
     while the sources are still writable (WindowVerify.catch_up): every chunk not clean now is
     checked whole, then the chunks checked are compared by the keys sync changed since their
     check, pass after pass until few keys are left (converge), so the window holds only the
     keys changed during the last pass;
  2. every source read-only (read_only; super_read_only on MySQL), previous values recorded;
  3. final positions read; a running `migrator sync` woken (sync/wake.py) and waited for until
     every checkpoint reached them (otherwise cutover runs sync itself);
  4. verify: only the chunks that are not clean now (verify/follow.py: never found clean,
     changed by sync since their clean check (sync/dirty.py), differing, or of tables sync does
     not replay): by key (the keys sync changed since the chunk's check taken during this
     cutover, and the keys that differed in it), whole where those keys are not all known;
     `full_verify` checks every chunk instead;
  5. report (cutover_report.CutoverReport) written to WorkDir.cutover_report (per chunk: when last clean, valid at which
     position, re-verified inside the window or not); on a verify failure the sources stay
     read-only and the report says how to roll back (`migrator cutover PLAN --rollback`).
`dry_run` prints what a cutover would do now (lag, chunks to re-verify, expected window) and
changes nothing.
Accounts with SUPER / READ_ONLY ADMIN can still write on a read-only MariaDB: the report says so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pymysql

from .cutover_report import (ChunkDetail, CutoverDryRun, CutoverReport, CutoverVerify, DowntimeParts,
                             ExpectedDowntime, ReadOnlyValues, SourcePositions, VerifySeconds)
from .db import describe_error, query, session
from .errors import MigratorError, SourceError, StateError, WorkdirBusy
from .formatting import utc_now
from .plan.model import Plan
from .positions import BinlogPosition, read_position
from .progress import CutoverStep, CutoverStepName, Progress, as_sink
from .state import read_json
from .sync.contracts import Checkpoint, SourceStatus, SyncOptions
from .sync.dirty import applied_position
from .sync.runner import run_sync, sync_status
from .sync.wake import wake
from .workdir import WorkDir


def check_lag(plan: Plan, workdir: WorkDir, max_lag: float) -> list[SourceStatus]:
    status = sync_status(workdir, plan, live=True)
    for s in status:
        if not s.started:
            raise StateError(f"source {s.source}: sync never ran; run `migrator sync PLAN` until it is caught up "
                             "before cutover")
        if s.unreachable is not None:
            raise StateError(f"source {s.source}: {s.state}; cutover needs every source reachable")
        if s.lag_seconds > max_lag:
            raise StateError(f"source {s.source} is {s.lag_seconds:.0f}s behind (limit {max_lag:.0f}s): let "
                             "`migrator sync` catch up first, or raise --max-lag")
    return status


Say = Callable[[CutoverStepName, str], None]  # (step, message): a CutoverStep to the progress sink


def _set_source_read_only(sp, on: bool, previous: ReadOnlyValues | None = None) -> ReadOnlyValues:
    """One source: read_only (and super_read_only on MySQL) to `on`, or back to `previous` values
    when given; returns the values before."""
    with session(sp.endpoint(), "source") as conn:
        before = _read_only_of(conn, sp)
        ro = bool(previous.read_only) if previous is not None else on
        sro = bool(previous.super_read_only) if previous is not None else on
        if sp.flavor == "mysql" and not sro:
            query(conn, "SET GLOBAL super_read_only = OFF")  # before read_only: super_read_only=ON forces it ON
        query(conn, f"SET GLOBAL read_only = {'ON' if ro else 'OFF'}")
        if sp.flavor == "mysql" and sro:
            query(conn, "SET GLOBAL super_read_only = ON")
    return before


def _read_only_of(conn: Any, sp: Any) -> ReadOnlyValues:
    read_only = int(query(conn, "SELECT @@global.read_only")[0][0])
    if sp.flavor == "mysql":
        return ReadOnlyValues(read_only=read_only,
                              super_read_only=int(query(conn, "SELECT @@global.super_read_only")[0][0]))
    return ReadOnlyValues(read_only=read_only)


def read_only_values(plan: Plan) -> dict[str, ReadOnlyValues]:
    """Every source's read_only (and super_read_only) now, changing nothing."""
    out: dict[str, ReadOnlyValues] = {}
    for sp in plan.sources:
        try:
            with session(sp.endpoint(), "source") as conn:
                out[sp.name] = _read_only_of(conn, sp)
        except (MigratorError, pymysql.MySQLError) as exc:
            why = exc if isinstance(exc, MigratorError) else describe_error(sp.endpoint(), "source", exc)
            raise SourceError(f"source {sp.name}: could not read read_only ({why}); cutover NOT started") from exc
    return out


def set_read_only(plan: Plan, on: bool,
                  previous: dict[str, ReadOnlyValues] | None = None) -> dict[str, ReadOnlyValues]:
    """read_only (and super_read_only on MySQL) on every source; returns the values before.

    previous: per-source values to restore instead of `on` (rollback); sources not in it get `on`.
    All or nothing: when one source fails (unreachable, no privilege), the sources already changed
    are put back as they were and a SourceError names the failed source and any that could not be
    put back, so no half read-only fleet is left unreported."""
    before: dict[str, ReadOnlyValues] = {}
    for sp in plan.sources:
        try:
            before[sp.name] = _set_source_read_only(sp, on, (previous or {}).get(sp.name))
        except (MigratorError, pymysql.MySQLError) as exc:
            stuck = _undo_read_only(plan, before)
            state = (f"; could NOT put back {', '.join(stuck)}: check read_only there by hand" if stuck
                     else "; every source changed before it was put back as it was")
            raise SourceError(f"source {sp.name}: could not set read_only={'ON' if on else 'OFF'} "
                              f"({exc if isinstance(exc, MigratorError) else describe_error(sp.endpoint(), 'source', exc)}){state}") from exc
    return before


def _undo_read_only(plan: Plan, before: dict[str, ReadOnlyValues]) -> list[str]:
    """Put the sources in `before` back to those values; the names that failed."""
    stuck = []
    for sp in plan.sources:
        if sp.name in before:
            try:
                _set_source_read_only(sp, False, before[sp.name])
            except (MigratorError, pymysql.MySQLError):
                stuck.append(sp.name)
    return stuck


def final_positions(plan: Plan) -> dict[str, BinlogPosition]:
    out = {}
    for sp in plan.sources:
        with session(sp.endpoint(), "source") as conn:
            out[sp.name] = read_position(conn, sp.flavor)
    return out


def drain(plan: Plan, workdir: WorkDir, final: dict[str, BinlogPosition], timeout: float,
          say: Say) -> dict[str, Checkpoint]:
    """Until every source's sync checkpoint reached its final position, `timeout` seconds at most
    (the sources are read-only meanwhile: a sync that cannot catch up must not hang cutover)."""
    deadline = time.monotonic() + timeout
    try:
        run_sync(plan, workdir, SyncOptions(until_caught_up=True, duration=timeout))
    except WorkdirBusy:
        say("drain", "a running `migrator sync` owns the work directory: waiting for it to apply the final positions")
    while True:
        cps = {}
        for name in final:
            raw = read_json(workdir.sync_checkpoint(name))
            cps[name] = Checkpoint.model_validate(raw) if raw else None
        behind = [n for n, cp in cps.items() if cp is None or cp.position.key() < final[n].key()]
        if not behind:
            return cps  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise StateError(f"sync did not reach the final position of {', '.join(behind)} within {timeout:.0f}s; the "
                             "sources are read-only: fix sync and rerun cutover, or roll back with --rollback")
        time.sleep(0.02)  # a checkpoint file read: polled often, the sources are read-only meanwhile


def sync_running(workdir: WorkDir) -> bool:
    """Whether a `migrator sync` holds the work directory now."""
    from .engine.locks import hold

    try:
        fd = hold(workdir.writer_lock, busy=lambda _h: StateError("busy"))
    except StateError:
        return True
    os.close(fd)
    return False


def catch_up_sync(plan: Plan, workdir: WorkDir, timeout: float = 30.0) -> float:
    """Before read-only: let a running sync apply what the sources hold now (the checks before
    the window load the machine and sync falls behind meanwhile), so the drain inside the window
    is only the last moment's changes. Seconds waited (0 when no sync runs: the drain runs it)."""
    if not sync_running(workdir):
        return 0.0
    started = time.monotonic()
    heads = final_positions(plan)
    while time.monotonic() - started < timeout:
        behind = [n for n, pos in heads.items()
                  if (applied_position(workdir, n) or pos).key() < pos.key() or applied_position(workdir, n) is None]
        if not behind:
            break
        time.sleep(0.1)
    return round(time.monotonic() - started, 3)


def run_verify(plan: Plan, workdir: WorkDir) -> CutoverVerify:
    from .verify.compare import VerifyOptions, verify_plan

    # restart: never reuse chunks an earlier, interrupted verify found identical; sync has written
    # since, so only a fresh checksum of every chunk proves the target equals the read-only sources
    report = verify_plan(plan, workdir, VerifyOptions(restart=True))
    return CutoverVerify(ran=True, mode="full", identical=report.identical, tables=len(report.tables),
                         differing_rows=len(report.rows), errors=list(report.errors))


CONVERGED_KEYS = 200  # keys left to compare inside the window: the passes before read-only stop here


class WindowVerify:
    """The chunks to re-verify inside the read-only window, prepared before it starts (shapes,
    target columns, merge ranges are read while the sources are still writable)."""

    def __init__(self, plan: Plan, workdir: WorkDir, parallel: int):
        from .engine.locks import hold
        from .verify.follow import ddl_applied

        self.plan, self.wd, self.parallel = plan, workdir, parallel
        self.lock: int | None = None
        try:  # a running `verify --follow` keeps the chunk states: then results here are not recorded
            self.lock = hold(workdir.verify_lock, busy=lambda _h: StateError("busy"))
        except StateError:
            self.lock = None
        self.ddl = ddl_applied(plan, workdir)
        self.started = False
        self.fresh: set[tuple[str, int]] = set()  # units checked whole during this cutover
        self.keys_compared: list[int] = []  # keys compared in each converge pass before read-only
        self.early: tuple[int, set[Any], Callable[[], Any]] | None = None  # copy-only checks begun in the window
        try:
            self.verifier = self._open()
        except BaseException:
            if self.lock is not None:
                os.close(self.lock)
            raise

    def _open(self):
        from .verify.follow import Verifier

        return Verifier(self.plan, self.wd, parallel=self.parallel, max_source_threads_running=0,
                        record=self.lock is not None)

    def _todo(self, view=None) -> list[tuple[Any, str]]:
        """The units not clean now (copy-only ones aside: only a check inside the window proves them)."""
        return [(u, st) for u, st in self.verifier.states_now(view) if not u.always and st != "clean"]

    def _whole(self) -> list[Any]:
        """Units not clean now that the window could not re-verify by key."""
        from .sync.dirty import DirtyView
        from .verify.follow import window_keys

        view = DirtyView(self.wd, self.plan)
        last = self.verifier.states.last
        return [u for u, _ in self._todo(view)
                if u.key not in self.fresh or window_keys(u, last.get(u.key), view) is None]

    def catch_up(self, say: Say, passes: int = 3, floor: int | None = None) -> list[int]:
        """Before the window, with the sources writable (an iterative verifier, as Ghostferry's).
        First call: every chunk not clean now is checked whole (a chunk that differs while rows are
        in flight is read row by row: its differing keys are kept), so each chunk sync changed
        since its last clean check has a whole check taken during this cutover. Then, up to
        `passes` rounds: the chunks the window could not re-verify by key are checked whole again,
        and the others are compared by the keys sync changed since their check (converge), while
        that shrinks. The window then compares only the keys changed since the last round. A set
        of at most `floor` chunks (default 2 x parallel) is left to the window, checked whole.
        Later calls (floor 0) run one round. Results are recorded unless a `verify --follow` runs
        (it keeps the chunk states). Returns the chunks checked whole in each pass (the keys
        compared in each round are in `keys_compared`)."""
        counts: list[int] = []
        if not self.started:
            self.started = True
            todo = [u for u, _ in self._todo()]
            if len(todo) <= (2 * self.parallel if floor is None else floor):
                return counts
            say("verify before read-only", f"checking {len(todo)} chunk(s) not clean now, before the sources are made read-only")
            self._check_whole(todo)
            counts.append(len(todo))
        keys_before: int | None = None
        for _ in range(passes):
            whole = self._whole()
            if whole:
                say("verify before read-only", f"checking {len(whole)} chunk(s) that cannot be re-verified by key, before the sources are made "
                    "read-only")
                self._check_whole(whole)
                counts.append(len(whole))
            n = self.converge()
            self.keys_compared.append(n)
            if n <= CONVERGED_KEYS or keys_before is not None and n >= keys_before:
                break
            keys_before = n
        return counts

    def _check_whole(self, units: list[Any]) -> None:
        """Whole checks; only the units that got a result count as checked during this cutover."""
        done, _ = self.verifier.check(units)
        self.fresh.update(u.key for u, _ in done)

    def converge(self) -> int:
        """One pass, sources writable: every unit checked during this cutover and changed since is
        compared by the keys sync changed since its check (and those that differed then). Returns
        the number of keys compared."""
        from .sync.dirty import DirtyView
        from .verify.follow import window_keys

        v = self.verifier
        applied = v.applied()  # before the dirty keys are read: every change up to it is among them
        view = DirtyView(self.wd, self.plan)
        by_key = []
        for u, _ in self._todo(view):
            keys = window_keys(u, v.states.last.get(u.key), view) if u.key in self.fresh else None
            if keys:
                by_key.append((u, keys))
        if by_key:
            v.check_keys(by_key, applied, live=True)()
        return sum(len(k) for _, k in by_key)

    def start_copy_only(self) -> None:
        """Sources read-only: check the copy-only chunks now, beside the drain (sync writes none of
        their rows, so their final state is already there on both sides)."""
        units = [u for u in self.verifier.units if u.always]
        self.early = (self.ddl, {u.key for u in units}, self.verifier.start(units, static=True)) if units else None

    def run(self, say: Say, final: dict[str, Any] | None = None) -> CutoverVerify:
        """Inside the window (sources read-only at `final`, sync drained): re-verify every unit not
        clean now: by key where its last check was taken during this cutover and sync's dirty keys
        since are known, else whole."""
        from .sync.dirty import DirtyView
        from .verify.follow import ddl_applied, window_keys

        t0 = time.monotonic()
        early: tuple[list[Any], list[str]] = ([], [])
        early_keys: set[Any] = set()
        if self.early is not None:
            early, early_keys = self.early[2](), self.early[1]
        if ddl_applied(self.plan, self.wd) != self.ddl:  # the drain replayed DDL: read the shapes again
            self.verifier.close()
            self.verifier = self._open()
            self.fresh.clear()
            early, early_keys = ([], []), set()  # the copy-only chunks are checked again below
        v = self.verifier
        view = DirtyView(self.wd, self.plan)
        states = v.states_now(view)
        todo = [u for u, st in states if u.always or st != "clean"]
        by_key = []
        for u in todo:
            keys = window_keys(u, v.states.last.get(u.key), view) if u.key in self.fresh else None
            if keys is not None:
                by_key.append((u, keys))
        keyed = {u.key for u, _ in by_key}
        whole = [u for u in todo if u.key not in keyed and u.key not in early_keys]
        rows_by_key = sum(len(k) for _, k in by_key)
        say("verify", f"re-verifying {len(todo)} of {len(states)} chunk(s) ({len(by_key)} by the {rows_by_key} key(s) changed "
            f"since their check, {len(whole) + len(early[0]) + len(early[1])} whole): the others were verified clean "
            "and sync changed nothing in them since")
        applied = v.applied()
        valid = {s: min(p.key(), applied[s]) if applied.get(s) else p.key() for s, p in (final or {}).items()}
        t1 = time.monotonic()
        wait_keys = v.check_keys(by_key, valid) if by_key else (lambda: ([], []))
        done, errors = v.check(whole, static=True)
        t2 = time.monotonic()
        done_keys, key_errors = wait_keys()
        t3 = time.monotonic()
        done, errors = early[0] + done + done_keys, early[1] + errors + key_errors
        fresh = {u.key for u, _ in done}
        differing = [u.label() for u, r in done if not r["same"]]
        reasons: dict[str, int] = {}
        chunks = []
        for u, st in states:
            rec = v.states.last.get(u.key) or {}
            again = u.key in fresh
            why = ("not synced" if u.always else st) if again else "kept clean"
            reasons[why] = reasons.get(why, 0) + 1
            chunks.append(ChunkDetail(
                chunk=u.label(), state_before="not synced" if u.always else st,
                reverified_in_window=("by key" if u.key in keyed else "whole") if again else False,
                identical=rec.get("same") if again else st == "clean",
                last_clean_at=_iso(rec.get("clean_at")), clean_valid_at=rec.get("clean_valid")))
        errors = errors + v.errors
        return CutoverVerify(
            ran=True, mode="dirty chunks", identical=not differing and not errors,
            chunks=len(states), reverified=len(todo), reverified_by_key=len(by_key),
            reverified_whole=len(todo) - len(by_key), rows_compared_by_key=rows_by_key,
            kept_clean=len(states) - len(todo),
            seconds=VerifySeconds(prepare=round(t1 - t0, 3), whole=round(t2 - t1, 3),
                                  keys_after_whole=round(t3 - t2, 3)),
            reasons=reasons, differing_chunks=differing, errors=errors,
            recorded=self.lock is not None, chunk_detail=chunks,
            note=("every chunk not clean when the cutover started was checksummed whole during it (before "
                         "read-only, or inside the window); inside the window a chunk checked whole before it is "
                         "compared by the keys sync changed since that check and the keys that differed in it. A "
                         "chunk kept clean was checksummed equal at the position given and sync changed nothing in "
                         "it since; a change made on the target behind sync's back after a chunk's last whole check, "
                         "in rows sync did not change since, is found by `verify --follow --refresh` or "
                  "`cutover --full-verify`, not here"))

    def close(self) -> None:
        self.verifier.close()
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None


def _iso(t: float | None) -> str | None:
    if not t:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def cutover(plan: Plan, workdir: WorkDir, *, max_lag: float = 30.0, verify: bool = True, full_verify: bool = False,
            drain_timeout: float = 600.0, parallel: int = 8, progress: Progress | None = None) -> CutoverReport:
    """progress: a sink (migrator.progress) given a CutoverStep for each step as it begins."""
    sink = as_sink(progress)

    def say(step: CutoverStepName, message: str) -> None:
        sink.emit(CutoverStep(step=step, message=message))

    started = time.time()
    report = CutoverReport(started_at=utc_now(), sources={}, ok=False)
    status = check_lag(plan, workdir, max_lag)
    report.lag_before = {s.source: s.lag_seconds for s in status}
    window = WindowVerify(plan, workdir, parallel) if verify and not full_verify else None
    try:
        if window is not None:
            report.checked_before_read_only = window.catch_up(say)
        report.sync_catch_up_seconds = catch_up_sync(plan, workdir)
        if window is not None and report.checked_before_read_only:
            # what changed while sync caught up, checked once more: the window holds only the last moment's
            report.checked_before_read_only = report.checked_before_read_only + window.catch_up(say, passes=1,
                                                                                                floor=0)
        if window is not None:
            report.keys_compared_before_read_only = window.keys_compared
        return _cutover(plan, workdir, report, started, verify, window, drain_timeout, say)
    finally:
        if window is not None:
            window.close()


def _cutover(plan: Plan, workdir: WorkDir, report: CutoverReport, started: float, verify: bool,
             window: WindowVerify | None, drain_timeout: float, say: Say) -> CutoverReport:
    say("read-only", "sources are caught up; making them read-only")
    path = workdir.cutover_report
    previous = CutoverReport.load(path)  # an earlier cutover's, whose sources may still be read-only
    earlier = previous.read_only_kept() if previous is not None else {}
    # downtime starts as the first source is asked: writes stall while read_only waits for running
    # writes, and the first sources refuse writes while the later ones are still being set
    try:
        # recorded before any source changes: a cutover killed between a SET GLOBAL read_only and
        # the report would otherwise leave a rerun taking ON as the value rollback restores
        intended = {**read_only_values(plan), **earlier}
        report.model_copy(update={"read_only_at": utc_now(), "read_only_before": intended, "next_step": (
            "cutover making the sources read-only, or killed: rerun `migrator cutover PLAN`, or roll back with "
            "--rollback")}).save(path)
        read_only_at, read_only_at_text = time.time(), utc_now()
        before = set_read_only(plan, True)
    except SourceError as exc:
        report.error = str(exc)
        if earlier and previous is not None:  # an earlier cutover's sources are still read-only: keep what rollback restores
            report.read_only_at = previous.read_only_at
            report.read_only_before = earlier
        report.finished_at = utc_now()
        report.next_step = f"cutover NOT started: {exc}"
        report.save(path)
        raise
    marks = {"read_only": time.time()}
    report.read_only_at = read_only_at_text
    # a rerun after a failed cutover finds the sources read-only by our own hand: rollback must
    # restore the values from before the first cutover, not ON
    report.read_only_before = {**before, **earlier}
    # durable before anything else happens: a cutover killed from here on leaves what --rollback and
    # a rerun need (the values before read-only), not a report of an earlier run or none
    report.model_copy(update={"next_step": (
        "cutover in progress, or killed: rerun `migrator cutover PLAN`, or roll back with --rollback")}).save(path)
    try:
        final = final_positions(plan)
        wake(workdir.sync_wake)  # a running sync napping between polls reads the last changes now
        if verify and window is not None:
            window.start_copy_only()  # beside the drain: sync writes none of their rows
        say("drain", "sources read-only; draining sync to "
            + ", ".join(f"{n} {p.file}:{p.pos}" for n, p in final.items()))
        cps = drain(plan, workdir, final, drain_timeout, say)
        marks["drain"] = time.time()
        report.drained_at = utc_now()
        report.sources = {name: SourcePositions(final_position=pos, applied_position=cps[name].position)
                          for name, pos in final.items()}
        if not verify:
            report.verify = CutoverVerify(ran=False, identical=None, note="skipped (--no-verify)")
        elif window is not None:
            report.verify = window.run(say, final)
        else:
            say("verify", "verifying every table (chunk checksums, --full-verify)")
            report.verify = run_verify(plan, workdir)
    except (MigratorError, pymysql.err.MySQLError, RuntimeError) as exc:
        # Sources are read-only by now: whatever failed, write the report and say how to go back.
        report.error = str(exc) if isinstance(exc, MigratorError) else f"{type(exc).__name__}: {exc}"
        if report.verify is None:
            report.verify = CutoverVerify(ran=False, identical=None)
    _finish(report, verify, started, read_only_at, marks)
    report.save(path)
    return report


def _finish(report: CutoverReport, verify: bool, started: float, read_only_at: float,
            marks: dict[str, float]) -> None:
    """The report's end: times, the downtime and its parts, ok, and the next step to take."""
    finished = time.time()
    report.finished_at = utc_now()
    report.write_downtime_seconds = round(finished - read_only_at, 3)
    drained = marks.get("drain", finished)
    report.downtime_parts = DowntimeParts(read_only_seconds=round(marks["read_only"] - read_only_at, 3),
                                          drain_seconds=round(drained - marks["read_only"], 3),
                                          verify_seconds=round(finished - drained, 3))
    report.total_seconds = round(finished - started, 3)
    v = report.verify or CutoverVerify()
    report.ok = report.error is None and (v.identical is True or (not verify and not v.ran))
    report.notes = [("on MariaDB, accounts with SUPER or READ_ONLY ADMIN can still write while read_only=ON: "
                     "make sure applications do not use them")]
    if report.ok:
        report.next_step = ("cutover done: point the applications at the target now; the sources stay read-only "
                            "(`migrator cutover PLAN --rollback` makes them writable again)")
        return
    why = report.error or (
        f"verify found differences in {', '.join(v.differing_chunks[:10])} (list the rows: "
        "`migrator verify PLAN --tables TABLE`)" if v.differing_chunks
        else "verify errors: " + "; ".join(v.errors[:3]) if v.errors
        else "verify found differences (see the verify report)")
    report.next_step = (f"cutover NOT complete: {why}. The sources are still read-only. Fix and rerun "
                        "`migrator cutover PLAN`, or roll back: `migrator cutover PLAN --rollback` (sources "
                        "writable again; the target is not used)")


def dry_run(plan: Plan, workdir: WorkDir, *, max_lag: float = 30.0, parallel: int = 8) -> CutoverDryRun:
    """What `cutover` would check and do now, and the expected write downtime; changes nothing
    (no read_only, no report, no chunk state written)."""
    from .verify.follow import Verifier

    status = sync_status(workdir, plan, live=True)
    lag = {s.source: s.lag_seconds if s.started else None for s in status}
    refusals = []
    for s in status:
        if not s.started:
            refusals.append(f"source {s.source}: sync never ran")
        elif s.unreachable is not None:
            refusals.append(f"source {s.source}: {s.state}")
        elif s.lag_seconds > max_lag:
            refusals.append(f"source {s.source} is {s.lag_seconds:.0f}s behind (limit {max_lag:.0f}s)")
    v = Verifier(plan, workdir, parallel=parallel, record=False)
    try:
        states = v.states_now()
        secs = sorted(r.get("secs", 0.0) for r in v.states.last.values() if r.get("secs"))
    finally:
        v.close()
    counts: dict[str, int] = {}
    for u, st in states:
        key = "not synced" if u.always and st == "clean" else st
        counts[key] = counts.get(key, 0) + 1
    todo = [u for u, st in states if u.always or st != "clean"]
    per_chunk = secs[len(secs) // 2] if secs else 0.05  # median check time so far
    before = len(todo) > 2 * max(1, parallel)  # more than that: checked whole while the sources are writable
    # when checked before, the window compares by key what changed since, and checks the copy-only chunks whole
    verify_s = (per_chunk * sum(u.always for u in todo) / max(1, parallel) + 0.1 if before
                else per_chunk * len(todo) / max(1, parallel))
    expected = ExpectedDowntime(read_only_seconds=round(0.02 * len(plan.sources), 3),
                                drain_seconds=round(max([x or 0.0 for x in lag.values()] or [0.0]) + 0.5, 3),
                                verify_seconds=round(verify_s, 3))
    expected.total_seconds = round(expected.read_only_seconds + expected.drain_seconds + expected.verify_seconds, 3)
    steps = [f"check lag of {len(plan.sources)} source(s) (refuse above {max_lag:.0f}s)",
             (f"check the {len(todo)} chunk(s) not clean now whole, then compare by key the rows sync changes "
              "meanwhile, until few are left (sources still writable)" if before
              else "prepare the chunks to re-verify (sources still writable)"),
             f"set read_only=ON on {', '.join(sp.name for sp in plan.sources)}",
             "read final positions; drain sync to them",
             ("re-verify the chunks changed since by key, the copy-only ones whole" if before else
              f"re-verify {len(todo)} of {len(states)} chunk(s) (never clean, dirty, differing, not synced)"),
             "write the cutover report"]
    return CutoverDryRun(lag_seconds=lag, would_refuse=refusals, chunks=len(states), chunk_states=counts,
                         reverify=[u.label() for u in todo], steps=steps, expected_downtime=expected)


def rollback(plan: Plan, workdir: WorkDir) -> list[str]:
    """Put every source's read_only back to its value before cutover (writable when unknown) and
    note it in the cutover report."""
    report = CutoverReport.load(workdir.cutover_report) or CutoverReport()
    previous = report.read_only_kept()
    set_read_only(plan, False, previous)
    report.rolled_back_at = utc_now()
    report.save(workdir.cutover_report)
    return [f"source {sp.name}: read-only again, as it was before cutover (read_only=ON)"
            if sp.name in previous and previous[sp.name].read_only else
            f"source {sp.name}: writable again (read_only=OFF)" for sp in plan.sources] + [
        "rollback done: applications may write to the sources again; run `migrator sync` before a new cutover"]
