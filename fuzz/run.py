"""One fuzz round, end to end, against real servers:

1. random tables (schema_gen) created and filled on the source, in a database of this round;
2. `migrator plan` (so the real rewrites apply: latin1 -> utf8mb4), routed to a target database
   no one else uses;
3. the workload starts; `migrator copy` runs meanwhile and is killed -9 (its process group) at
   random instants, then resumed until it completes;
4. DDL is allowed in the workload from then on; `migrator sync` runs while the workload goes on
   and is killed -9 at random instants and restarted;
5. once the workload stopped: `migrator sync --until-caught-up` (bounded: not returning is a
   finding, issue 13 #3), then the oracle compares every row on both sides.

Kill instants come from the seed; whether each kill landed while the command was running is
timing and is recorded (RoundResult.kills)."""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from migrator.db import quote_ident
from migrator.endpoint import Endpoint

from . import corpus
from .oracle import Comparison, Difference, compare, raw_connect
from .procs import MigratorProc
from .schema_gen import TableSpec, fk_round, gen_tables
from .workload import Workload, WorkloadConfig, WorkloadStats, initial_rows


@dataclass
class RoundConfig:
    seed: int
    tables: int = 4
    rows: int = 200  # initial rows per table
    transactions: int = 200
    big_rows: int = 2000
    big_every: int = 60
    kills: bool = True
    copy_kills: int = 2
    sync_kills: int = 3
    sync_kill_after: tuple[float, float] = (1.0, 4.0)  # seconds after start (process start-up is ~1 s)
    copy_kill_after: tuple[float, float] = (0.5, 3.0)
    chunk_rows: int = 40
    batch_rows: int = 500
    catchup_timeout: float = 90.0
    pace: float = 0.01
    ddl: bool = True
    xa: bool = True
    flush: bool = True
    keep: bool = False
    exclude: tuple[str, ...] = ()  # value families left out (corpus.FAMILIES)
    fk: bool | None = None  # foreign-key graph: True always, False never, None drawn from the seed (fk_round)

    def foreign_keys(self) -> bool:
        return fk_round(self.seed) if self.fk is None else self.fk

    def repro(self) -> str:
        """The command line that replays this round."""
        args = [f"--seed {self.seed}", f"--transactions {self.transactions}", f"--tables {self.tables}",
                f"--rows {self.rows}", f"--big-rows {self.big_rows}", f"--big-every {self.big_every}"]
        if not self.kills:
            args.append("--no-kill")
        if self.exclude:
            args.append("--exclude " + ",".join(self.exclude))
        if self.fk is not None:
            args.append("--fk" if self.fk else "--no-fk")
        for flag in ("ddl", "xa", "flush"):
            if not getattr(self, flag):
                args.append(f"--no-{flag}")
        return "python -m fuzz.soak " + " ".join(args)


@dataclass
class Kill:
    stage: str
    after: float  # seconds after the command started
    landed: bool  # still running when killed
    note: str = ""  # e.g. the big transaction it followed


@dataclass
class RoundResult:
    config: RoundConfig
    stats: WorkloadStats | None = None
    kills: list[Kill] = field(default_factory=list)
    rotations: int = 0
    comparison: Comparison = field(default_factory=Comparison)
    findings: list[str] = field(default_factory=list)  # failures other than row differences
    seconds: float = 0.0
    workdir: Path | None = None
    tables: list[str] = field(default_factory=list)
    latin1_text_keys: set[str] = field(default_factory=set)  # tables whose key has latin1 text
    binary_keys: set[str] = field(default_factory=set)  # tables whose key has a BINARY(n) column

    @property
    def differences(self) -> list[Difference]:
        return self.comparison.differences

    @property
    def failed(self) -> bool:
        return bool(self.differences or self.findings)

    def line(self) -> str:
        st = self.stats
        landed = sum(k.landed for k in self.kills)
        return (f"seed {self.config.seed}{' (FK graph)' if self.config.foreign_keys() else ''}: transactions {st.transactions if st else 0}, kills {landed}/{len(self.kills)}, "
                f"rotations {self.rotations}, rows compared {self.comparison.rows}, differences {len(self.differences)}"
                + (f", findings {len(self.findings)}" if self.findings else "") + f" ({self.seconds:.0f}s)")

    def details(self, limit: int = 25) -> str:
        out = [f"  {t}" for t in self.tables]
        out += [f"  finding: {f}" for f in self.findings]
        if self.differences:
            out.append("  differences (" + ", ".join(sorted(shape_tags(self))) + "):")
            out += ["    " + line for line in self.comparison.report(limit).splitlines()]
        if self.stats:
            out.append(f"  workload: {self.stats.summary()}")
            if self.stats.unexpected:
                out.append(f"  workload statement errors: {self.stats.unexpected[:3]}")
        if self.kills:
            out.append("  kills: " + ", ".join(f"{k.stage}@{k.after:.2f}s{'' if k.landed else ' (had exited)'}"
                                               f"{' ' + k.note if k.note else ''}" for k in self.kills))
        if self.workdir:
            out.append(f"  work directory: {self.workdir}")
        return "\n".join(out)

    def to_json(self) -> dict:
        return {"seed": self.config.seed, "config": asdict(self.config), "kills": [asdict(k) for k in self.kills],
                "rotations": self.rotations, "rows": self.comparison.rows,
                "differences": [str(d) for d in self.differences], "findings": self.findings,
                "transactions": self.stats.transactions if self.stats else 0, "seconds": round(self.seconds, 1),
                "workload_errors": self.stats.unexpected if self.stats else []}


ZERO_PART = re.compile(r"'(\d{4}-00-\d\d|\d{4}-\d\d-00)")


def shape_tags(result: RoundResult) -> set[str]:
    """Which of issue 13's shapes the differences look like (a hint for the reader, not a proof)."""
    tags = set()
    for d in result.differences:
        if d.table in result.binary_keys and any(isinstance(k, bytes) and k.endswith(b"\x00") for k in d.key):
            tags.add("#1 BINARY key ending in 0x00")
        if d.what == "changed" and ZERO_PART.search(d.detail.split(" target ")[0]):
            tags.add("#2 zero-part date")
        if any(isinstance(k, str) and ZERO_PART.match("'" + k) for k in d.key):
            tags.add("#2 zero-part date in a key")
        if d.what == "missing on target":
            tags.add("rows missing")
            if d.table in result.latin1_text_keys and "accents" not in result.config.exclude:
                tags.add("latin1 text key: distinct on the source, equal under the target's utf8mb4_general_ci")
        if d.what == "missing on target" and any("SAVEPOINT" in k.note for k in result.kills):
            tags.add("#4? a sync kill -9 landed right after a big transaction with a SAVEPOINT")
        if d.what == "extra on target":
            tags.add("rows extra")
        if d.what == "shape":
            tags.add("table shape")
    return tags or {"other"}


class Round:
    def __init__(self, cfg: RoundConfig, source: Endpoint, target: Endpoint, base: Path, say=print):
        self.cfg, self.source, self.target, self.say = cfg, source, target, say
        self.db = f"fz{cfg.seed}"
        self.tdb = f"fz_{cfg.seed}_{uuid.uuid4().hex[:6]}"
        self.dir = Path(base) / f"round-{cfg.seed}-{uuid.uuid4().hex[:4]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.plan = self.dir / "plan.yaml"
        self.work = self.dir / "work"
        self.log = self.dir / "migrator.log"
        self.kill_rnd = random.Random(f"{cfg.seed}:kills")
        self.result = RoundResult(cfg, workdir=self.dir)
        self.tables: list[TableSpec] = []
        self.workload: Workload | None = None
        self.kill_note = ""
        self.procs: list[MigratorProc] = []
        self.stop = threading.Event()  # stops the workload

    # ------------------------------------------------------------ connections
    def src(self, autocommit: bool = True):
        return raw_connect(self.source.host, self.source.port, self.source.user, self._pw(self.source),
                           database=None) if autocommit else self._app_conn()

    def _app_conn(self):
        import pymysql

        conn = pymysql.connect(host=self.source.host, port=self.source.port, user=self.source.user,
                               password=self._pw(self.source), charset="utf8mb4", autocommit=False)
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        return conn

    def app_connect(self, autocommit: bool = False):
        conn = self._app_conn()
        conn.autocommit(autocommit)
        return conn

    def tgt(self):
        return raw_connect(self.target.host, self.target.port, self.target.user, self._pw(self.target))

    @staticmethod
    def _pw(ep: Endpoint) -> str:
        return ep.password.get_secret_value() if ep.password else ""

    def migrator(self, *args: str) -> MigratorProc:
        p = MigratorProc(list(args), self.log, self.dir)
        self.procs.append(p)
        return p

    # ------------------------------------------------------------ stages
    def run(self) -> RoundResult:
        t0 = time.monotonic()
        corpus.EXCLUDED.clear()
        corpus.EXCLUDED.update(self.cfg.exclude)
        try:
            self._run()
        except Exception:  # noqa: BLE001 - a round that cannot finish is a failed round, with its reason
            self.result.findings.append(f"round stopped by an error:\n{traceback.format_exc(limit=8)}")
        finally:
            self.stop.set()
            for p in self.procs:  # nothing of this round keeps running
                if p.running():
                    p.kill9()
            self.result.seconds = time.monotonic() - t0
            if not self.cfg.keep:
                self.cleanup(keep_files=self.result.failed)
        return self.result

    def _run(self) -> None:
        cfg = self.cfg
        self.create_tables()
        files_before = self.binlog_count()
        if not self.make_plan():
            return
        ddl_allowed = threading.Event()
        stop = self.stop
        workload = Workload(self.app_connect, self.db, self.tables, cfg.seed,
                            WorkloadConfig(transactions=cfg.transactions, big_rows=cfg.big_rows,
                                           big_every=cfg.big_every, ddl=cfg.ddl, xa=cfg.xa, flush=cfg.flush,
                                           pace=cfg.pace),
                            ddl_allowed=ddl_allowed, stop=stop)
        self.result.stats = workload.stats
        self.workload = workload
        thread = workload.thread()
        thread.start()
        finished = False
        try:
            if not self.copy_stage():
                return
            ddl_allowed.set()
            self.sync_stage(thread, workload.big_committed)
            finished = not self.result.findings
        finally:
            if not finished:  # a stage failed: the workload stops where it is
                stop.set()
            thread.join()
        if workload.error is not None:
            self.result.findings.append(f"workload failed: {workload.error!r}")
            return
        if not self.catch_up():
            return
        self.result.rotations = self.binlog_count() - files_before
        with self.src() as s, self.tgt() as t:
            self.result.comparison = compare(s, t, self.db, self.tdb, self.tables)

    def create_tables(self) -> None:
        self.tables = gen_tables(self.cfg.seed, self.cfg.tables, self.cfg.foreign_keys())
        self.result.tables = [t.describe() for t in self.tables]
        self.result.latin1_text_keys = {t.name for t in self.tables for c in t.key_columns()
                                        if c.kind.textual and c.effective_charset(t.charset) == "latin1"}
        self.result.binary_keys = {t.name for t in self.tables for c in t.key_columns() if c.kind.sql.startswith("BINARY")}
        conn = self.app_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(self.db)}")
                cur.execute(f"CREATE DATABASE {quote_ident(self.db)}")
                for t in self.tables:
                    cur.execute(t.create_sql(self.db))
            for t in self.tables:
                initial_rows(conn, self.db, t, self.cfg.rows, self.cfg.seed, self.tables)
        finally:
            conn.close()

    def make_plan(self) -> bool:
        src_url = f"mysql://{self.source.user}@{self.source.host}:{self.source.port}?name=fz"
        p = self.migrator("plan", "--source", src_url, "--target", self.target.safe_url(),
                          "--include", f"{self.db}.*", "--route", f"{self.db}.*={self.tdb}.*",
                          "--chunk-rows", str(self.cfg.chunk_rows), "--out", str(self.plan),
                          # latin1 keys with accents collide under utf8mb4_general_ci (plan blocks them):
                          # the fuzzer moves them with a binary key collation, as a DBA would
                          *([] if "accents" in self.cfg.exclude else ["--key-collation", "bin"]))
        rc = p.wait(300)
        if rc != 0:
            self.result.findings.append(f"migrator plan exited {rc}:\n{p.tail(30)}")
            return False
        return True

    def copy_stage(self) -> bool:
        base = ["copy", str(self.plan), "--workdir", str(self.work), "--parallel", "2", "--per-source", "2"]
        if self.cfg.kills:
            for _ in range(self.cfg.copy_kills):
                p = self.migrator(*base)
                delay = self.kill_rnd.uniform(*self.cfg.copy_kill_after)
                rc = p.wait(delay)
                if rc is None:
                    self.result.kills.append(Kill("copy", p.elapsed(), p.kill9()))
                    self.check_sync_refuses()
                    continue
                self.result.kills.append(Kill("copy", delay, False))
                if rc != 0:
                    self.result.findings.append(f"migrator copy exited {rc}:\n{p.tail()}")
                    return False
                break
        p = self.migrator(*base)
        rc = p.wait(600)
        if rc != 0:
            if rc is None:
                p.kill9()
            self.result.findings.append(f"migrator copy exited {rc} (resumed after the kills):\n{p.tail()}")
            return False
        return True

    def check_sync_refuses(self) -> None:
        """The one race (DESIGN): while copy has unfinished tables, sync must refuse to apply."""
        if self.copy_complete():
            return
        p = self.migrator(*self.sync_args("--until-caught-up"))
        rc = p.wait(120)
        if rc is None:
            p.kill9()
        if rc != 3 or "copy has not finished" not in p.tail(5):
            self.result.findings.append(f"sync did not refuse while copy was unfinished (exit {rc}):\n{p.tail()}")

    def copy_complete(self) -> bool:
        from migrator.copy.state import CopyState
        from migrator.plan.model import load_plan
        from migrator.workdir import WorkDir

        plan = load_plan(self.plan)
        state = CopyState.load(WorkDir(self.work), plan)
        return all(state.table_complete(t.id) for t in plan.tables if t.mode == "copy+sync")

    def sync_args(self, *extra: str) -> list[str]:
        return ["sync", str(self.plan), "--workdir", str(self.work), "--batch-rows", str(self.cfg.batch_rows), *extra]

    def wait_for_kill_instant(self, p: MigratorProc, delay: float, big_committed: threading.Event,
                              what: Callable[[], str] = str) -> int | None:
        """Wait `delay` seconds, or less: a big transaction committed by the workload meanwhile
        moves the kill to shortly after it (so it lands while sync applies that transaction).
        Returns the exit code when the process ended by itself, else None."""
        deadline = time.monotonic() + delay
        big_committed.clear()
        while time.monotonic() < deadline:
            rc = p.wait(0.05)
            if rc is not None:
                return rc
            if big_committed.is_set() and p.elapsed() > 1.0:
                self.kill_note = f"after big {what()}"
                time.sleep(self.kill_rnd.uniform(0.05, 0.8))
                break
        return p.wait(0)

    def sync_stage(self, workload: threading.Thread, big_committed: threading.Event) -> None:
        if self.cfg.kills:
            for i in range(self.cfg.sync_kills):
                if i >= 2 and not workload.is_alive():
                    break
                p = self.migrator(*self.sync_args())
                delay = self.kill_rnd.uniform(*self.cfg.sync_kill_after)
                self.kill_note = ""
                rc = self.wait_for_kill_instant(p, delay, big_committed, lambda: self.workload.last_big if self.workload else "")
                if rc is None:
                    self.result.kills.append(Kill("sync", p.elapsed(), p.kill9(), self.kill_note))
                else:
                    self.result.kills.append(Kill("sync", delay, False))
                    self.result.findings.append(f"migrator sync stopped by itself (exit {rc}) while the workload ran:\n"
                                                f"{p.tail()}")
                    return
        p = self.migrator(*self.sync_args())
        while workload.is_alive():
            workload.join(0.5)
            if not p.running():
                break
        rc = p.terminate() if p.running() else p.wait(0)
        if rc not in (0, -15):  # -15: stopped while still starting, before it handles SIGTERM
            self.result.findings.append(f"migrator sync exited {rc} while the workload ran:\n{p.tail()}")

    def catch_up(self) -> bool:
        """`sync --until-caught-up` once the source is idle; not returning is a finding (then one
        unrelated write moves the source's position and it is tried once more, so rows can still
        be compared)."""
        for attempt in (1, 2):
            p = self.migrator(*self.sync_args("--until-caught-up"))
            rc = self.wait_while_working(p)
            if rc == 0:
                return True
            if rc is None:
                p.kill9()
                self.result.findings.append(
                    f"sync --until-caught-up did not return within {p.elapsed():.0f}s on an idle source "
                    f"(attempt {attempt}; checkpoint {self.checkpoint()}, source head {self.head()}) [issue 13 #3 shape]")
                self.nudge()
                continue
            self.result.findings.append(f"sync --until-caught-up exited {rc}:\n{p.tail()}")
            return False
        return False

    def wait_while_working(self, p: MigratorProc) -> int | None:
        """Wait catchup_timeout seconds plus one second per MB of binlog between the checkpoint and
        the source's head (a transaction of hundreds of MB takes minutes to apply). None: it did
        not return in that time."""
        return p.wait(self.cfg.catchup_timeout + self.bytes_behind() / 1e6)

    def bytes_behind(self) -> int:
        try:
            pos = json.loads((self.work / "sync" / "fz.json").read_text())["position"]
            file, offset = pos["file"], int(pos["pos"])
        except (OSError, ValueError, KeyError):
            file, offset = "", 0
        with self.src() as s, s.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            logs = [(str(name), int(size)) for name, size, *_ in cur.fetchall()]
        return sum(size - (offset if name == file else 0) for name, size in logs if name >= file)

    def checkpoint(self) -> str:
        try:
            cp = json.loads((self.work / "sync" / "fz.json").read_text())
            pos = cp.get("position", {})
            return f"{pos.get('file')}:{pos.get('pos')} gtid {pos.get('gtid')}"
        except (OSError, ValueError):
            return "none"

    def head(self) -> str:
        with self.src() as s, s.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
            cur.execute("SELECT @@gtid_binlog_pos")
            return f"{row[0]}:{row[1]} gtid {cur.fetchone()[0]}" if row else "?"

    def nudge(self) -> None:
        with self.src() as s, s.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS fz_nudge")
            cur.execute("CREATE TABLE IF NOT EXISTS fz_nudge.n (id INT PRIMARY KEY, at DATETIME(6))")
            cur.execute("REPLACE INTO fz_nudge.n VALUES (1, NOW(6))")

    def binlog_count(self) -> int:
        with self.src() as s, s.cursor() as cur:
            cur.execute("SHOW BINARY LOGS")
            return len(cur.fetchall())

    def cleanup(self, keep_files: bool) -> None:
        for connect, db in ((self.src, self.db), (self.tgt, self.tdb)):
            try:
                with connect() as c, c.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}")
            except Exception:  # noqa: BLE001 - best effort
                pass
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.result.workdir = None


def run_round(cfg: RoundConfig, source: Endpoint, target: Endpoint, base: Path, say=print) -> RoundResult:
    return Round(cfg, source, target, base, say).run()
