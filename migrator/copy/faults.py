"""Fault hooks for crash tests: MIGRATOR_COPY_FAULT="point:n[:pause]" kills (or pauses) the
process at the n-th time a named point is reached; n="*": every time."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict

FAULT_ENV = "MIGRATOR_COPY_FAULT"

_fault_lock = threading.Lock()
_fault_hits: dict[str, int] = defaultdict(int)


def fault_point(name: str) -> None:
    """Kill (or pause) this process at the n-th time `name` is reached, per MIGRATOR_COPY_FAULT."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    point, _, rest = spec.partition(":")
    if point != name:
        return
    n, _, pause = rest.partition(":")
    with _fault_lock:
        _fault_hits[name] += 1
        hit = n == "*" or _fault_hits[name] == int(n or 1)
    if not hit:
        return
    if pause:
        time.sleep(float(pause))
    else:
        os.kill(os.getpid(), signal.SIGKILL)

