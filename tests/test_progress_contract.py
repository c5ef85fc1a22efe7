"""The progress contract (migrator.progress): what a sync process puts on the queue is SyncProgress's
JSON form, read back whole, and every renderer reads the same typed event."""

from __future__ import annotations

import time

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from migrator.positions import BinlogPosition
from migrator.progress import Collect, Fanout, SyncProgress, Throttled, VerifyProgress
from migrator.progress_lines import SyncTracker, VerifyTracker
from migrator.sync.contracts import Checkpoint
from migrator.sync.metrics import SyncMetrics


def checkpoint(lag: float) -> dict:
    now = time.time()
    cp = Checkpoint(source="s1", position=BinlogPosition(file="bin.000001", pos=400, gtid="0-1-10"),
                    head=BinlogPosition(file="bin.000001", pos=900, gtid="0-1-14"), event_time=now - lag,
                    pending_since=now - lag, rows={"insert": 3, "update": 1, "delete": 0})
    return cp.model_dump(mode="json")


def wire_messages() -> list[dict]:
    """Every shape a source sends (sync/checkpointing.py, stream.py, waits.py, preconditions.py, runner.py),
    the checkpoint's lag 5 s as of now."""
    return [
        {"source": "s1", "rows": {"insert": 3, "update": 1}},
        {"source": "s1", "checkpoint": checkpoint(5.0), "caught_up": False, "pending_events": 7},
        {"source": "s1", "caught_up": True},
        {"source": "s1", "retry": True},
        {"source": "s1", "state": "paused: target write stall"},
        {"source": "s1", "state": "waiting for copy: db.t"},
        {"source": "s1", "done": True, "error": "source s1: lost", "exit_code": 3},
        {"source": "s1", "done": True},
    ]


@pytest.mark.parametrize("k", range(len(wire_messages())))
def test_each_message_a_source_sends_reads_back_as_it_was_sent(k):
    wire = wire_messages()[k]
    assert SyncProgress.model_validate(wire).to_wire() == wire


def test_a_misspelt_field_is_refused_not_dropped():
    with pytest.raises(ValidationError, match="caughtup"):
        SyncProgress.model_validate({"source": "s1", "caughtup": True})


def test_progress_lines_and_metrics_read_the_same_events():
    metrics = SyncMetrics(["s1", "s2"])
    tracker = SyncTracker(["s1", "s2"])
    seen = Collect()
    sink = Fanout(metrics, tracker, seen)
    for wire in wire_messages()[:5]:
        sink.emit(SyncProgress.model_validate(wire))
    sink.emit(VerifyProgress(done=1, total=2, rows=3))  # another stage's event: ignored by sync's sinks
    snap = tracker.snapshot()
    assert snap["rows"] == 4 and snap["retries"] == 1 and snap["sources_caught_up"] == 0
    assert 4.0 < snap["lag_max_seconds"] < 7.0, snap
    assert snap["throttled"] == "1 source(s) paused: target write stall"
    text = generate_latest(metrics.registry).decode()
    assert 'migrator_sync_rows_applied_total{kind="insert",source="s1"} 3.0' in text
    assert 'migrator_sync_retries_total{source="s1"} 1.0' in text
    assert 'migrator_sync_lag_events{source="s1"} 7.0' in text
    assert 'migrator_sync_lag_transactions{source="s1"} 4.0' in text
    assert len(seen.events) == 6


def test_verify_tracker_reads_progress_and_throttling():
    tracker = VerifyTracker()
    tracker.emit(VerifyProgress(done=3, total=10, rows=1500))
    tracker.emit(Throttled(stage="verify", reason="source s1: Threads_running 40 > 25"))
    snap = tracker.snapshot()
    assert snap["chunks_done"] == 3 and snap["chunks_total"] == 10 and snap["rows"] == 1500
    assert snap["line"].endswith("; throttled: source s1: Threads_running 40 > 25")
    tracker.emit(Throttled(stage="verify", reason=None))
    assert tracker.snapshot()["throttled"] is None


def test_changes_waiting_for_the_target_are_lag_even_past_the_head_the_pass_began_with():
    """A pass reads on past the head it read when it began (a write arriving while it runs): when
    the batch holding that write then waits on the target, the checkpoint still sits at that head.
    It was reported "not behind, lag 0" (seen as a flaky test_sync_throttle run under other load);
    the changes read and not applied say how far behind it is."""
    from migrator.sync.contracts import status_line

    head = BinlogPosition(file="b.000001", pos=900, at=time.time() - 6)
    waiting = Checkpoint(source="s1", position=head.model_copy(), head=head, pending_since=time.time() - 5)
    line = status_line(waiting)
    assert line["behind"] and 4.5 < line["lag_seconds"] < 30, line
    assert line["lag_bytes"] == 0  # the head it knows of is no further than the checkpoint
    applied = waiting.model_copy(update={"pending_since": None})
    assert status_line(applied) == {"lag_seconds": 0.0, "lag_bytes": 0, "behind": False}
