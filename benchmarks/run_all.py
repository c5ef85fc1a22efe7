"""Run every benchmark and write one markdown table of their figures to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/run_all.py            # full sizes (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # small sizes, a few minutes
    .venv/bin/python benchmarks/run_all.py --only copy verify --rows 500000

Runs, each as its own process, in this order: copy (copy_vs_mydumper.py: migrator copy vs
mydumper+myloader), sync (sync_throughput.py: applied changes/s vs bare binlog parsing, 1 vs 4
sources), sync-fleet (sync_idle_fleet.py: N sources syncing at once: start-up, idle CPU,
memory, catch-up), verify (verify_speed.py: chunked verify vs one checksum scan vs client-side hashing;
verify_merge.py: a shard merge without a source column vs the same rows unmerged),
plan (plan_fleet.py: planning a fleet of real instances), plan-file (plan_fleet.py --synthetic:
writing and loading a 30,000-table plan file) and fleet (fleet_scale.py: plan+copy+verify of 10..100 instances). A
benchmark whose script is missing is skipped with a line saying so; one that fails is reported
with its exit code and the rest still run. The figures are each benchmark's own result lines
(rates, ratios against mydumper/myloader and the baselines, with the bars they are held to),
collected under the machine's description (nproc, memory, CPU model). Never fails on time.

Benchmarks that need a target use --sandbox DIR (default: $MIGRATOR_TEST_SANDBOX, else a private
sandbox with 1 source + 1 seekdb started here and stopped at the end).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from migrator.sandbox import Sandbox  # noqa: E402


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]  # arguments at full size
    quick: list[str]  # arguments of --quick
    figures: list[str]  # regexes of the output lines that carry its results
    size_flags: dict[str, str] = field(default_factory=dict)  # run_all flag -> this script's flag
    wants_sandbox: bool = False  # takes --sandbox DIR
    wants_target: bool = False  # takes --target URL (used when it has no --sandbox)


BENCHMARKS = [
    Bench("copy", "copy_vs_mydumper.py", [], ["--rows", "200000", "--chunks", "8"],
          [r"^method\s+seconds", r"^(mydumper\+myloader|myloader alone|migrator copy)\S*.*\d", r"faster than mydumper", r"myloader alone \(bar",
           r"peak RSS", r"^CPU seconds spent", r"^method\s+source", r"^(mydumper|myloader)\s+[\d.]+\s"],
          size_flags={"rows": "--rows"}, wants_target=False),
    Bench("sync", "sync_throughput.py", [], ["--changes", "20000"],
          [r"source\(s\):", r"sources vs 1", r"CPU seconds with"], size_flags={"changes": "--changes"}, wants_target=True),
    Bench("sync-cpu", "sync_cpu_floor.py", [], ["--changes", "20000", "--repeat", "2"],
          [r"row changes \(", r"^\s+(read|library|decode0?|changes0?|send)\s+[\d.]+$", r"µs per change now", r"less CPU",
           r"^\s+floor"], size_flags={"changes": "--changes"}, wants_target=True),
    Bench("sync-fleet", "sync_idle_fleet.py", ["--sources", "100"], ["--sources", "10", "--idle-seconds", "10"],
          [r"sources syncing at once"], wants_target=True),
    Bench("verify", "verify_speed.py", [], ["--rows", "200000", "--chunk-rows", "20000"],
          [r"rows/s$", r"\(bar"], size_flags={"rows": "--rows"}, wants_sandbox=True),
    Bench("verify-merge", "verify_merge.py", ["--rows", "20000", "--chunk-rows", "5000"], ["--shards", "10"],
          [r"^verify (un)?merged", r"merged / unmerged"], wants_sandbox=True),
    Bench("plan", "plan_fleet.py", [], ["--instances", "5", "--tables", "10", "--rows", "200", "--parallel", "1", "4"],
          [r"^--parallel \d+: planned"], wants_sandbox=True),
    Bench("plan-file", "plan_fleet.py", ["--synthetic"], ["--synthetic", "--instances", "30", "--repeat", "2"],
          [r"^plan (write|size|load|fingerprint)"]),
    Bench("fleet", "fleet_scale.py", [], ["--sizes", "5,10", "--rows", "200"],
          [r"^\s*N\s+tables\s+chunks", r"^\s*\d+\s+\d+\s+\d+\s+\d+\s", r"instances \(\d+x\): job time"], wants_sandbox=True),
]


@dataclass
class Outcome:
    bench: Bench
    status: str  # ok | failed (rc) | skipped (reason)
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def machine() -> dict[str, str]:
    cpu = "unknown"
    mem = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": str(os.cpu_count() or "?"), "memory": mem, "cpu": cpu,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def arguments(b: Bench, args: argparse.Namespace, sandbox: Path, target_url: str | None) -> list[str]:
    out = list(b.quick if args.quick else b.full)
    for ours, theirs in b.size_flags.items():
        value = getattr(args, ours)
        if value is not None:  # an explicit size wins over --quick's
            if theirs in out:
                i = out.index(theirs)
                del out[i:i + 2]
            out += [theirs, str(value)]
    if b.wants_sandbox:
        out += ["--sandbox", str(sandbox)]
    elif b.wants_target and target_url:
        out += ["--target", target_url]
    return out


def run_one(b: Bench, argv: list[str]) -> Outcome:
    script = HERE / b.script
    if not script.exists():
        print(f"== {b.name}: skipped: {b.script} does not exist (not built yet)", flush=True)
        return Outcome(b, f"skipped: {b.script} not found")
    cmd = [sys.executable, str(script), *argv]
    print(f"== {b.name}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(f"   {line}")
        lines.append(line.rstrip("\n"))
    rc = proc.wait()
    seconds = time.monotonic() - started
    figures = [ln.strip() for ln in lines if any(re.search(p, ln) for p in b.figures)]
    if rc != 0:
        tail = [ln.strip() for ln in lines[-3:] if ln.strip()]
        return Outcome(b, f"failed (exit {rc})", seconds, figures + [f"error: {t}" for t in tail])
    return Outcome(b, "ok", seconds, figures or ["(no result lines recognised: see the run's output)"])


def markdown(outcomes: list[Outcome], info: dict[str, str], quick: bool) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# Benchmark results",
        "",
        f"Run {when} by `benchmarks/run_all.py{' --quick' if quick else ''}`"
        + (" (small sizes: figures are indicative only)" if quick else "") + ".",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']} memory, {info['os']}, Python {info['python']}.",
        "",
        "| benchmark | status | wall | result |",
        "|---|---|---|---|",
    ]
    for o in outcomes:
        wall = f"{o.seconds:.0f}s" if o.seconds else "-"
        rows = o.lines or [""]
        for i, line in enumerate(rows):
            cells = (o.bench.name, o.status, wall) if i == 0 else ("", "", "")
            text = re.sub(r"\s{2,}", " ", line).replace("|", "\\|")
            out.append(f"| {cells[0]} | {cells[1]} | {cells[2]} | {text} |")
    out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes in all)")
    ap.add_argument("--only", nargs="+", choices=[b.name for b in BENCHMARKS], help="run only these")
    ap.add_argument("--rows", type=int, help="rows for copy and verify (overrides their defaults and --quick)")
    ap.add_argument("--changes", type=int, help="row changes for sync")
    ap.add_argument("--sandbox", type=Path, default=os.environ.get("MIGRATOR_TEST_SANDBOX") or None,
                    help="sandbox directory with a target (default: a private one, started and stopped here)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="markdown file to write")
    args = ap.parse_args()

    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    own: Sandbox | None = None
    with tempfile.TemporaryDirectory(prefix="migrator-bench-") as tmp:
        sandbox = args.sandbox
        try:
            if sandbox is None and any(b.wants_sandbox or b.wants_target for b in chosen):
                own = Sandbox(Path(tmp) / "sandbox")
                print("starting a private sandbox (1 MariaDB source, 1 seekdb target)…", flush=True)
                own.up(1)
                sandbox = own.dir
            target_url = None
            if sandbox is not None:
                loaded = Sandbox(sandbox).load()
                target_url = loaded.target.url if loaded and loaded.target else None
            outcomes = [run_one(b, arguments(b, args, sandbox or Path(tmp), target_url)) for b in chosen]
        finally:
            if own is not None:
                own.down()
    text = markdown(outcomes, machine(), args.quick)
    args.out.write_text(text)
    print()
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
