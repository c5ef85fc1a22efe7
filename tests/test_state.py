"""Checkpoint files survive kill -9 of the writer at any instant."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from migrator.errors import StateError
from migrator.state import Journal, atomic_write_json, read_json

WRITER = textwrap.dedent(
    """
    import sys
    from migrator.state import Journal, atomic_write_json
    kind, path = sys.argv[1], sys.argv[2]
    n = 0
    journal = Journal(path) if kind == "journal" else None
    while True:
        n += 1
        record = {"seq": n, "payload": "x" * (n % 5000)}
        if journal:
            journal.append(record)
        else:
            atomic_write_json(path, record)
        print(n, flush=True)
    """
)


def _run_and_kill(kind: str, path, seconds: float) -> int:
    """Start a writer, SIGKILL it mid-stream; returns the last seq it acknowledged."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, kind, str(path)], stdout=subprocess.PIPE, text=True)
    time.sleep(seconds)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    acked = [int(x) for x in out.split()]
    return acked[-1] if acked else 0


@pytest.mark.parametrize("round_", range(3))
def test_snapshot_is_whole_after_kill_9(tmp_path, round_):
    path = tmp_path / "ckpt.json"
    acked = _run_and_kill("snapshot", path, random.uniform(0.3, 0.8))
    data = read_json(path)  # parses: never torn
    assert data["payload"] == "x" * (data["seq"] % 5000)
    assert data["seq"] >= acked  # nothing acknowledged is lost
    assert not [p for p in tmp_path.iterdir() if p.name != "ckpt.json" and not p.name.endswith(".tmp")]


@pytest.mark.parametrize("round_", range(3))
def test_journal_keeps_every_acknowledged_record_after_kill_9(tmp_path, round_):
    path = tmp_path / "journal.jsonl"
    acked = _run_and_kill("journal", path, random.uniform(0.3, 0.8))
    seqs = [r["seq"] for r in Journal(path).replay()]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert len(seqs) >= acked
    # A new writer continues cleanly after a torn tail.
    j = Journal(path)
    j.append({"seq": len(seqs) + 1, "payload": ""})
    assert [r["seq"] for r in Journal(path).replay()][-1] == len(seqs) + 1


def test_torn_tail_is_ignored_and_repaired(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"seq": 1}\n{"seq": 2')
    assert [r["seq"] for r in Journal(path).replay()] == [1]
    Journal(path).append({"seq": 2})
    assert [r["seq"] for r in Journal(path).replay()] == [1, 2]


def test_corrupt_snapshot_is_a_clear_state_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match="corrupt"):
        read_json(path)
    atomic_write_json(path, {"ok": True})
    assert json.loads(path.read_text()) == {"ok": True}
