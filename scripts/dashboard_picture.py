"""Draw the README's picture of examples/grafana-dashboard.json from a real run (no Grafana).

    pip install -e '.[docs]'             # matplotlib
    migrator sandbox up --sources 2      # only its seekdb target is used
    python scripts/dashboard_picture.py [--sandbox .migrator-sandbox | --target URL] [--out docs/img/dashboard.png]

A small real migration: two private MariaDB sources started for the run (cutover makes its
sources read-only, so never the sandbox's shared ones), two shards merged into one target
database through a route and a source column. copy (paused for a few seconds by WORKDIR/pause),
sync while a writer changes rows on both sources (with one large UPDATE on one of them), verify,
cutover: each command runs with --metrics-port, and /metrics of every running command is scraped
every second. Each panel's queries are then evaluated at every scrape with the small PromQL
subset in scripts/promql.py and drawn in the dashboard's grid layout with matplotlib: a rendering
of the dashboard's queries over the run, not a Grafana screenshot. Stat, gauge and table panels
show the last non-empty value, as Grafana's default does. Everything the run created is removed.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from promql import History, evaluate, legend

from migrator.db import connect, quote_ident
from migrator.endpoint import parse_url
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import DEFAULT_DIR, Sandbox, free_port, start_mariadb, stop_pid

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "examples" / "grafana-dashboard.json"
PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#FADE2A", "#37872D"]
BG, PANEL, TEXT, MUTED, GRID = "#111217", "#181b1f", "#ccccdc", "#8e8e9e", "#2c3235"


def sql(ep, role: str, *statements: str) -> None:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
        conn.commit()
    finally:
        conn.close()


class Scraper(threading.Thread):
    """Every `interval` seconds: /metrics of every running command, one scrape in `history`
    (each sample labelled job=<command>, as Prometheus labels its targets)."""

    def __init__(self, interval: float = 1.0):
        super().__init__(daemon=True)
        self.history = History()
        self.jobs: dict[str, int] = {}
        self.interval = interval
        self._halt = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.time()
            samples = []
            with self.lock:
                jobs = dict(self.jobs)
            for job, port in jobs.items():
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                except OSError:
                    continue
                for family in text_string_to_metric_families(text):
                    for s in family.samples:
                        if s.name.endswith("_created"):
                            continue
                        samples.append((s.name, {**s.labels, "job": job}, float(s.value)))
            self.history.add(started, samples)
            self._halt.wait(max(0.0, self.interval - (time.time() - started)))

    def last(self, name: str) -> list[float]:
        scrape = self.history.scrapes[-1] if self.history.scrapes else None
        return [] if scrape is None else [v for n, _, v in scrape.samples if n == name]

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


class Run:
    """The commands of one migration, each with --metrics-port, scraped while they run."""

    def __init__(self, plan: Path, work: Path, logs: Path, scraper: Scraper):
        self.plan, self.work, self.logs, self.scraper = plan, work, logs, scraper
        self.procs: list[subprocess.Popen] = []

    def stop_all(self) -> None:
        """After a failure: every command still running gets a clean stop (SIGTERM), then SIGKILL."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()

    def start(self, command: str, *args: str) -> subprocess.Popen:
        port = free_port()
        with open(self.logs / f"{command}.log", "w") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, "-m", "migrator.cli", command, str(self.plan), "--workdir",
                                     str(self.work), "--metrics-port", str(port), "--progress-interval", "1", *args],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        with self.scraper.lock:
            self.scraper.jobs[command] = port
        self.procs.append(proc)
        return proc

    def finish(self, command: str, proc: subprocess.Popen, timeout: float = 600) -> None:
        code = proc.wait(timeout=timeout)
        with self.scraper.lock:
            self.scraper.jobs.pop(command, None)
        if code != 0:
            tail = (self.logs / f"{command}.log").read_text()[-3000:]
            for log in sorted((self.work / "sync").glob("*.log")):
                tail += f"\n--- {log.name}\n" + log.read_text()[-2000:]
            sys.exit(f"migrator {command} exited {code}:\n{tail}")


class Writer(threading.Thread):
    """Small transactions on one source: balance updates, inserts and deletes."""

    def __init__(self, ep, db: str, rows: int, per_second: float):
        super().__init__(daemon=True)
        self.ep, self.db, self.rows, self.per_second = ep, db, rows, per_second
        self.stop_event = threading.Event()

    def run(self) -> None:
        conn = connect(self.ep, "source")
        rnd, next_id = random.Random(7), self.rows + 1
        try:
            with conn.cursor() as cur:
                cur.execute(f"USE {quote_ident(self.db)}")
                while not self.stop_event.is_set():
                    for _ in range(5):
                        cur.execute("UPDATE account SET balance = balance + 1 WHERE id = %s", (rnd.randint(1, self.rows),))
                    cur.execute("INSERT INTO account VALUES (%s, 10.00, 'new')", (next_id,))
                    cur.execute("DELETE FROM account WHERE id = %s", (rnd.randint(1, self.rows),))
                    next_id += 1
                    conn.commit()
                    time.sleep(1.0 / self.per_second)
        finally:
            conn.close()


def totals(ep, role: str, query: str) -> tuple:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return tuple(cur.fetchone())
    finally:
        conn.close()


def wait_until_equal(sources, target, tdb: str, timeout: float = 300) -> None:
    """Until each shard's row count and balance sum are the same on the target."""
    deadline = time.monotonic() + timeout
    for i, ep in enumerate(sources):
        want = f"SELECT COUNT(*), SUM(balance) FROM wallet_{i:02d}.account"
        have = (f"SELECT COUNT(*), SUM(balance) FROM {quote_ident(tdb)}.account "
                f"WHERE __source = '{ep.name}/wallet_{i:02d}'")
        while totals(ep, "source", want) != totals(target, "target", have):
            if time.monotonic() > deadline:
                sys.exit(f"sync did not catch up with {ep.name} within {timeout:.0f}s")
            time.sleep(0.5)


def migrate(target, rows: int, tmp: Path, scraper: Scraper) -> None:
    sources, procs = [], []
    try:
        for i in range(2):
            port = free_port()
            procs.append(start_mariadb(tmp / f"shard{i}", port, server_id=4200 + i))
            sources.append(parse_url(f"mysql://root@127.0.0.1:{port}?name=shard{i}", "source"))
        counts = [rows, rows * 3 // 2]
        for i, ep in enumerate(sources):
            sql(ep, "source", f"CREATE DATABASE wallet_{i:02d}", f"USE wallet_{i:02d}",
                "CREATE TABLE account (id BIGINT PRIMARY KEY, balance DECIMAL(20,2) NOT NULL, note VARCHAR(64))",
                f"INSERT INTO account SELECT seq, seq MOD 1000, CONCAT('account ', seq) FROM seq_1_to_{counts[i]}")
        tdb = f"dashpic_{os.getpid()}"
        plan = build_plan(sources, target, includes=["wallet_*.*"], routes=[f"wallet_*.*={tdb}.*"],
                          source_column="__source", chunk_rows=5000)
        path = tmp / "dashpic.yaml"
        save_plan(plan, path)
        run = Run(path, tmp / "work", tmp, scraper)
        try:
            copy = run.start("copy", "--parallel", "2", "--per-source", "1")
            while copy.poll() is None and sum(scraper.last("migrator_copy_rows_total")) < 0.3 * sum(counts):
                time.sleep(0.2)
            pause = run.work / "pause"
            pause.touch()
            time.sleep(5)
            pause.unlink()
            run.finish("copy", copy)
            sync = run.start("sync")
            writers = [Writer(ep, f"wallet_{i:02d}", n, 40) for i, (ep, n) in enumerate(zip(sources, counts))]
            for w in writers:
                w.start()
            time.sleep(12)
            sql(sources[1], "source", "USE wallet_01", "UPDATE account SET balance = balance + 1")  # one big transaction: lag
            time.sleep(18)
            for w in writers:
                w.stop_event.set()
                w.join()
            wait_until_equal(sources, target, tdb)  # sync has applied everything: verify finds no row in flight
            run.finish("verify", run.start("verify"))
            run.finish("cutover", run.start("cutover", "--yes"))
            time.sleep(3)
            sync.terminate()  # a clean stop: SIGTERM to the sync command itself
            run.finish("sync", sync, timeout=120)
        finally:
            run.stop_all()
            sql(target, "target", f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
    finally:
        for p in procs:
            stop_pid(p.pid)


# ---- drawing
def fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{100 * value:.0f}%"
    if unit == "dateTimeAsIso":
        return datetime.fromtimestamp(value / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    if unit == "s":
        return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"
    if unit == "Bps":
        for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= div:
                return f"{value / div:.1f} {prefix}B/s"
        return f"{value:.0f} B/s"
    suffix = " rows/s" if unit == "rowsps" else ""
    for div, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.1f}{prefix}{suffix}"
    return f"{value:.0f}{suffix}" if value == int(value) else f"{value:.2f}{suffix}"


def series(panel: dict, history: History, rate_interval: float) -> dict[str, list[tuple[float, float]]]:
    """legend -> [(time, value)] of every target of the panel, evaluated at every scrape."""
    out: dict[str, list[tuple[float, float]]] = {}
    for target in panel["targets"]:
        for scrape in history.scrapes:
            for labels, value in evaluate(target["expr"], history, scrape.t, rate_interval).items():
                name = legend(target.get("legendFormat"), labels, target["refId"])
                out.setdefault(name, []).append((scrape.t, value))
    return out


def last_values(data: dict[str, list[tuple[float, float]]]) -> list[tuple[str, float]]:
    return [(name, [v for _, v in pts if not math.isnan(v)][-1]) for name, pts in sorted(data.items())
            if any(not math.isnan(v) for _, v in pts)]


def draw(doc: dict, history: History, out: Path, rate_interval: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Wedge
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    panels = doc["panels"]
    first = next(i for i, s in enumerate(history.scrapes) if s.samples)  # from the first command's first scrape
    history = History(history.scrapes[first:])
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    height = rows * 0.29 + 1.3
    fig = plt.figure(figsize=(16, height), dpi=90, facecolor=BG)
    top = 1 - 0.95 / height
    grid = fig.add_gridspec(rows, 24, left=0.01, right=0.99, top=top, bottom=0.01, hspace=0, wspace=0)
    start = datetime.fromtimestamp(history.scrapes[0].t, timezone.utc)
    scrape = round((history.scrapes[-1].t - history.scrapes[0].t) / max(1, len(history.scrapes) - 1), 1)
    end = datetime.fromtimestamp(history.scrapes[-1].t, timezone.utc)
    fig.text(0.01, 1 - 0.3 / height, f"{doc['title']}", color=TEXT, fontsize=15, weight="bold", va="center")
    fig.text(0.01, 1 - 0.65 / height,
             f"rendered by scripts/dashboard_picture.py from the dashboard's queries over a real run's /metrics "
             f"({start:%H:%M:%S}-{end:%H:%M:%S} UTC, 2 MariaDB sources into seekdb, scraped every {scrape:g} s, "
             f"$__rate_interval {rate_interval:g} s): not a Grafana screenshot",
             color=MUTED, fontsize=9.5, ha="left", va="center")
    for panel in panels:
        g = panel["gridPos"]
        outer = fig.add_subplot(grid[g["y"]:g["y"] + g["h"], g["x"]:g["x"] + g["w"]])
        outer.set_axis_off()
        outer.add_patch(plt.Rectangle((0.005, 0.02), 0.99, 0.96, transform=outer.transAxes, facecolor=PANEL,
                                      edgecolor=GRID, linewidth=0.8))
        outer.text(0.02, 0.92, panel["title"], transform=outer.transAxes, color=TEXT, fontsize=10, weight="bold",
                   va="center")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        data = series(panel, history, rate_interval)
        box = outer.get_position()
        inner = fig.add_axes((box.x0 + box.width * 0.075, box.y0 + box.height * 0.14, box.width * 0.9,
                              box.height * 0.68), facecolor=PANEL)
        if panel["type"] == "timeseries":
            for i, (name, pts) in enumerate(sorted(data.items())):
                xs = [datetime.fromtimestamp(t, timezone.utc) for t, _ in pts]
                inner.plot(xs, [v for _, v in pts], color=PALETTE[i % len(PALETTE)], linewidth=1.4, label=name)
            inner.set_xlim(start, end)
            inner.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
            inner.xaxis.set_major_locator(MaxNLocator(6))
            inner.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, u=unit: fmt(v, u)))
            inner.yaxis.set_major_locator(MaxNLocator(4))
            inner.tick_params(colors=MUTED, labelsize=7.5, length=0)
            inner.grid(color=GRID, linewidth=0.6)
            for side in inner.spines.values():
                side.set_visible(False)
            if data:
                inner.legend(loc="upper left", fontsize=7 if len(data) > 6 else 7.5, frameon=False, labelcolor=TEXT,
                             ncol=min(5, len(data)), handlelength=1.2, columnspacing=1.0)
            else:
                inner.text(0.5, 0.5, "No data", transform=inner.transAxes, color=MUTED, ha="center", va="center")
            continue
        inner.set_axis_off()
        values = last_values(data)
        if not values:
            inner.text(0.5, 0.5, "No data", transform=inner.transAxes, color=MUTED, ha="center", va="center")
        elif panel["type"] == "gauge":
            name, value = values[0]
            frac = max(0.0, min(1.0, value))
            inner.set_xlim(-1.3, 1.3)
            inner.set_ylim(-0.35, 1.15)
            inner.set_aspect("equal")
            inner.add_patch(Wedge((0, 0), 1, 0, 180, width=0.22, color=GRID))
            inner.add_patch(Wedge((0, 0), 1, 180 - 180 * frac, 180, width=0.22, color=PALETTE[0]))
            inner.text(0, 0.15, fmt(value, unit), color=PALETTE[0], fontsize=20, ha="center", va="center",
                       weight="bold")
            inner.text(0, -0.2, name, color=MUTED, fontsize=8, ha="center", va="center")
        elif panel["type"] == "table":
            inner.text(0.02, 0.92, "stage", color=MUTED, fontsize=8.5, transform=inner.transAxes, weight="bold")
            inner.text(0.45, 0.92, "value", color=MUTED, fontsize=8.5, transform=inner.transAxes, weight="bold")
            for i, (name, value) in enumerate(values[:6]):
                y = 0.76 - i * 0.15
                inner.text(0.02, y, name, color=TEXT, fontsize=8.5, transform=inner.transAxes)
                inner.text(0.45, y, fmt(value, unit), color=TEXT, fontsize=8.5, transform=inner.transAxes)
        else:  # stat: one big number per series
            n = len(values)
            for i, (name, value) in enumerate(values):
                x = (i + 0.5) / n
                color = PALETTE[0] if value else MUTED
                inner.text(x, 0.5, fmt(value, unit), color=color, fontsize=22 if n < 4 else 16, ha="center",
                           va="center", weight="bold", transform=inner.transAxes)
                if n > 1 or name not in ("A",):
                    inner.text(x, 0.12, name, color=MUTED, fontsize=8, ha="center", transform=inner.transAxes)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=BG)
    plt.close(fig)
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(buf.getvalue())).convert("RGB").quantize(colors=96).save(out, "PNG", optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sandbox", default=str(DEFAULT_DIR), help="a running sandbox whose seekdb is the target")
    ap.add_argument("--target", default=None, help="target URL instead of the sandbox's seekdb")
    ap.add_argument("--rows", type=int, default=150_000, help="rows of the first shard (the second has 1.5x)")
    ap.add_argument("--out", default="docs/img/dashboard.png")
    ap.add_argument("--scrape-interval", type=float, default=0.5, help="seconds between scrapes")
    ap.add_argument("--rate-interval", type=float, default=5.0,
                    help="what $__rate_interval stands for (Grafana: at least 4 scrape intervals)")
    ap.add_argument("--history", default=None, help="also write the scrapes here (JSON), or draw from such a file")
    args = ap.parse_args()
    doc = json.loads(DASHBOARD.read_text())
    if args.history and Path(args.history).exists():
        history = History()
        for t, samples in json.loads(Path(args.history).read_text()):
            history.add(t, [(n, labels, v) for n, labels, v in samples])
    else:
        if args.target:
            target = parse_url(args.target, "target")
        else:
            info = Sandbox(args.sandbox).status()
            seekdb = [i for i, _ in info if i.kind == "seekdb"]
            if not seekdb:
                sys.exit(f"no sandbox target in {args.sandbox}: `migrator sandbox up --dir {args.sandbox}` or --target URL")
            target = parse_url(seekdb[0].url, "target")
        scraper = Scraper(args.scrape_interval)
        scraper.start()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                migrate(target, args.rows, Path(tmp), scraper)
            finally:
                scraper.stop()
        history = scraper.history
        if args.history:
            Path(args.history).write_text(json.dumps([(s.t, s.samples) for s in history.scrapes]))
    draw(doc, history, Path(args.out), args.rate_interval)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size:,} bytes, {len(history.scrapes)} scrapes)")


if __name__ == "__main__":
    main()
