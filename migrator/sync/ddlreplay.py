"""DDL met in the binlog: applied to the target once per target table and occurrence (shards of a
merged table share it), with the table's shape followed through ADD/DROP/ADD; what cannot be
applied safely stops the source with the position to resume from. A mixin of SourceSync."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import pymysql
from pymysqlreplication import BinLogStreamReader

from ..errors import SourceError, TargetError
from ..plan.model import Column
from ..schema.catalog import read_columns, table_charset
from .apply import ddl_error_is_already_applied
from .ddl import DdlStatement, classify, column_from_def, columns_after, normalize, retarget, rewrite_for_target
from .cascade import load_cascades

if TYPE_CHECKING:
    from .tables import TableState

log = logging.getLogger("migrator.sync.stream")

DDL_KINDS = frozenset({"alter", "rename", "truncate", "create_index", "drop_index", "create_table", "drop_table"})


def is_ddl(stmt: DdlStatement) -> bool:
    """Statements that change a table's definition (and commit implicitly), by what they are."""
    return stmt.kind in DDL_KINDS


class DdlReplay:
    """SourceSync's DDL handling (uses its tables, plan, flush, applier, ddl_record, cp)."""


    def check_statement_event(self, stream: BinLogStreamReader, sql: str, schema: str) -> None:
        """A DML statement logged as text cannot be replayed safely: stop if it names a synced table."""
        stmt = classify(sql, schema)
        hits = [self.tables[n] for n in stmt.tables if n in self.tables]
        if stmt.kind == "dml" and hits:
            raise SourceError(f"{self.log_where()}: a statement-format event for {hits[0].plan.source_name} at "
                              f"{stream.log_file}:{stream.log_pos} (binlog_format switched away from ROW?); statement "
                              "events cannot be replayed safely: set binlog_format=ROW, re-copy the table, sync again")

    def handle_ddl(self, stream: BinLogStreamReader, sql: str, schema: str) -> None:
        stmt = classify(sql, schema)
        hits = [self.tables[n] for n in stmt.tables if n in self.tables]
        if stmt.kind == "dml":
            self.check_statement_event(stream, sql, schema)
            return
        if stmt.kind == "create_table" and not hits:
            for db, table in stmt.tables:
                if any(t.source == self.name and t.database == db for t in self.plan.tables):
                    log.warning("%s: new table %s.%s created on the source is not in the plan: ignored (re-plan to "
                                "migrate it)", self.log_where(), db, table)
            return
        if not hits:
            return
        self.flush()  # everything before the DDL is on the target before the DDL runs
        self.dirty.note_tables([h.plan.id for h in hits], self._position_now(stream))  # the whole table
        ddl_id = f"{stream.log_file}:{stream.log_pos}"
        keyed = stmt.kind in ("alter", "create_index", "drop_index") or (
            stmt.kind == "truncate" and not any(h.route.merged for h in hits))
        skip = ddl_id in self.opts.skip_ddl
        if skip:
            log.warning("%s: DDL at %s skipped as asked (--skip-ddl): %s", self.log_where(), ddl_id, sql)
        elif not keyed:
            self.stop_for_ddl(stmt, hits, ddl_id, f"{stmt.kind.replace('_', ' ').upper()} changes what the plan routes")
        if keyed:
            for state in hits:
                self.apply_ddl(stmt, state, ddl_id, skip=skip)
        self.refresh_after_ddl(hits, stmt, ddl_id)

    def apply_ddl(self, stmt: DdlStatement, state: TableState, ddl_id: str, skip: bool = False) -> None:
        """Run the statement on the target unless its occurrence already ran there (DdlRecord):
        sent by another shard of the merged table, or applied before a restart replayed it.
        skip: the DBA made the change by hand (--skip-ddl); recorded as applied for every shard."""
        route = state.route
        sql = retarget(stmt, route.target_database, route.target_table, self.parent_target_of(state),
                       state.plan.database)
        from ..plan.keycollation import planned_key_collations  # DDL is rare: not imported at start

        sql, blocking = rewrite_for_target(sql, self.plan.target.engine, self.sp.flavor,
                                           planned_key_collations(state.plan))
        key, table = normalize(sql), state.plan.id
        record = self.ddl_record
        with record.locked():
            occ = record.occurrence(route.target_name, key, table, ddl_id)
            if occ.applied_by is not None:
                by = occ.applied_by
                if not occ.seen:
                    record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "already applied")
                    self.warn_if_behind(route.target_name, record.applied_after(route.target_name, by, table), table)
                log.info("%s: DDL (occurrence %d) already applied to %s by %s at %s: %s", self.log_where(), occ.k,
                         route.target_name, by.get("table") or by.get("source"), by.get("position"), key)
                return
            if skip:
                record.record_applied(route.target_name, key, occ.k, self.name, table, ddl_id + " (--skip-ddl)")
                record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "skipped (--skip-ddl)")
                return
            if blocking:
                self.stop_for_ddl(stmt, [state], ddl_id, "; ".join(blocking))
            try:
                self.applier.execute_ddl(sql)
            except TargetError as exc:
                # replayed after a crash between applying and recording: the change is already there
                if not ddl_error_is_already_applied(exc.__context__ or exc):
                    self.stop_for_ddl(stmt, [state], ddl_id, f"the target refused it: {exc}")
            record.record_applied(route.target_name, key, occ.k, self.name, table, ddl_id)
            record.record_seen(route.target_name, key, occ.k, self.name, table, ddl_id, "applied")
        self.cp.ddl_applied += 1
        log.warning("%s: applied DDL to %s (occurrence %d): %s", self.log_where(), route.target_name, occ.k, sql)

    def parent_target_of(self, state: TableState) -> Callable[[str, str], tuple[str, str]]:
        """(source db, table) of a REFERENCES clause -> its target table: the parent's route when
        the plan has it on this source, else the same name in the child's target database."""
        routed = {(t.database, t.table): (t.target_database, t.target_table)
                  for t in self.plan.tables if t.source == self.name}

        def target(db: str, table: str) -> tuple[str, str]:
            return routed.get((db, table), (state.route.target_database, table))
        return target

    def warn_if_behind(self, target_name: str, ahead: list[dict], table: str) -> None:
        """Shards of a merged table apply DDL optimistically: the first shard to meet an
        occurrence runs it, the others skip it. A shard a whole DDL behind another writes its rows
        into a table already changed further (e.g. values of a column this shard drops next,
        into the column another shard re-added): say so, the rows may differ until verified."""
        if not ahead:
            return
        shown = "; ".join(f"{r['statement']} (by {r.get('table') or r.get('source')} at {r.get('position')})"
                          for r in ahead[:3]) + (f" and {len(ahead) - 3} more" if len(ahead) > 3 else "")
        log.warning("%s: target table %s is ahead of shard %s by DDL other shards applied since: %s. Rows this "
                    "shard writes until it reaches those statements may differ from the source: run `migrator "
                    "verify` on %s after sync catches up (keep shards within one DDL of each other)",
                    self.log_where(), target_name, table, shown, target_name)

    def refresh_after_ddl(self, hits: list[TableState], stmt: DdlStatement, ddl_id: str) -> None:
        with self._source_session() as src, self._target_session() as tgt:
            for state in hits:
                t = state.plan
                columns = self.shape_after(stmt, state, read_columns(src, t.database, t.table), src)
                self.ddl_record.record_shape(t.id, ddl_id, columns)
                fresh = self.table_state(t, columns, tgt)
                state.shape, state.route = fresh.shape, fresh.route
            # a DDL may add or drop a foreign key: the cascades are read again, from the catalog as it is now
            self.cascades = self.applier.cascades = load_cascades(src, self.tables,
                                                                  self.copy_state().end)

    def shape_after(self, stmt: DdlStatement, state: TableState, current: list[Column],
                    src: pymysql.connections.Connection) -> list[Column]:
        """The table's columns at this point of the binlog: the earlier shape changed by the
        statement (the source may have changed again since: ADD c / DROP c / ADD c), with the
        source's definitions of added or modified columns; its current shape when the statement
        cannot be followed."""
        entries = columns_after(stmt, state.shape.columns)
        if entries is None:
            return current
        now = {c.name.lower(): c for c in current}
        out: list[Column] = []
        charset: str | None = None
        for entry in entries:
            if isinstance(entry, Column):
                out.append(entry)
            elif entry.name.lower() in now:
                out.append(now[entry.name.lower()])
            else:  # added then dropped again later on the source: built from the statement
                charset = charset or table_charset(src, state.plan.database, state.plan.table)
                out.append(column_from_def(entry, charset))
        return out

    def stop_for_ddl(self, stmt: DdlStatement, hits: list[TableState], ddl_id: str, why: str) -> None:
        names = ", ".join(h.plan.source_name for h in hits)
        raise SourceError(
            f"{self.log_where()}: DDL on {names} cannot be applied safely ({why}): {stmt.sql.strip()[:300]!r}. "
            f"Sync of this source stopped; it resumes at {self.cp.position.file}:{self.cp.position.pos}. Apply the "
            f"equivalent change to the target by hand, then rerun with --skip-ddl {ddl_id} (or re-plan and re-copy)")
