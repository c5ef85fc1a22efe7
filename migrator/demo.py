"""`migrator demo`: the e-wallet example fleet migrated on the local sandbox.

Runs the stages that exist so far, in order, and says plainly which ran and which are not built.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.table import Table

from .db import scalar, session
from .endpoint import parse_url
from .sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_SOURCES = 4
DEMO_ACCOUNTS = 2000


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / name / "generate.py"
    spec = importlib.util.spec_from_file_location(f"migrator_example_{name}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo(directory: Path, *, console: Console, keep: bool = True) -> None:
    ewallet = load_example("ewallet")
    sb = Sandbox(directory)
    t0 = time.monotonic()
    with console.status("starting sandbox (4 MariaDB sources, 1 seekdb target)…"):
        info, started = sb.up(DEMO_SOURCES)
    console.print(f"[bold]1. sandbox[/] {'started' if started else 'reused'} in {time.monotonic() - t0:.1f}s: "
                  f"{len(info.sources)} MariaDB sources, target {info.target.url if info.target else '-'}")
    with console.status("generating the e-wallet fleet (8 shards)…"):
        placement = ewallet.generate([("127.0.0.1", s.port) for s in info.sources], DEMO_ACCOUNTS)
    table = Table("shard", "instance", "accounts", "sum(balance)", title="2. e-wallet fleet on the sources")
    total = 0
    for db, where in placement.items():
        ep = parse_url(f"mysql://root@{where}", "source")
        with session(ep, "source", database=db) as conn:
            n = scalar(conn, "SELECT COUNT(*) FROM account")
            s = scalar(conn, "SELECT SUM(balance) FROM account")
        total += s
        table.add_row(db, where, str(n), str(s))
    console.print(table)
    console.print(f"sum of balances over all shards: [bold]{total}[/]")
    console.print("[yellow]not built yet:[/] plan, schema, copy, sync, verify, cutover: the demo stops here.")
    if not keep:
        sb.down()
