"""Rows lost to a key collation collision that plan's probe did not see.

Plan probes each unique text key whose collation the rewrite changes and blocks when the source
holds values equal under the target collation ('A' / 'Ä' in latin1_swedish_ci are one key in
utf8mb4_general_ci). A row written after that probe can still collide, and so can two shards'
rows merged into one table: copy's and sync's REPLACE then overwrite the other row on the
target. Verify sees the overwritten row as missing; a REPLACE of it in the fix SQL would
overwrite the other (good) row in turn. `collation_twin` finds the row the target keeps in its
place, so verify says so and leaves it out of the fix SQL.
"""

from __future__ import annotations

from ..db import query
from .checksum import TableSide, key_select_sql, key_values, key_where


def has_text_key(side: TableSide) -> bool:
    return any(c.kind == "text" for c in side.key_kinds())


def collation_twin(tgt, tside: TableSide, key: tuple, extra: set[tuple]) -> tuple | None:
    """The key of the target row that the target's key takes as equal to `key` though it is not
    the same value, when the source holds that row too (it is not among the `extra` keys, which a
    fix DELETEs first): the target keeps one row for two source rows. None otherwise."""
    if not has_text_key(tside):
        return None
    where, params = key_where(tside, key)
    wanted = key_values(tside, key)
    for row in query(tgt, f"SELECT {key_select_sql(tside)} FROM {tside.name} WHERE {where} LIMIT 2", params):
        twin = tuple(row)
        if list(twin) != wanted and twin not in extra:
            return twin
    return None


def twin_detail(twin: tuple, holder: str | None = None) -> str:
    shown = ", ".join(repr(v) for v in twin)
    held = f" (held by {holder})" if holder else ""
    return (f"the target's key collation takes this key as equal to ({shown}), another source row{held}; the target "
            "keeps one row of the two and copy/sync overwrote this one. No fix SQL (a REPLACE would overwrite "
            "the other row): re-plan with --key-collation bin, then re-create the table and copy it again")


COLLISION = "key collation collision (not seen by plan's probe)"


def collision_note(run) -> str | None:
    """One line for the table's notes (shown under it) when rows of it were lost to collisions."""
    if not run.collisions:
        return None
    key, twin = run.collisions[0]
    example = f"({', '.join(map(repr, key))}) = ({', '.join(map(repr, twin))})"
    return (f"key collation collision: {len(run.collisions)} source row(s) equal to another source row under the "
            f"target key's collation, e.g. {example}: the target keeps one row of each such pair and copy/sync "
            "overwrote the other (rows written after `migrator plan` probed the source, or on two shards of a "
            "merge). No fix SQL for them: re-plan with --key-collation bin, then re-create the table and copy it "
            "again")
