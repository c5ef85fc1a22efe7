"""Local sandbox: real MariaDB source instances and one OceanBase seekdb target.

Used by `migrator sandbox up/down/status`, the demo, the test fixtures and the benchmarks. Each
MariaDB instance gets its own datadir and 127.0.0.1 port, binlog ROW/FULL, GTID and a unique
server_id; the target is `seekdb --nodaemon` from the `pylibseekdb` wheel. Servers run in their
own session so they outlive `sandbox up`; `sandbox down` stops them and removes the directory.
The URLs land in DIR/sandbox.yaml for other commands and tests to read.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pymysql
import yaml
from pydantic import BaseModel

from .errors import SandboxError
from .state import atomic_write_text

DEFAULT_DIR = Path(".migrator-sandbox")
MARIADB_INSTALL_HINT = "apt-get install -y mariadb-server (or run `make setup`)"
SEEKDB_INSTALL_HINT = "pip install pylibseekdb (or run `make setup`)"

# Small footprints: a fleet of many instances must fit on one machine.
MARIADB_OPTIONS: dict[str, str | None] = {
    "binlog-format": "ROW",
    "binlog-row-image": "FULL",
    "log-slave-updates": None,
    "character-set-server": "utf8mb4",
    "collation-server": "utf8mb4_general_ci",
    "innodb-buffer-pool-size": "64M",
    "innodb-log-file-size": "16M",
    "performance-schema": "OFF",
    "max-connections": "300",
    "max-allowed-packet": "256M",
    "table-open-cache": "400",
    "skip-name-resolve": None,
    "local-infile": "0",
}
# Beyond FLEET_THRESHOLD instances each one gets the minimum memory that still runs InnoDB well
# for tiny shards: ~100 instances then fit in a few GB (measured in benchmarks/fleet_scale.py).
FLEET_THRESHOLD = 8
FLEET_OPTIONS: dict[str, str | None] = {
    "innodb-buffer-pool-size": "8M",
    "innodb-log-buffer-size": "1M",
    "innodb-read-io-threads": "1",
    "innodb-write-io-threads": "1",
    "innodb-purge-threads": "1",
    "max-connections": "60",
    "table-open-cache": "64",
    "table-definition-cache": "400",
    "thread-cache-size": "4",
    "key-buffer-size": "1M",
    "aria-pagecache-buffer-size": "1M",
    "query-cache-size": "0",
    "max-allowed-packet": "64M",
}


def fleet_options(n: int) -> dict[str, str | None]:
    """mariadbd options for one of n sandbox sources: the defaults, shrunk for big fleets."""
    return dict(FLEET_OPTIONS) if n > FLEET_THRESHOLD else {}


SEEKDB_PARAMETERS = {"memory_limit": "4G", "datafile_size": "1G", "log_disk_size": "2G"}


class Instance(BaseModel):
    name: str
    kind: str  # "mariadb" | "seekdb"
    url: str
    port: int
    pid: int
    dir: str


class SandboxInfo(BaseModel):
    dir: str
    sources: list[Instance]
    target: Instance | None = None


# ---------------------------------------------------------------- binaries and ports


def mariadb_binaries() -> tuple[str, str]:
    mariadbd = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else None)
    install = shutil.which("mariadb-install-db")
    if not mariadbd or not install:
        raise SandboxError(f"MariaDB server binaries (mariadbd, mariadb-install-db) not found: {MARIADB_INSTALL_HINT}")
    return mariadbd, install


def seekdb_binary() -> str:
    spec = importlib.util.find_spec("pylibseekdb")
    if spec and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "seekdb"
        if path.exists():
            return str(path)
    found = shutil.which("seekdb")
    if found:
        return found
    raise SandboxError(f"OceanBase seekdb binary not found: {SEEKDB_INSTALL_HINT}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when a server could listen there (SO_REUSEADDR, as servers do: TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def _answers(port: int, user: str = "root") -> bool:
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password="", connect_timeout=2)
    except pymysql.err.MySQLError:
        return False
    conn.close()
    return True


def _wait_until_answers(port: int, proc: subprocess.Popen, what: str, log_hint: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(f"{what} exited at start (code {proc.returncode}); see {log_hint}:\n{_tail(log_hint)}")
        if _answers(port):
            return
        time.sleep(0.2)
    stop_pid(proc.pid)
    raise SandboxError(f"{what} did not answer on 127.0.0.1:{port} within {timeout:.0f}s; see {log_hint}")


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL. Reaps the process if it is our child."""
    if not pid_alive(pid):
        _reap(pid)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    time.sleep(0.2)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------- servers


def _private_tmp(directory: Path) -> Path:
    """A tmpdir per instance: installs and servers sharing /tmp collide (and /tmp gets cleaned)."""
    tmp = directory / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def install_datadir(data: Path) -> None:
    """Initialize an empty MariaDB datadir (root@127.0.0.1 with an empty password)."""
    _, install = mariadb_binaries()
    data.parent.mkdir(parents=True, exist_ok=True)
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "mysql")
    res = subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
         "--skip-test-db", f"--user={user}", f"--tmpdir={_private_tmp(data.parent)}"],
        capture_output=True, text=True,
    )
    if res.returncode != 0:
        raise SandboxError(f"mariadb-install-db failed for {data}:\n{res.stderr[-2000:]}")


def start_mariadb(
    datadir: Path,
    port: int,
    server_id: int,
    *,
    options: Mapping[str, str | None] | None = None,
    timeout: float = 60.0,
    template: Path | None = None,
) -> subprocess.Popen:
    """Initialize (once; by copying `template` when given) and start one mariadbd on
    127.0.0.1:port. `options` override the defaults; a value of "" removes a default
    (e.g. {"log-bin": ""} for binlog off)."""
    mariadbd, _ = mariadb_binaries()
    datadir = Path(datadir).resolve()
    data = datadir / "data"
    if not port_is_free(port):
        raise SandboxError(f"port {port} on 127.0.0.1 is taken by another process: stop it or pick another port")
    if not (data / "mysql").is_dir():
        if template is not None:
            datadir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(template, data)
        else:
            install_datadir(data)
    opts: dict[str, str | None] = dict(MARIADB_OPTIONS)
    opts.update({"log-bin": str(data / "binlog"), "server-id": str(server_id)})
    opts.update(options or {})
    args = [mariadbd, "--no-defaults", f"--datadir={data}", f"--port={port}", "--bind-address=127.0.0.1",
            f"--socket={datadir / 'mariadb.sock'}", f"--pid-file={datadir / 'mariadb.pid'}",
            f"--log-error={datadir / 'error.log'}", f"--tmpdir={_private_tmp(datadir)}"]
    if os.geteuid() == 0:
        args.append("--user=root")
    for key, value in opts.items():
        if value == "":
            continue
        args.append(f"--{key}" if value is None else f"--{key}={value}")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_until_answers(port, proc, f"mariadbd on port {port}", datadir / "error.log", timeout)
    return proc


def start_seekdb(basedir: Path, port: int, *, timeout: float = 180.0) -> subprocess.Popen:
    binary = seekdb_binary()
    basedir = Path(basedir).resolve()
    basedir.mkdir(parents=True, exist_ok=True)
    if not port_is_free(port):
        raise SandboxError(f"port {port} on 127.0.0.1 is taken by another process: stop it or pick another port")
    args = [binary, "--nodaemon", "--base-dir", str(basedir), "--port", str(port)]
    if not (basedir / "store").exists():  # parameters persist in basedir after the first start
        for key, value in SEEKDB_PARAMETERS.items():
            args += ["--parameter", f"{key}={value}"]
    with open(basedir / "stdout.log", "ab") as out:
        proc = subprocess.Popen(args, cwd=basedir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    _wait_until_answers(port, proc, f"seekdb on port {port}", basedir / "log" / "seekdb.log", timeout)
    return proc


# ---------------------------------------------------------------- the sandbox


class Sandbox:
    def __init__(self, directory: str | Path = DEFAULT_DIR):
        self.dir = Path(directory).resolve()
        self.file = self.dir / "sandbox.yaml"

    def load(self) -> SandboxInfo | None:
        if not self.file.exists():
            return None
        try:
            return SandboxInfo.model_validate(yaml.safe_load(self.file.read_text()))
        except Exception as exc:  # noqa: BLE001 - any damage means: not usable
            raise SandboxError(f"{self.file} is damaged ({exc}); run `migrator sandbox down --dir {self.dir}`") from None

    def _save(self, info: SandboxInfo) -> None:
        atomic_write_text(self.file, yaml.safe_dump(info.model_dump(), sort_keys=False))

    def healthy(self, info: SandboxInfo) -> bool:
        insts = info.sources + ([info.target] if info.target else [])
        return all(pid_alive(i.pid) and _answers(i.port) for i in insts)

    def up(self, sources: int = 2, *, target: bool = True, base_port: int | None = None) -> tuple[SandboxInfo, bool]:
        """Start the sandbox; returns (info, started). Reuses a healthy sandbox of the same shape."""
        if sources < 1:
            raise SandboxError("--sources must be at least 1")
        info = self.load()
        if info is not None:
            if self.healthy(info) and len(info.sources) == sources and (info.target is not None) == target:
                return info, False
            if self.healthy(info):
                raise SandboxError(
                    f"a sandbox with {len(info.sources)} sources is already running in {self.dir}; "
                    f"run `migrator sandbox down --dir {self.dir}` first"
                )
            self.restart(info)  # servers died (reboot, kill): bring the same instances back
            return info, True
        mariadb_binaries()
        if target:
            seekdb_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        info = SandboxInfo(dir=str(self.dir), sources=[])
        try:
            info.sources = self._start_sources(sources, base_port)
            self._save(info)
            if target:
                port = base_port + 100 if base_port else free_port()
                d = self.dir / "target"
                proc = start_seekdb(d, port)
                info.target = Instance(name="target", kind="seekdb", url=f"oceanbase://root@127.0.0.1:{port}",
                                       port=port, pid=proc.pid, dir=str(d))
                self._save(info)
        except BaseException:
            self.down()
            raise
        return info, True

    def _start_sources(self, n: int, base_port: int | None) -> list[Instance]:
        """Start n sources in parallel from one initialized template datadir (fast for fleets)."""
        template = self.dir / "template" / "data"
        if not (template / "mysql").is_dir():
            install_datadir(template)
        ports = [base_port + i if base_port else free_port() for i in range(n)]
        if len(set(ports)) != n:  # free_port raced with itself
            ports = list(dict.fromkeys(ports)) + [free_port() for _ in range(n - len(set(ports)))]
        started: list[Instance] = []

        def one(i: int) -> Instance:
            d = self.dir / f"src{i + 1}"
            proc = start_mariadb(d, ports[i], server_id=i + 1, template=template, options=fleet_options(n))
            inst = Instance(name=f"src{i + 1}", kind="mariadb", url=f"mysql://root@127.0.0.1:{ports[i]}",
                            port=ports[i], pid=proc.pid, dir=str(d))
            started.append(inst)
            return inst

        with ThreadPoolExecutor(max_workers=min(8, n)) as pool:
            futures = [pool.submit(one, i) for i in range(n)]
            try:
                result = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                pool.shutdown(wait=True)
                for inst in started:
                    stop_pid(inst.pid)
                raise
        return result

    def restart(self, info: SandboxInfo) -> None:
        for i, inst in enumerate(info.sources):
            if not (pid_alive(inst.pid) and _answers(inst.port)):
                stop_pid(inst.pid)
                inst.pid = start_mariadb(Path(inst.dir), inst.port, server_id=i + 1,
                                         options=fleet_options(len(info.sources))).pid
        if info.target and not (pid_alive(info.target.pid) and _answers(info.target.port)):
            stop_pid(info.target.pid)
            info.target.pid = start_seekdb(Path(info.target.dir), info.target.port).pid
        self._save(info)

    def down(self) -> int:
        """Stop every server and remove the directory; returns how many servers were stopped."""
        stopped = 0
        try:
            info = self.load()
        except SandboxError:
            info = None
        if info is not None:
            for inst in info.sources + ([info.target] if info.target else []):
                if pid_alive(inst.pid):
                    stop_pid(inst.pid)
                    stopped += 1
        if self.dir.exists():
            shutil.rmtree(self.dir, ignore_errors=True)
        return stopped

    def status(self) -> list[tuple[Instance, bool]]:
        info = self.load()
        if info is None:
            return []
        insts = info.sources + ([info.target] if info.target else [])
        return [(i, pid_alive(i.pid) and _answers(i.port)) for i in insts]
