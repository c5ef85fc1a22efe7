"""The demo's sandbox: 4 MariaDB sources and one seekdb target, reused when healthy, recreated
otherwise; reset to a fresh state (sources writable, the merged target database gone) per run."""

from __future__ import annotations

import time

import pymysql
from rich.console import Console

from ..db import quote_ident, scalar, session
from ..endpoint import Endpoint, parse_url
from ..errors import SandboxError
from ..sandbox import Sandbox, SandboxInfo, port_is_free

DEMO_SOURCES = 4
DEMO_BASE_PORT = 33061  # the ports plans/ewallet.yaml was made with (target: +100)
TARGET_DB = "wallet"


def demo_ports_free(base: int = DEMO_BASE_PORT) -> bool:
    ports = [base + i for i in range(DEMO_SOURCES)] + [base + 100]
    return all(port_is_free(p) for p in ports)


def start_sandbox(sb: Sandbox, console: Console, base_port: int | None = DEMO_BASE_PORT) -> SandboxInfo:
    """A healthy 4-source sandbox: reused, restarted, or recreated; never left half-broken.
    A new one takes base_port.. when free (the committed plan's ports), else free ports."""
    try:
        info = sb.load()
    except SandboxError as exc:
        console.print(f"[yellow]{exc}[/]: recreating it", highlight=False)
        sb.down()
        info = None
    if info is not None and (len(info.sources) != DEMO_SOURCES or info.target is None):
        console.print(f"the sandbox in {sb.dir} has {len(info.sources)} source(s); the demo needs "
                      f"{DEMO_SOURCES} and a target: recreating it", highlight=False)
        sb.down()
        info = None
    t0 = time.monotonic()
    if info is not None:
        try:
            with console.status("checking the sandbox…"):
                info, started = sb.up(DEMO_SOURCES)
            console.print(f"sandbox {'restarted' if started else 'reused'} in {sb.dir}", highlight=False)
            return info
        except SandboxError as exc:
            console.print(f"[yellow]the sandbox in {sb.dir} could not be restarted ({exc})[/]: recreating it",
                          highlight=False)
            sb.down()
    base = base_port if base_port is not None and demo_ports_free(base_port) else None
    if base is None and base_port is not None:
        console.print(f"ports {base_port}-{base_port + DEMO_SOURCES - 1}/{base_port + 100} are taken: "
                      "using free ports (the demo writes its own plan; plans/ewallet.yaml names the fixed ports)",
                      highlight=False)
    with console.status(f"starting {DEMO_SOURCES} MariaDB sources and a seekdb target…"):
        info, _ = sb.up(DEMO_SOURCES, base_port=base)
    console.print(f"sandbox started in {time.monotonic() - t0:.1f}s in {sb.dir}", highlight=False)
    return info


def source_endpoints(info: SandboxInfo) -> list[Endpoint]:
    return [parse_url(f"{s.url}?name={s.name}", "source") for s in info.sources]


def target_endpoint(info: SandboxInfo) -> Endpoint:
    if info.target is None:
        raise SandboxError("the sandbox has no target: run `migrator sandbox down` and the demo again")
    return parse_url(info.target.url, "target")


def reset_sources(sources: list[Endpoint], console: Console) -> None:
    """The last demo's cutover left the sources read-only: a fresh demo starts writable."""
    for ep in sources:
        with session(ep, "source") as conn, conn.cursor() as cur:
            if scalar(conn, "SELECT @@GLOBAL.read_only"):
                cur.execute("SET GLOBAL read_only = OFF")
                console.print(f"{ep.name}: writable again (read-only since the last demo's cutover)", highlight=False)


def reset_target(target: Endpoint) -> None:
    """A fresh demo: the merged database goes (and the recycle bin, so dropped data frees memory)."""
    with session(target, "target") as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(TARGET_DB)}")
        try:
            cur.execute("PURGE RECYCLEBIN")
        except pymysql.err.MySQLError:
            pass  # not OceanBase: nothing to purge
