"""The e-wallet demo end to end, in its own sandbox (4 MariaDB + seekdb on free ports), small.

What a user checks: the run completes, prints the balance invariant and identical checksums,
the transfers made during sync reached the target, and a second run in the same directory works
(sandbox reused, work directory and target reset).
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from migrator.db import scalar, session
from migrator.demo import run_demo, target_endpoint
from migrator.sandbox import Sandbox

ACCOUNTS = 150
TRAFFIC_SECONDS = 5.0
ROW_CHANGES_PER_TRANSFER = 5  # 2 account updates, 1 transfer row, 2 ledger rows


def _demo(directory: Path, *, keep: bool):
    out = io.StringIO()
    result = run_demo(directory, console=Console(file=out, width=200), keep=keep, accounts=ACCOUNTS,
                      traffic_seconds=TRAFFIC_SECONDS, base_port=None)
    return result, out.getvalue()


@pytest.fixture
def demo_dir(tmp_path: Path):
    directory = tmp_path / "demo-sandbox"
    yield directory
    Sandbox(directory).down()  # whatever happened: no servers left behind


def test_demo_twice(demo_dir: Path) -> None:
    first, text = _demo(demo_dir, keep=True)
    for step in ("1. sandbox", "3. plan", "4. schema", "5. copy", "6. sync", "7. cutover", "8. summary"):
        assert step in text
    assert "findings" in text and "audit_log" in text  # the plan's findings table is shown
    assert "balance invariant holds" in text
    assert "verify: identical" in text
    assert first.verify_identical and first.invariant_holds
    assert first.transfers > 0
    # the traffic went through sync, not through copy: its row changes were replayed
    assert first.sync_rows >= ROW_CHANGES_PER_TRANSFER * first.transfers
    assert first.downtime_seconds is not None and first.downtime_seconds > 0
    assert "write downtime" in text

    info = Sandbox(demo_dir).load()
    assert info is not None
    with session(target_endpoint(info), "target") as conn:
        merged = scalar(conn, "SELECT COUNT(DISTINCT __source) FROM wallet.account")
    assert merged == 8  # 8 shards side by side in one table, colliding ids kept apart

    second, text2 = _demo(demo_dir, keep=False)
    assert "sandbox reused" in text2
    assert "writable again" in text2  # the first run's cutover left the sources read-only
    assert second.verify_identical and second.invariant_holds
    assert second.copied_rows == first.copied_rows  # fresh fleet, fresh target: same rows, not doubled
    assert not demo_dir.exists()  # --no-keep stopped and removed the sandbox
