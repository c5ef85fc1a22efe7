"""The demo's background sync: a source whose sync stops on an error fails the demo at once, naming
the source and its error, instead of the demo waiting minutes for it to catch up (run_sync keeps
the other sources going)."""

from __future__ import annotations

import time

import pytest

from migrator.demo.syncthread import SyncThread
from migrator.errors import StateError
from sync_helpers import merged_shards

SHARD_DDL = "CREATE TABLE {name} (id BIGINT NOT NULL PRIMARY KEY, note VARCHAR(20) NULL)"
MERGED_DDL = ("CREATE TABLE {name} (id BIGINT NOT NULL, note VARCHAR(20) NULL, shard VARCHAR(128) NOT NULL, "
              "PRIMARY KEY (id, shard))")


def test_a_source_that_stops_on_an_error_fails_the_wait_at_once(source, source2, target, unique_db, tmp_path):
    base = unique_db("dt")
    wd, plan = merged_shards(target, [(source, f"{base}_a"), (source2, f"{base}_b")], base + "_all",
                             SHARD_DDL, MERGED_DDL, tmp_path)
    broken = wd.sync_checkpoint(source2.name)
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text('{"source": "not a checkpoint"')  # src2's sync stops at start; src1's goes on

    sync = SyncThread(plan, wd)
    sync.start()
    started = time.monotonic()
    try:
        with pytest.raises(StateError) as caught:
            sync.wait_caught_up(started, timeout=60)
    finally:
        sync.stop()
    assert time.monotonic() - started < 30  # told, not timed out
    message = str(caught.value)
    assert f"sync of {source2.name} stopped" in message and str(broken) in message
    assert "did not catch up" not in message
