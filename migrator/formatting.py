"""Small display helpers shared by the commands and reports."""

from __future__ import annotations

from datetime import datetime, timezone


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (powers of 1024, labelled as such)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def utc_now() -> str:
    """Now in UTC, ISO 8601 to the second: the timestamp form of reports and plans."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
