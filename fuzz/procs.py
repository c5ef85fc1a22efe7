"""`migrator` commands as real processes, each in its own process group: a kill -9 takes the
whole group (the sync coordinator, its fork server and every source process) at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class MigratorProc:
    def __init__(self, args: list[str], log: Path, cwd: Path):
        self.args = args
        self.log = log
        self.started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with open(log, "ab") as out:
            out.write(f"\n$ migrator {' '.join(args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen([sys.executable, "-m", "migrator", *args], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=cwd, env=env, start_new_session=True)

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> bool:
        """SIGKILL the whole process group; True when it was still running (the kill landed)."""
        landed = self.running()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        return landed

    def terminate(self, timeout: float = 60) -> int:
        """A clean stop (SIGTERM to the command, which relays it), then the group is killed."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return -9
        finally:
            self._reap_group()

    def wait(self, timeout: float | None = None) -> int | None:
        """Exit code, or None on timeout (the process keeps running)."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap_group()
        return rc

    def _reap_group(self) -> None:
        try:  # children left in the group (none should be) go with it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def elapsed(self) -> float:
        return time.monotonic() - self.started
