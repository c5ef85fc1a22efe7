"""Imported by sync's fork server only (runner.py puts it first in set_forkserver_preload): it
makes that process ignore SIGTERM.

systemd's default `KillMode=control-group` (and `kill -TERM -- -PGID`) sends SIGTERM to every
process of the command at once. The fork server would die of it, and the sync processes it
forked, bound to it by PR_SET_PDEATHSIG, would be killed before their clean stop. Ignoring the
signal leaves the stop to the coordinator and the sync processes, which both handle SIGTERM; the
fork server still ends when the coordinator does (its alive pipe closes). Imported anywhere
else (not from multiprocessing.forkserver's main), it does nothing."""

from __future__ import annotations

import os
import signal
import sys


def _imported_by_the_fork_server() -> bool:
    frame = sys._getframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.endswith(os.path.join("multiprocessing", "forkserver.py")):
            return True
        frame = frame.f_back
    return False


if _imported_by_the_fork_server():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
