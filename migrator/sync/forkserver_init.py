"""Imported by sync's fork server only (runner.py puts it first in set_forkserver_preload): it
makes that process ignore SIGTERM.

systemd's default `KillMode=control-group` (and `kill -TERM -- -PGID`) sends SIGTERM to every
process of the command at once. The fork server would die of it, and the sync processes it
forked, bound to it by PR_SET_PDEATHSIG, would be killed before their clean stop. Ignoring the
signal leaves the stop to the coordinator and the sync processes, which both handle SIGTERM; the
fork server still ends when the coordinator does (its alive pipe closes). Never import this
module anywhere else: the importing process would ignore SIGTERM."""

from __future__ import annotations

import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
