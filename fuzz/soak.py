"""`python -m fuzz.soak` / `make soak`: fuzz rounds against real servers, one line per round.

    python -m fuzz.soak --minutes 30                 # new seeds each round until time is up
    python -m fuzz.soak --seed 7                     # one round, reproducibly
    python -m fuzz.soak --seed 7 --transactions 40 --tables 1 --no-kill

Starts its own MariaDB source (so FLUSH BINARY LOGS and a tiny max_binlog_size are safe) and
uses the seekdb target of the sandbox (--sandbox DIR, default $MIGRATOR_TEST_SANDBOX or
.migrator-sandbox) or --target URL, in a database of its own per round. A failing round is
shrunk (fewer transactions, tables, no kills) to the smallest configuration that still fails,
printed as the command line that reproduces it. Exit 1 when any round failed."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

from migrator.endpoint import Endpoint, parse_url
from migrator.sandbox import free_port, start_mariadb, start_seekdb, stop_pid

from .corpus import FAMILIES
from .run import RoundConfig, RoundResult, run_round, shape_tags

SOAK_DEFAULTS = dict(tables=5, rows=400, transactions=400, big_rows=100_000, big_every=100, sync_kills=8)


def start_source(base: Path, max_binlog_size: int) -> tuple[Endpoint, int]:
    """A private MariaDB 10.11 with a small max_binlog_size (rotations), default sql_mode."""
    port = free_port()
    proc = start_mariadb(base / "source", port, server_id=4242,
                         options={"max-binlog-size": str(max_binlog_size), "innodb-buffer-pool-size": "128M"})
    return parse_url(f"mysql://root@127.0.0.1:{port}?name=fz", "source"), proc.pid


def sandbox_target(directory: str | None) -> Endpoint | None:
    """The seekdb target of a running sandbox (--sandbox, $MIGRATOR_TEST_SANDBOX, .migrator-sandbox)."""
    d = Path(directory or os.environ.get("MIGRATOR_TEST_SANDBOX") or ".migrator-sandbox")
    f = d / "sandbox.yaml"
    if not f.exists():
        if directory:
            raise SystemExit(f"no sandbox at {d} (sandbox.yaml missing): run `migrator sandbox up` or pass --target URL")
        return None
    info = yaml.safe_load(f.read_text())
    return parse_url(info["target"]["url"], "target") if info.get("target") else None


def signature(r: RoundResult) -> set[str]:
    """What kind of failure a round shows: the difference shapes and the kinds of findings."""
    sig = shape_tags(r) if r.differences else set()
    for f in r.findings:
        sig.add("until-caught-up hang" if "did not return" in f else f.split(":")[0][:60])
    return sig


def shrink(failed: RoundResult, source: Endpoint, target: Endpoint, base: Path, budget: float, say) -> RoundConfig:
    """The smallest configuration that still fails the same way (greedy: kills off, fewer
    transactions, fewer tables, smaller big transactions, fewer statement kinds), within
    `budget` seconds."""
    deadline = time.monotonic() + budget
    wanted = signature(failed)

    def fails(c: RoundConfig) -> bool:
        r = run_round(c, source, target, base, say)
        same = bool(signature(r) & wanted)
        say(f"  shrink: {c.repro()} -> {'fails' if same else 'passes'} ({len(r.differences)} differences, "
            f"{len(r.findings)} findings)")
        return same

    def candidates(c: RoundConfig):
        if c.kills:
            yield dataclasses.replace(c, kills=False)
        if c.transactions > 5:
            yield dataclasses.replace(c, transactions=max(5, c.transactions // 2))
        if c.tables > 1:
            yield dataclasses.replace(c, tables=c.tables - 1)
        if c.big_rows > 500:
            yield dataclasses.replace(c, big_rows=c.big_rows // 4)
        if c.rows > 20:
            yield dataclasses.replace(c, rows=c.rows // 2)
        for flag in ("ddl", "xa", "flush"):
            if getattr(c, flag):
                yield dataclasses.replace(c, **{flag: False})
        if c.foreign_keys():  # still failing without foreign keys: they are not the cause
            yield dataclasses.replace(c, fk=False)

    best = failed.config
    progress = True
    while progress and time.monotonic() < deadline:
        progress = False
        for cand in candidates(best):
            if time.monotonic() >= deadline:
                break
            if fails(cand):
                best, progress = cand, True
                break
    return best


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m fuzz.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, help="run this seed (one round unless --minutes/--rounds)")
    ap.add_argument("--minutes", type=float, default=None, help="run rounds with new seeds for this long")
    ap.add_argument("--rounds", type=int, default=None, help="run this many rounds")
    ap.add_argument("--transactions", type=int)
    ap.add_argument("--tables", type=int)
    ap.add_argument("--rows", type=int, help="initial rows per table")
    ap.add_argument("--big-rows", type=int, help="rows of a big transaction")
    ap.add_argument("--big-every", type=int, help="about one big transaction per this many")
    ap.add_argument("--no-kill", action="store_true", help="no kill -9 of copy and sync")
    ap.add_argument("--sync-kills", type=int, help="kill -9 of sync while the workload runs (at most)")
    ap.add_argument("--no-ddl", action="store_true")
    ap.add_argument("--no-xa", action="store_true")
    ap.add_argument("--no-flush", action="store_true")
    fk = ap.add_mutually_exclusive_group()
    fk.add_argument("--fk", dest="fk", action="store_true", default=None,
                    help="foreign-key graph in every round (default: about 4 rounds in 10, drawn from the seed)")
    fk.add_argument("--no-fk", dest="fk", action="store_false", help="no foreign keys")
    ap.add_argument("--exclude", default="", help="value families to leave out: zero-dates,trailing-zeros,accents "
                                                   "(to look for bugs beneath known ones)")
    ap.add_argument("--catchup-timeout", type=float, default=120.0)
    ap.add_argument("--max-binlog-size", type=int, default=256 * 1024)
    ap.add_argument("--source", help="a MariaDB URL to use instead of starting one (it must be yours alone)")
    ap.add_argument("--target", help="target URL (default: the sandbox's)")
    ap.add_argument("--sandbox", help="sandbox directory whose target to use")
    ap.add_argument("--dir", help="where rounds keep plans, work directories and logs")
    ap.add_argument("--no-shrink", action="store_true")
    ap.add_argument("--shrink-minutes", type=float, default=15.0)
    ap.add_argument("--keep", action="store_true", help="keep databases and files of every round")
    ap.add_argument("--json", help="write the results as JSON to this file")
    return ap


def round_config(args: argparse.Namespace, seed: int) -> RoundConfig:
    """The round a command line asks for (what RoundConfig.repro() prints parses back to it)."""
    sizes = dict(SOAK_DEFAULTS)
    for k in sizes:
        if getattr(args, k) is not None:
            sizes[k] = getattr(args, k)
    return RoundConfig(seed=seed, kills=not args.no_kill, ddl=not args.no_ddl, xa=not args.no_xa,
                       flush=not args.no_flush, catchup_timeout=args.catchup_timeout, keep=args.keep,
                       pace=0.05, sync_kill_after=(2.0, 20.0), fk=args.fk, exclude=tuple(x for x in args.exclude.split(",") if x), **sizes)


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    unknown = set(x for x in args.exclude.split(",") if x) - set(FAMILIES)
    if unknown:
        ap.error(f"--exclude: unknown value families {sorted(unknown)}; known: {', '.join(FAMILIES)}")

    def say(msg: str) -> None:
        print(msg, flush=True)

    base = Path(args.dir or tempfile.mkdtemp(prefix="fuzz-"))
    base.mkdir(parents=True, exist_ok=True)
    target = parse_url(args.target, "target") if args.target else sandbox_target(args.sandbox)
    own_target = None
    if target is None:  # no sandbox: a seekdb of our own for the soak (about a minute to start)
        say("no sandbox target found: starting a seekdb for this soak")
        port = free_port()
        own_target = start_seekdb(base / "target", port).pid
        target = parse_url(f"oceanbase://root@127.0.0.1:{port}", "target")
    own_pid = None
    if args.source:
        source = parse_url(args.source + ("&" if "?" in args.source else "?") + "name=fz", "source")
    else:
        source, own_pid = start_source(base, args.max_binlog_size)
    single = args.minutes is None and args.rounds is None
    first = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    deadline = time.monotonic() + (args.minutes or 0) * 60
    results: list[RoundResult] = []
    failing: list[tuple[RoundResult, RoundConfig | None]] = []
    try:
        n = 0
        while True:
            r = run_round(round_config(args, first + n), source, target, base, say)
            results.append(r)
            say(r.line())
            if r.failed:
                say(r.details())
            n += 1
            if single or (args.rounds is not None and n >= args.rounds) or \
                    (args.minutes is not None and time.monotonic() >= deadline):
                break
        for r in results:  # the first failing round is shrunk; the others print their own command
            if r.failed:
                small = None if args.no_shrink or failing else shrink(r, source, target, base,
                                                                      args.shrink_minutes * 60, say)
                failing.append((r, small))
    finally:
        for pid in (own_pid, own_target):
            if pid:
                stop_pid(pid)
    tx = sum(r.stats.transactions for r in results if r.stats)
    kills = sum(k.landed for r in results for k in r.kills)
    diffs = sum(len(r.differences) for r in results)
    say(f"soak: {len(results)} round(s), seeds {first}..{first + len(results) - 1}, transactions {tx}, kills {kills}, "
        f"rotations {sum(r.rotations for r in results)}, rows compared {sum(r.comparison.rows for r in results)}, "
        f"differences {diffs}, failed rounds {len(failing)}")
    for r, small in failing:
        say(f"  seed {r.config.seed} failed ({len(r.differences)} differences, {len(r.findings)} findings); "
            f"smallest reproducing case: {(small or r.config).repro()}")
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_json() for r in results], indent=1, default=str))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
