"""Live source table shapes and the run context: a changed plan or altered table is refused.

The shape is read from information_schema at every start (columns with full types, charsets,
generation, and the primary/unique indexes). It is recorded in context.json the first time;
a resume whose shape differs would mix rows of two schemas, so it stops with what changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import StateError
from ..plan.model import Plan, TablePlan
from ..schema.catalog import LiveShape
from ..state import atomic_write_json, read_json
from ..workdir import WorkDir


def shape_record(shape: LiveShape | None) -> dict[str, Any] | None:
    """What context.json records of a table's shape (its fingerprint is compared on resume):
    {"columns": [[name, column_type, nullable, charset, collation, extra]], "keys": [[index, seq, column]]}
    with the primary/unique indexes only; None if the table is absent."""
    if shape is None:
        return None
    return {"columns": [[c.name, c.column_type, "YES" if c.nullable else "NO", c.charset, c.collation, c.extra]
                        for c in shape.columns],
            "keys": [[i.name, str(seq), str(col)] for i in shape.unique_indexes()
                     for seq, col in enumerate(i.columns, start=1)]}


def shape_fingerprint(shape: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def describe_shape_change(old: dict[str, Any], new: dict[str, Any] | None) -> str:
    """What changed between two shapes, in a DBA's words."""
    if new is None:
        return "the table no longer exists"
    before = {c[0]: c for c in old["columns"]}
    after = {c[0]: c for c in new["columns"]}
    parts = [f"column {n!r} added" for n in after if n not in before]
    parts += [f"column {n!r} dropped" for n in before if n not in after]
    parts += [f"column {n!r} changed from {before[n][1]} to {after[n][1]}"
              for n in before if n in after and before[n] != after[n]]
    if old["keys"] != new["keys"]:
        parts.append("its primary/unique keys changed")
    if not parts and [c[0] for c in old["columns"]] != [c[0] for c in new["columns"]]:
        parts.append("its columns were reordered")
    return ", ".join(parts) or "its definition changed"


def check_plan_columns(table: TablePlan, shape: dict[str, Any] | None) -> str | None:
    """Why the live table does not match the plan's column list, or None when it does."""
    if shape is None:
        return "the table does not exist on the source"
    live = {c[0]: c[1] for c in shape["columns"]}
    nullable = {c[0]: c[2] == "YES" for c in shape["columns"]}
    missing = [c.name for c in table.columns if c.name not in live]
    extra = [n for n in live if n not in {c.name for c in table.columns}]
    changed = [f"{c.name} is {live[c.name]} (plan: {c.column_type})" for c in table.columns
               if c.name in live and live[c.name].lower() != c.column_type.lower()]
    changed += [f"{c.name} is {'NULL' if nullable[c.name] else 'NOT NULL'} (plan: {'NULL' if c.nullable else 'NOT NULL'})"
                for c in table.columns if c.name in live and nullable[c.name] != c.nullable]
    parts = ([f"columns missing on the source: {', '.join(missing)}"] if missing else []) + \
            ([f"columns not in the plan: {', '.join(extra)}"] if extra else []) + changed
    return "; ".join(parts) or None


class RunContext:
    """context.json: plan fingerprint (all stages) and copy's recorded table shapes."""

    def __init__(self, workdir: WorkDir):
        self.workdir = workdir
        self.data: dict[str, Any] = read_json(workdir.context, default={}) or {}

    def check_plan(self, plan: Plan, plan_path: str | Path | None) -> None:
        recorded, fingerprint = self.data.get("plan_fingerprint"), plan.fingerprint()  # 1 s for 30,000 tables
        if recorded and recorded != fingerprint and self.data.get("copy", {}).get("tables"):
            raise StateError(
                f"work directory {str(self.workdir.root)!r} holds a copy of a different plan "
                f"(fingerprint {recorded}, plan was {self.data.get('plan_path')!r}; this plan is "
                f"{fingerprint}): rerun with the original plan, or with --restart to copy from scratch"
            )
        self.data["plan_fingerprint"] = fingerprint
        if plan_path is not None:
            self.data["plan_path"] = str(plan_path)

    def recorded_shape(self, table_id: str) -> dict[str, Any] | None:
        return self.data.get("copy", {}).get("tables", {}).get(table_id)

    def record_shape(self, table_id: str, shape: dict[str, Any]) -> None:
        tables = self.data.setdefault("copy", {}).setdefault("tables", {})
        tables[table_id] = {**shape, "fingerprint": shape_fingerprint(shape)}

    def check_shape(self, table: TablePlan, shape: dict[str, Any] | None) -> None:
        old = self.recorded_shape(table.id)
        if old is None:
            return
        clean = {k: old[k] for k in ("columns", "keys")}
        if shape is None or shape_fingerprint(shape) != shape_fingerprint(clean):
            raise StateError(
                f"source table {table.source}/{table.source_name} changed since its copy started: "
                f"{describe_shape_change(clean, shape)}. Copied rows would not match; re-run "
                "`migrator plan` and copy with --restart"
            )

    def forget_copy(self) -> None:
        self.data.pop("copy", None)

    def save(self) -> None:
        atomic_write_json(self.workdir.context, self.data)
