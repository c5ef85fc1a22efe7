"""The source's tables as sync replays them: each one's route to the target (key, columns
written, merged or not) and the shape its binlog rows are decoded with, rebuilt when a row
event's column count says the shape changed. A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader

from ..db import query
from ..errors import SourceError, StateError, TargetError
from ..plan.model import Column, TablePlan
from ..schema.catalog import read_columns, read_indexes
from .apply import Route
from .rowdecode import RowDecoder
from .values import TableShape

log = logging.getLogger("migrator.sync.stream")


@dataclass
class TableState:
    plan: TablePlan
    shape: TableShape
    route: Route
    _decoder: tuple[Any, TableShape, RowDecoder | None] | None = None
    _before: tuple[Any, Route, frozenset[str] | None] | None = None

    def before_columns(self, cascades: Any) -> frozenset[str] | None:
        """The columns anything reads from this table's before-images (an update's old row, a
        deleted row): its key, for net effect (apply.py) and the chunk it marks dirty (dirty.py).
        All of them (None) when the table is a parent or child of a foreign key among the synced
        tables: cascades (cascade.py) and the copy-window sweep (window.py) compare referenced
        and referencing columns of old rows. Decoding only the key saves making the other values."""
        cached = self._before
        if cached is not None and cached[0] is cascades and cached[1] is self.route:
            return cached[2]
        wanted: frozenset[str] | None = frozenset(
            [k for k in self.route.key if k != self.route.source_column] + list(self.plan.key))
        if cascades is not None:
            name = cascades.table_of.get(self.route.table_id)
            if name is None or any(name in (fk.parent, fk.child) for fk in cascades.foreign_keys):
                wanted = None
        if not wanted:
            wanted = None
        self._before = (cascades, self.route, wanted)
        return wanted

    def decoder(self, lib_columns: list[Any]) -> RowDecoder | None:
        """The fast row decoder for this table map (rebuilt when the map or the shape changes)."""
        cached = self._decoder
        if cached is None or cached[0] is not lib_columns or cached[1] is not self.shape:
            cached = self._decoder = (lib_columns, self.shape, RowDecoder.for_table(lib_columns, self.shape))
        return cached[2]


class SourceTables:
    """SourceSync's tables (uses its plan, name, merged, tables and ddl_record)."""

    def build_routes(self, src: pymysql.connections.Connection, tgt: pymysql.connections.Connection,
                     at: tuple[int, int] | None = None) -> None:
        """Routes and shapes of this source's tables; `at` (the checkpoint's position key): a
        table's shape recorded by the last DDL replayed before it (else the plan's)."""
        by_target: dict[str, int] = {}
        for t in self.plan.tables:
            if t.mode != "skip":
                by_target[t.target_name] = by_target.get(t.target_name, 0) + 1
        self.merged = {name for name, n in by_target.items() if n > 1}
        for t in self.plan.tables:
            if t.source != self.name or t.mode != "copy+sync":
                continue
            if not t.key:
                raise StateError(f"{self.log_where()}: table {t.source_name} has no usable key in the plan; sync cannot "
                                 "apply its changes safely: add a key, or set its mode to copy-only or skip")
            recorded = self.ddl_record.shape_at(t.id, at) if at is not None else None
            columns = recorded or t.columns or read_columns(src, t.database, t.table)
            self.tables[(t.database, t.table)] = self.table_state(t, columns, tgt)

    def table_state(self, t: TablePlan, columns: list[Column], tgt: pymysql.connections.Connection) -> TableState:
        target_cols = {c.name.lower() for c in read_columns(tgt, t.target_database, t.target_table)}
        if not target_cols:
            raise TargetError(f"target table {t.target_name} (for {t.id}) does not exist: run `migrator schema --apply`")
        write = [c.name for c in columns if not c.generated and c.name.lower() in target_cols]
        missing = [c.name for c in columns if not c.generated and c.name.lower() not in target_cols]
        if missing:
            log.warning("%s: %s columns %s are not on target table %s: their values are not written",
                        self.log_where(), t.source_name, missing, t.target_name)
        key = list(t.key)
        if t.source_column:
            if t.source_column not in key:
                key.append(t.source_column)
            if t.source_column not in write:
                write.append(t.source_column)
        route = Route(table_id=t.id, target_database=t.target_database, target_table=t.target_table, key=key,
                      columns=write, source_value=f"{self.name}/{t.database}" if t.source_column else None,
                      source_column=t.source_column, merged=t.target_name in self.merged,
                      serial=sum(i.unique for i in read_indexes(tgt, t.target_database, t.target_table)) > 1)
        return TableState(t, TableShape(columns), route)

    def refresh_table(self, state: TableState, n_columns: int, stream: BinLogStreamReader) -> None:
        t = state.plan
        with self._source_session() as src, self._target_session() as tgt:
            fresh = self.table_state(t, read_columns(src, t.database, t.table), tgt)
        if len(fresh.shape.columns) != n_columns:
            raise SourceError(
                f"{self.log_where()}: table {t.source_name} has {n_columns} columns in the binlog at "
                f"{stream.log_file}:{stream.log_pos} but {len(fresh.shape.columns)} on the source now (its DDL is not in "
                f"the replayed binlog); sync stopped at {self.cp.position.file}:{self.cp.position.pos}: re-copy the table")
        state.shape, state.route = fresh.shape, fresh.route

    def check_target_triggers(self, tgt: pymysql.connections.Connection) -> None:
        """Rows a source trigger changed are in the binlog as row events of their own: a trigger
        on the target table would change them a second time on replay."""
        names = sorted({(s.route.target_database, s.route.target_table) for s in self.tables.values()})
        if not names:
            return
        pairs = " OR ".join(["(EVENT_OBJECT_SCHEMA=%s AND EVENT_OBJECT_TABLE=%s)"] * len(names))
        rows = query(tgt, f"SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_OBJECT_SCHEMA, EVENT_OBJECT_TABLE FROM "
                          f"information_schema.TRIGGERS WHERE {pairs}", tuple(v for n in names for v in n))
        if rows:
            shown = ", ".join(f"{r[0]}.{r[1]} on {r[2]}.{r[3]}" for r in rows[:5]) + (
                f" and {len(rows) - 5} more" if len(rows) > 5 else "")
            raise TargetError(
                f"target trigger(s) {shown} would fire again for rows sync replays (the source's triggers' changes "
                "are in the binlog already): drop them on the target until cutover, and create them after it "
                "(`migrator schema convert` output has them)")
