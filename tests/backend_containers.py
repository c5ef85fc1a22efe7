"""testcontainers backend for the test fixtures (MIGRATOR_TEST_BACKEND=containers).

Sources: MySQL 8 images with binlog ROW/FULL and GTID. Target: OceanBase CE (default), TiDB or
MySQL, chosen with MIGRATOR_TEST_TARGET=oceanbase|tidb|mysql. Needs a Docker engine; the
fixtures skip with the reason when none answers. The local-process backend is the default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from migrator.sandbox import Instance, SandboxInfo

MYSQL_IMAGE = os.environ.get("MIGRATOR_TEST_MYSQL_IMAGE", "mysql:8.0")
TARGET_IMAGES = {
    "oceanbase": ("oceanbase/oceanbase-ce:latest", 2881, "boot success!"),
    "tidb": ("pingcap/tidb:latest", 4000, "server is running MySQL protocol"),
    "mysql": (MYSQL_IMAGE, 3306, "ready for connections"),
}
SOURCE_FLAGS = {
    "log-bin": "binlog",
    "binlog-format": "ROW",
    "binlog-row-image": "FULL",
    "gtid-mode": "ON",
    "enforce-gtid-consistency": "ON",
}


def docker_unavailable_reason() -> str | None:
    try:
        import docker  # type: ignore[import-not-found]
        import testcontainers  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "pip install testcontainers (the containers backend is optional)"
    try:
        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no engine
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


class ContainerFleet:
    def __init__(self) -> None:
        self.containers: list = []

    def _mysql(self, server_id: int, options: Mapping[str, str | None] | None = None):
        from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]
        from testcontainers.core.waiting_utils import wait_for_logs  # type: ignore[import-not-found]

        flags = {**SOURCE_FLAGS, "server-id": str(server_id), **(options or {})}
        cmd = " ".join(f"--{k}" if v is None else f"--{k}={v}" for k, v in flags.items() if v != "")
        if flags.get("log-bin") == "":
            cmd += " --skip-log-bin"
        c = (DockerContainer(MYSQL_IMAGE).with_env("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")
             .with_command(cmd).with_exposed_ports(3306))
        c.start()
        wait_for_logs(c, "port: 3306  MySQL Community Server", timeout=180)
        self.containers.append(c)
        return c

    def source(self, n: int, options: Mapping[str, str | None] | None = None) -> Instance:
        c = self._mysql(n, options)
        host, port = c.get_container_host_ip(), int(c.get_exposed_port(3306))
        return Instance(name=f"src{n}", kind="mysql", url=f"mysql://root@{host}:{port}", port=port, pid=0, dir="")

    def target(self) -> Instance:
        from testcontainers.core.container import DockerContainer  # type: ignore[import-not-found]
        from testcontainers.core.waiting_utils import wait_for_logs  # type: ignore[import-not-found]

        kind = os.environ.get("MIGRATOR_TEST_TARGET", "oceanbase")
        image, port, ready = TARGET_IMAGES[kind]
        c = DockerContainer(image).with_exposed_ports(port)
        if kind == "oceanbase":
            c = c.with_env("MODE", "mini")
        if kind == "mysql":
            c = c.with_env("MYSQL_ALLOW_EMPTY_PASSWORD", "yes")
        c.start()
        wait_for_logs(c, ready, timeout=600)
        self.containers.append(c)
        host, mapped = c.get_container_host_ip(), int(c.get_exposed_port(port))
        scheme = "oceanbase" if kind == "oceanbase" else kind
        return Instance(name="target", kind=kind, url=f"{scheme}://root@{host}:{mapped}", port=mapped, pid=0, dir="")

    def sandbox(self, sources: int = 2) -> SandboxInfo:
        return SandboxInfo(dir="", sources=[self.source(i + 1) for i in range(sources)], target=self.target())

    def stop(self) -> None:
        for c in self.containers:
            try:
                c.stop()
            except Exception:  # noqa: BLE001 - best effort at session end
                pass
