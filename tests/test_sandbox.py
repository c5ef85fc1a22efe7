"""`migrator sandbox` on real MariaDB servers: up, idempotent up, status, down, clear failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import yaml

from migrator.sandbox import pid_alive


def migrator(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "migrator", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def _info(d) -> dict:
    return yaml.safe_load((d / "sandbox.yaml").read_text())


def test_up_is_idempotent_status_and_down(tmp_path):
    d = tmp_path / "sb"
    first = migrator("sandbox", "up", "--sources", "1", "--no-target", "--dir", str(d))
    assert first.returncode == 0, first.stderr
    assert "started" in first.stdout
    info = _info(d)
    (src,) = info["sources"]
    assert pid_alive(src["pid"])
    try:
        again = migrator("sandbox", "up", "--sources", "1", "--no-target", "--dir", str(d))
        assert again.returncode == 0 and "already running" in again.stdout
        assert _info(d)["sources"][0]["pid"] == src["pid"]  # not started twice

        status = migrator("sandbox", "status", "--dir", str(d), "--json")
        assert status.returncode == 0
        assert [s["up"] for s in yaml.safe_load(status.stdout)] == [True]

        # A source killed behind our back is reported down, then brought back by `up`.
        os.kill(src["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(src["pid"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert migrator("sandbox", "status", "--dir", str(d)).returncode == 1
        revived = migrator("sandbox", "up", "--sources", "1", "--no-target", "--dir", str(d))
        assert revived.returncode == 0, revived.stderr
        assert _info(d)["sources"][0]["port"] == src["port"]
        assert migrator("sandbox", "status", "--dir", str(d)).returncode == 0
        revived_pid = _info(d)["sources"][0]["pid"]
    finally:
        down = migrator("sandbox", "down", "--dir", str(d))
    assert down.returncode == 0
    assert not d.exists()
    assert not pid_alive(revived_pid)
    assert "no sandbox" in migrator("sandbox", "status", "--dir", str(d)).stdout


def test_port_taken_is_reported(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # someone else's server holds the port
        port = s.getsockname()[1]
        res = migrator("sandbox", "up", "--sources", "1", "--no-target", "--base-port", str(port),
                       "--dir", str(tmp_path / "sb"))
    assert res.returncode == 2
    assert f"port {port} on 127.0.0.1 is taken" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "sb").exists()


def test_missing_binary_names_the_install_command(tmp_path):
    res = migrator("sandbox", "up", "--sources", "1", "--dir", str(tmp_path / "sb"), env={"PATH": "/nonexistent"})
    assert res.returncode == 2
    assert "not found" in res.stderr and "apt-get install -y mariadb-server" in res.stderr
    assert "Traceback" not in res.stderr
