"""Real servers for the tests: MariaDB sources and an OceanBase seekdb target.

One sandbox (2 MariaDB sources + 1 seekdb) is shared by the whole session and stopped at its
end. Set MIGRATOR_TEST_SANDBOX=DIR to reuse a sandbox you keep running between runs (it is
not stopped). Tests that need a differently configured source (binlog off, TLS, ...) start
their own with `mariadb_factory`. Every test works in databases named by `unique_db`, so tests
never see each other's tables.

MIGRATOR_TEST_BACKEND=containers selects testcontainers images instead; without a Docker engine
those tests skip with the reason.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from backend_containers import ContainerFleet, docker_unavailable_reason

from migrator.db import connect, quote_ident
from migrator.endpoint import Endpoint, parse_url
from migrator.sandbox import (
    FLEET_OPTIONS,
    Sandbox,
    SandboxInfo,
    free_port,
    install_datadir,
    start_mariadb,
    stop_pid,
)

BACKEND = os.environ.get("MIGRATOR_TEST_BACKEND", "local")


@pytest.fixture(scope="session")
def sandbox_info(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxInfo]:
    if BACKEND == "containers":
        reason = docker_unavailable_reason()
        if reason:
            pytest.skip(f"MIGRATOR_TEST_BACKEND=containers: {reason}")
        fleet = ContainerFleet()
        try:
            yield fleet.sandbox(2)
        finally:
            fleet.stop()
        return
    keep = os.environ.get("MIGRATOR_TEST_SANDBOX")
    sb = Sandbox(keep or tmp_path_factory.mktemp("sandbox"))
    info, _ = sb.up(2)
    yield info
    if not keep:
        sb.down()


@pytest.fixture(scope="session")
def source(sandbox_info: SandboxInfo) -> Endpoint:
    return parse_url(sandbox_info.sources[0].url + "?name=src1", "source")


@pytest.fixture(scope="session")
def source2(sandbox_info: SandboxInfo) -> Endpoint:
    return parse_url(sandbox_info.sources[1].url + "?name=src2", "source")


@pytest.fixture(scope="session")
def target(sandbox_info: SandboxInfo) -> Endpoint:
    assert sandbox_info.target is not None
    return parse_url(sandbox_info.target.url, "target")


_counter = itertools.count()


@pytest.fixture
def unique_db(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """unique_db('wallet') -> 't_wallet_<test>_<n>': a database name no other test uses."""
    stem = request.node.name.split("[")[0].removeprefix("test_")[:20]
    tag = uuid.uuid4().hex[:4]

    def make(prefix: str = "db") -> str:
        return f"t_{prefix}_{stem}_{tag}{next(_counter)}"

    return make


@pytest.fixture
def src_conn(source: Endpoint):
    conn = connect(source, "source")
    yield conn
    conn.close()


@pytest.fixture
def tgt_conn(target: Endpoint):
    conn = connect(target, "target")
    yield conn
    conn.close()


def drop_databases(ep: Endpoint, role: str, names: list[str]) -> None:
    conn = connect(ep, role)
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
    finally:
        conn.close()


class _ExtraMariaDBs:
    """Extra MariaDB instances for one test session, all started from one template datadir
    (initialized once, then copied: ~0.5 s per instance instead of ~1.5 s) and all stopped
    at session end."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self.tmp = tmp_path_factory
        self.ids = itertools.count(100)
        self.pids: list[int] = []
        self.fleet = ContainerFleet() if BACKEND == "containers" else None
        self._template: Path | None = None

    def template(self) -> Path:
        if self._template is None:
            data = self.tmp.mktemp("mariadb-template") / "data"
            install_datadir(data)
            self._template = data
        return self._template

    def start(self, options: dict[str, str | None] | None = None, name: str = "extra") -> Endpoint:
        if self.fleet is not None:
            reason = docker_unavailable_reason()
            if reason:
                pytest.skip(f"MIGRATOR_TEST_BACKEND=containers: {reason}")
            inst = self.fleet.source(next(self.ids), options)
            return parse_url(f"{inst.url}?name={name}", "source")
        port = free_port()
        d: Path = self.tmp.mktemp(name)
        proc = start_mariadb(d, port, server_id=next(self.ids), options=options, template=self.template())
        self.pids.append(proc.pid)
        return parse_url(f"mysql://root@127.0.0.1:{port}?name={name}", "source")

    def start_many(self, n: int, name: str = "fleet") -> list[Endpoint]:
        """n instances named NAME00.. started in parallel, each with the sandbox's small fleet
        memory settings (8 MB buffer pool: ~55 MB resident each)."""
        self.template()
        with ThreadPoolExecutor(max_workers=min(n, 6)) as pool:
            return list(pool.map(lambda i: self.start(dict(FLEET_OPTIONS), f"{name}{i:02d}"), range(n)))

    def stop_all(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(stop_pid, self.pids))
        if self.fleet is not None:
            self.fleet.stop()


@pytest.fixture(scope="session")
def _extra_mariadbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_ExtraMariaDBs]:
    extra = _ExtraMariaDBs(tmp_path_factory)
    yield extra
    extra.stop_all()


@pytest.fixture(scope="session")
def mariadb_factory(_extra_mariadbs: _ExtraMariaDBs) -> Callable[..., Endpoint]:
    """Start an extra MariaDB with option overrides; every one is stopped at session end."""
    return _extra_mariadbs.start


@pytest.fixture(scope="session")
def mariadb_fleet(_extra_mariadbs: _ExtraMariaDBs) -> Callable[..., list[Endpoint]]:
    """mariadb_fleet(n, name) -> n extra MariaDB instances started in parallel with small memory
    settings (for fleet and shard-merge tests); stopped at session end."""
    return _extra_mariadbs.start_many
