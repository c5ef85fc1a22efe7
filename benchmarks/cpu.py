"""CPU accounting for the benchmarks: where the machine's time went (Linux /proc)."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a running process has used so far; 0 if unknown."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (every process)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class TreeCpu:
    """CPU seconds used by this process and its descendants while it runs (sampled from /proc every
    0.1 s: a process's last tenth of a second before it exits may be missed): sync's own
    processes, the fork server's children included."""

    def __init__(self, exclude: list[int] | None = None) -> None:
        import threading

        self.exclude = set(exclude or [])  # servers this process started, and what runs below them
        self.seen: dict[int, float] = {}
        self.sampler_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _descendants(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                parents.setdefault(ppid, []).append(int(entry))
        out, todo = [], [os.getpid()]
        while todo:
            for child in parents.get(todo.pop(), []):
                if child not in self.exclude:
                    out.append(child)
                    todo.append(child)
        return out

    def _run(self) -> None:
        import time

        started = time.thread_time()
        while not self._stop.wait(0.1):
            for pid in self._descendants():
                self.seen[pid] = max(self.seen.get(pid, 0.0), process_cpu(pid))
        # walking /proc costs ~7 ms per sample with ~150 processes: the measurement's, not sync's
        self.sampler_seconds = time.thread_time() - started

    def __enter__(self) -> "TreeCpu":
        self.before = {pid: process_cpu(pid) for pid in self._descendants()}
        self.own = os.times()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        t = os.times()
        own = (t.user - self.own.user) + (t.system - self.own.system) - self.sampler_seconds
        self.seconds = own + sum(v - self.before.get(pid, 0.0) for pid, v in self.seen.items())
