"""Run the CLI on a pseudo-terminal (its controlling terminal) and read what it drew."""

from __future__ import annotations

import os
import pty
import re
import select
import struct
import sys
import time

from copy_helpers import REPO

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_in_pty(args: list[str], env: dict[str, str] | None = None, *, answer: str | None = None,
               prompt: bytes = b"not shown", timeout: float = 120, columns: int = 160) -> tuple[int, str]:
    """The raw screen output (escape sequences kept) and the exit code; `answer` is typed once
    `prompt` appears."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(REPO)
        os.environ.update(env or {})
        os.environ["COLUMNS"], os.environ["LINES"] = str(columns), "50"
        os.execv(sys.executable, [sys.executable, "-m", "migrator.cli", *args])
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    out = b""
    answered = answer is None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not answered and prompt in out:
            os.write(fd, answer.encode() + b"\r")
            answered = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def plain(screen: str) -> str:
    return ANSI.sub("", screen)
