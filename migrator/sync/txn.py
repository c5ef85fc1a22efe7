"""Transaction assembly: the row changes of one binlog event group."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..positions import BinlogPosition
from .apply import RowChange


@dataclass
class Txn:
    changes: list[RowChange] = field(default_factory=list)
    gtid: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    start: BinlogPosition | None = None  # where the event group began (never mutated: `safe` is replaced)
    began: bool = False  # a BEGIN was read: only COMMIT, XID, ROLLBACK, XA or real DDL ends the group
