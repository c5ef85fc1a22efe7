"""Draw the README's picture of `migrator status --watch` from a real run on the sandbox.

    pip install -e '.[docs]'             # matplotlib (its DejaVu Sans Mono font) and Pillow
    migrator sandbox up --sources 2
    python scripts/status_picture.py [--sandbox .migrator-sandbox] [--out docs/img/status-watch.png]

Two sources each get a small table; a copy runs (its first source paused by WORKDIR/pause for
a moment, so the view shows throttling), and the fleet view is drawn cell by cell to PNG
(scripts/terminal_png.py: Pillow, no cairo). `--svg FILE` also writes rich's own SVG export.
Everything it created is dropped at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from terminal_png import save_png

from migrator.commands.status import render_fleet
from migrator.db import connect, quote_ident
from migrator.endpoint import parse_url
from migrator.plan.build import build_plan
from migrator.plan.model import load_plan, save_plan
from migrator.sandbox import DEFAULT_DIR, Sandbox
from migrator.status import fleet_view
from migrator.workdir import WorkDir


def sql(ep, role: str, *statements: str) -> None:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sandbox", default=str(DEFAULT_DIR))
    ap.add_argument("--out", default="docs/img/status-watch.png")
    ap.add_argument("--svg", default=None, help="also write rich's SVG export here")
    ap.add_argument("--rows", type=int, default=20000)
    args = ap.parse_args()
    info = Sandbox(args.sandbox).status()
    if not info:
        sys.exit(f"no sandbox in {args.sandbox}: run `migrator sandbox up --dir {args.sandbox}` first")
    sources = [parse_url(f"{i.url}?name={i.name}", "source") for i, _ in info if i.kind == "mariadb"][:2]
    target = next(parse_url(i.url, "target") for i, _ in info if i.kind == "seekdb")
    dbs = [f"picture_wallet_{os.getpid()}_{n}" for n in range(len(sources))]  # shared servers: names of our own
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for ep, db in zip(sources, dbs):
                sql(ep, "source", f"DROP DATABASE IF EXISTS {quote_ident(db)}", f"CREATE DATABASE {quote_ident(db)}",
                    f"USE {quote_ident(db)}", "CREATE TABLE ledger (id BIGINT PRIMARY KEY, amount DECIMAL(20,2))",
                    f"INSERT INTO ledger SELECT seq, seq / 7 FROM seq_1_to_{args.rows}")
            plan = build_plan(sources, target, includes=[f"{d}.*" for d in dbs], chunk_rows=2000)
            path = Path(tmp) / "picture.yaml"
            save_plan(plan, path)
            wd = WorkDir(Path(tmp) / "work")
            proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", "copy", str(path), "--workdir",
                                     str(wd.root), "--page-rows", "200", "--parallel", "2", "--progress-interval",
                                     "0.5", "--max-source-threads-running", "0"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            view, drawn = None, None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.25)
                view = fleet_view(load_plan(path), wd, view)
                if view["running"] and view["copy"]["rows"] / max(1, view["copy"]["rows_total"]) > 0.25:
                    wd.pause_file.touch()  # show a throttling reason in the picture
                    time.sleep(2.0)
                    drawn = fleet_view(load_plan(path), wd, view)
                    wd.pause_file.unlink()
                    break
            proc.wait(timeout=300)
            if drawn is None:
                sys.exit("the copy ended before the view could be drawn: use more --rows")
            view = drawn
            out = save_png(render_fleet(view), args.out, title="migrator status --watch", width=110)
            print(f"wrote {out} ({out.stat().st_size:,} bytes)")
            if args.svg:
                console = Console(record=True, width=110, force_terminal=True, file=io.StringIO())
                console.print(render_fleet(view))
                console.save_svg(args.svg, title="migrator status --watch")
                print(f"wrote {args.svg}")
        finally:
            for ep, db in zip(sources, dbs):
                sql(ep, "source", f"DROP DATABASE IF EXISTS {quote_ident(db)}")
            sql(target, "target", *[f"DROP DATABASE IF EXISTS {quote_ident(db)}" for db in dbs])


if __name__ == "__main__":
    main()
