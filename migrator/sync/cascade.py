"""Foreign-key cascades the source's binlog does not hold, reproduced by sync.

InnoDB runs ON DELETE / ON UPDATE CASCADE and SET NULL inside the storage engine: MariaDB 10.11
(and MySQL 8) write only the parent's row event, never the children's deletes and updates
(measured; DESIGN.md). Sync's target sessions run with foreign_key_checks=0, which on seekdb and
MySQL also turns the target's own cascades off (measured on seekdb 1.4: with checks=0, DELETE and
REPLACE of a parent leave its children alone; with checks=1, a REPLACE of a parent deleted its
ON DELETE CASCADE children and nulled its SET NULL ones). So sync does what InnoDB did:

- a parent row deleted: for every foreign key referencing its table, ON DELETE CASCADE deletes
  the child rows holding the parent's old values (their own children first, recursively, as
  InnoDB does), ON DELETE SET NULL sets those columns to NULL;
- a parent row whose referenced columns change: ON UPDATE CASCADE sets the children's columns to
  the new values, ON UPDATE SET NULL to NULL; when those child columns are referenced further
  (a composite key of a link table, say) the grandchildren follow, recursively;
- RESTRICT / NO ACTION need nothing: a source statement they would stop is not in the binlog;
- a statement run with foreign_key_checks=0 on the source cascades nothing there (measured): its
  rows event carries the NO_FOREIGN_KEY_CHECKS flag, and sync cascades nothing for it either.

The foreign keys come from the plan (`Plan.foreign_keys`, when the plan format has them), else
from the source's catalog when sync starts, and from the catalog again after every DDL sync
replays (one may add or drop a foreign key). The catalog is the source's state now, not at the
replayed position: a foreign key added or dropped on the source after the copy started and
before sync reaches that DDL applies to the whole replay up to it.

Order. A cascade takes effect at the parent event's place in binlog order: a transaction that
deletes parent 1 (its child 10 goes with it), inserts parent 1 again and then child 10 must end
with child 10 present. The applier's fold (`net_effect`) and its spreading of keys over worker
connections would lose that order, so a batch holding any cascading change is applied on one
connection, in ONE target transaction, in binlog order: runs of plain changes folded as usual,
each cascading change with its cascade statements at its place. Batches without one take the
usual parallel path untouched (no foreign keys with actions: no cost at all). One transaction
per batch also keeps a crash exact: the target never holds part of such a batch, so a restart
replays it against exactly the state at the checkpoint.

Replay against later state (why it converges). Sync replays from the copy's start position P,
while chunks were read later: during that first replay, and only then, the target may hold rows
newer than the event being replayed. A cascade statement matches child rows by the parent's old
values (WHERE fk = old), not by the keys the source touched, so it can touch a child row the
source did not: a row the target holds with fk = old although at the source, at that moment,
no such row existed (the cascade removed or changed every child of that parent). That row's
state therefore came from a later moment, and the change that gave it fk = old is later in the
binlog: an insert or update of that row (replayed after this cascade, rewriting it in full), or
another cascade. Deletes and SET NULL never produce fk = old, so with ON DELETE actions and
ON UPDATE SET NULL the row is always rewritten later by a logged event: replay converges. Only
ON UPDATE CASCADE can give a row fk = old without a logged event, and only when a parent key
value is used again (re-keyed or deleted, then given to another parent row) while the copy was
still running: that replay is the one case not exact, and sync says so (`Cascades.watch_reuse`)
naming the tables to verify. The argument needs the cascade to find the rows of each level on
the target: where a level is already gone (the chunks were read after the source's cascade),
the replay cannot reach the level below, and rows written there during the window stay; the
sweep at the copy's end (window.py) removes them. A cascade that moves child rows to another key (the foreign key is
part of the child's key) writes them by REPLACE, as sync writes every row: a newer row the
target holds at that key gives way, as it does to any replayed update, and is rewritten later.
Past the copy's end position the target holds exactly the state at the checkpoint, and every
cascade is exact (an XA transaction left prepared holds the checkpoint back: a restart then
replays later batches too, the same argument applies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pymysql

from ..db import qualified, quote_ident
from ..keys import in_sql
from ..schema.catalog import ACTIONS, ForeignKey, TableName, read_foreign_keys
from .apply import ROWS_PER_STATEMENT, Route, RowChange, _delete, _group, _replace, literal_maker, net_effect

log = logging.getLogger(__name__)

NO_FOREIGN_KEY_CHECKS = 0x0002  # a rows event's flag: its statement ran with foreign_key_checks=0
KNOWN_RULES = ACTIONS + ("RESTRICT", "NO ACTION")  # SET DEFAULT: InnoDB turns it into RESTRICT


@dataclass
class Cascades:
    """The cascading foreign keys among one source's synced tables, and how to apply them.

    routes: (database, table) -> the table's current Route (replaced on DDL, so looked up on use);
    a table not in it is not synced by this source: nothing cascades into it."""

    foreign_keys: list[ForeignKey]
    routes: Callable[[TableName], Route | None]
    table_of: dict[str, TableName]  # Route.table_id -> (database, table)
    statements: int = 0  # cascade statements run (child DELETE / UPDATE / REPLACE, SELECT of their keys)
    copy_end: tuple[int, int] | None = None  # BinlogPosition.key() of the copy's end: see watch_reuse
    # parent tables -> the foreign keys with an action referencing them from a synced child
    referencing: dict[TableName, list[ForeignKey]] = field(init=False)
    _parents: dict[str, list[ForeignKey]] = field(init=False)  # Route.table_id -> the same

    def __post_init__(self) -> None:
        self.referencing = {}
        for fk in self.foreign_keys:
            if fk.cascades and self.routes(fk.child) is not None:
                self.referencing.setdefault(fk.parent, []).append(fk)
        self._parents = {tid: self.referencing[t] for tid, t in self.table_of.items() if t in self.referencing}
        # parents with an ON UPDATE CASCADE child: their referenced columns, the values cascaded away
        self._watched = {tid: sorted({fk.ref_columns for fk in fks if fk.on_update == "CASCADE"})
                         for tid, fks in self._parents.items() if any(fk.on_update == "CASCADE" for fk in fks)}
        self._gone: dict[tuple[str, tuple[str, ...]], set[tuple]] = {}
        self._numeric: dict[str, set[str]] = {}  # target table -> its ENUM/SET columns (see read_rows)
        self._warned: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self._parents)

    # ------------------------------------------------------------ which changes cascade

    def cascading(self, ch: RowChange) -> bool:
        """Would InnoDB have changed child rows for this change (children present)?"""
        fks = self._parents.get(ch.route.table_id)
        if not fks or ch.kind == "insert" or not ch.fk_checks:
            return False
        if ch.kind == "delete":
            return any(fk.on_delete in ACTIONS for fk in fks)
        before, after = ch.before or {}, ch.after or {}
        return any(fk.on_update in ACTIONS and any(before.get(c) != after.get(c) for c in fk.ref_columns) for fk in fks)

    def any_cascading(self, changes: list[RowChange]) -> bool:
        parents = self._parents
        return any(ch.kind != "insert" and ch.route.table_id in parents and self.cascading(ch) for ch in changes)

    def watch_reuse(self, changes: list[RowChange], at: Any, where: str) -> None:
        """Say when replay may not be exact (module doc): a transaction read before the copy's end
        position gives a parent row a referenced value that an earlier change in that stretch
        deleted or re-keyed away, on a parent with an ON UPDATE CASCADE child. Called by the
        reader per transaction, in binlog order; `at` is where the transaction starts."""
        if not self._watched or self.copy_end is None or at.key() >= self.copy_end:
            return
        for ch in changes:
            watched = self._watched.get(ch.route.table_id)
            if not watched:
                continue
            for cols in watched:
                gone = self._gone.setdefault((ch.route.table_id, cols), set())
                old = tuple(ch.before.get(c) for c in cols) if ch.before is not None else None
                new = tuple(ch.after.get(c) for c in cols) if ch.after is not None else None
                if old is not None and old != new:
                    gone.add(old)
                if new is not None and new != old and new in gone:
                    self.warn_reuse(ch.route, cols, new, where)

    def warn_reuse(self, route: Route, cols: tuple[str, ...], value: tuple, where: str) -> None:
        if route.table_id in self._warned:
            return
        self._warned.add(route.table_id)
        parent = self.table_of[route.table_id]
        children = sorted({f"{fk.database}.{fk.table}" for fk in self.referencing.get(parent, [])
                           if fk.on_update == "CASCADE" and fk.ref_columns == cols})
        log.warning("%s: %s.%s key %s was used again by another row while the copy ran; sync replays the ON "
                    "UPDATE CASCADE of %s over rows copied later, which is exact unless those children were moved "
                    "between the two rows. Once sync has caught up, run `migrator verify` on %s and re-copy a table "
                    "it reports", where, parent[0], parent[1], ", ".join(f"{c}={v!r}" for c, v in zip(cols, value)),
                    ", ".join(children), ", ".join(children))

    # ------------------------------------------------------------ applying a batch in order

    def apply_in_order(self, conn: pymysql.connections.Connection, changes: list[RowChange],
                       before_commit: Callable[[pymysql.connections.Connection], None] | None = None) -> None:
        """The whole batch in one transaction, in binlog order (see the module doc); commits.
        Consecutive cascading deletes of one table (one DELETE of many parents) go together.
        before_commit(conn): the sync checkpoint covering the batch, in the same transaction: a
        restart never replays a batch the target committed (replaying `INSERT grandchild;
        DELETE grandparent` over a target that already ran the cascade would leave the
        grandchild: its parent is gone, nothing cascades to it)."""
        with conn.cursor() as cur:
            run: list[RowChange] = []  # plain changes since the last cascading one
            deletes: list[RowChange] = []  # consecutive cascading deletes of one table
            for ch in changes:
                if not self.cascading(ch):
                    if deletes:
                        self.apply_deletes(cur, deletes)
                        deletes = []
                    run.append(ch)
                    continue
                apply_folded(cur, run)
                run = []
                if deletes and (ch.kind != "delete" or deletes[0].route is not ch.route
                                or len(deletes) >= ROWS_PER_STATEMENT):
                    self.apply_deletes(cur, deletes)
                    deletes = []
                if ch.kind == "delete":
                    deletes.append(ch)
                else:
                    self.apply_update(cur, ch)
            if deletes:
                self.apply_deletes(cur, deletes)
            apply_folded(cur, run)
        if before_commit is not None:
            before_commit(conn)
        conn.commit()

    def apply_deletes(self, cur: Any, deletes: list[RowChange]) -> None:
        """Parent rows of one table deleted: what InnoDB did to their children, then the rows."""
        route = deletes[0].route
        parent = self.table_of[route.table_id]
        keys = [route.key_of(ch.before or {}) for ch in deletes]
        self.on_delete(cur, parent, [ch.before or {} for ch in deletes], {(parent, k) for k in keys})
        _delete(cur, route, keys)

    def apply_update(self, cur: Any, ch: RowChange) -> None:
        """A parent row whose referenced columns change: the row, then its children."""
        route = ch.route
        parent = self.table_of[route.table_id]
        before, after = ch.before or {}, ch.after or {}
        kb, ka = route.key_of(before), route.key_of(after)
        if ka != kb:
            _delete(cur, route, [kb])
        _replace(cur, route, [after])
        self.on_update(cur, parent, before, after, {(parent, kb), (parent, ka)})

    def on_delete(self, cur: Any, parent: TableName, rows: list[Mapping[str, Any]], seen: set) -> None:
        """InnoDB's ON DELETE action of every foreign key referencing `parent`, for its `rows`."""
        for fk in self.referencing.get(parent, ()):
            route = self.routes(fk.child) if fk.on_delete in ACTIONS else None
            if route is None:
                continue  # RESTRICT / NO ACTION, or a child this source does not sync (plan says so)
            olds = list(dict.fromkeys(v for v in (tuple(r.get(c) for c in fk.ref_columns) for r in rows)
                                      if None not in v))  # no child references a NULL
            if not olds:
                continue
            if fk.on_delete == "CASCADE":
                self.delete_children(cur, fk, route, olds, seen)
            else:
                self.update_children(cur, fk, route, olds, (None,) * len(fk.columns), seen)

    def on_update(self, cur: Any, parent: TableName, before: Mapping[str, Any], after: Mapping[str, Any],
                  seen: set) -> None:
        """InnoDB's ON UPDATE action of every foreign key referencing `parent`, for one row."""
        for fk in self.referencing.get(parent, ()):
            old = tuple(before.get(c) for c in fk.ref_columns)
            new = tuple(after.get(c) for c in fk.ref_columns)
            route = self.routes(fk.child) if fk.on_update in ACTIONS else None
            if route is None or new == old or None in old:
                continue
            self.update_children(cur, fk, route, [old], new if fk.on_update == "CASCADE" else (None,) * len(new), seen)

    def delete_children(self, cur: Any, fk: ForeignKey, route: Route, olds: list[tuple], seen: set) -> None:
        where = self.where(cur, route, fk.columns, olds)
        if any(g.on_delete in ACTIONS for g in self.referencing.get(fk.child, [])):
            # grandchildren first: read the children's referenced values before they go
            rows = []
            for row in self.read_rows(cur, route, where, [c for g in self.referencing[fk.child] for c in g.ref_columns]):
                ident = (fk.child, route.key_of(row))
                if ident not in seen:  # a self-reference's cycle
                    seen.add(ident)
                    rows.append(row)
            if rows:
                self.on_delete(cur, fk.child, rows, seen)
        self.statements += 1
        cur.execute(f"DELETE FROM {qualified(route.target_database, route.target_table)} WHERE {where}")

    def update_children(self, cur: Any, fk: ForeignKey, route: Route, olds: list[tuple], new: tuple,
                        seen: set) -> None:
        """Child rows holding one of `olds` get `new` in the foreign key's columns."""
        where = self.where(cur, route, fk.columns, olds)
        # foreign keys referencing columns this update changes (a link table's composite key, say)
        further = [g for g in self.referencing.get(fk.child, [])
                   if g.on_update in ACTIONS and set(g.ref_columns) & set(fk.columns)]
        if further:
            for row in self.read_rows(cur, route, where, list(fk.columns) + [c for g in further for c in g.ref_columns]):
                ident = (fk.child, route.key_of(row))
                if ident in seen:
                    continue
                seen.add(ident)
                changed = dict(row)
                changed.update(zip(fk.columns, new))
                self.on_update(cur, fk.child, row, changed, seen)
        lit = literal_maker(cur.connection)
        table = qualified(route.target_database, route.target_table)
        if route.serial or set(fk.columns) & set(route.key):
            # the rows move to other keys (or may meet another unique key): written like every row sync
            # writes, by REPLACE, so a row the target holds there (newer, copied after this event) gives
            # way as it would to a replayed update, instead of failing the batch with a duplicate key
            new_of = {c.lower(): lit(v) for c, v in zip(fk.columns, new)}
            picked = ", ".join(new_of.get(c.lower(), quote_ident(c)) for c in route.columns)
            self.statements += 2
            cur.execute(f"REPLACE INTO {table} ({', '.join(quote_ident(c) for c in route.columns)}) "
                        f"SELECT {picked} FROM {table} WHERE {where}")
            cur.execute(f"DELETE FROM {table} WHERE {where}")
            return
        sets = ", ".join(f"{quote_ident(c)} = {lit(v)}" for c, v in zip(fk.columns, new))
        self.statements += 1
        cur.execute(f"UPDATE {table} SET {sets} WHERE {where}")

    def read_rows(self, cur: Any, route: Route, where: str, columns: list[str]) -> list[dict[str, Any]]:
        """The child rows a cascade is about to change: their sync key and the named columns.
        ENUM and SET values are read as numbers, as row images carry them: seekdb refuses a label
        compared with an indexed ENUM (error 1210) when the next level's WHERE uses them."""
        names = list(dict.fromkeys([k for k in route.key if k != route.source_column] + columns))
        numeric = self.numeric_columns(cur, route)
        self.statements += 1
        cur.execute(f"SELECT {', '.join(quote_ident(c) + (' + 0' if c.lower() in numeric else '') for c in names)} "
                    f"FROM {qualified(route.target_database, route.target_table)} WHERE {where}")
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def numeric_columns(self, cur: Any, route: Route) -> set[str]:
        """The target table's ENUM and SET columns (lower-case names), read once per table."""
        known = self._numeric.get(route.target_name)
        if known is None:
            cur.execute("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND "
                        "TABLE_NAME = %s AND DATA_TYPE IN ('enum', 'set')", (route.target_database, route.target_table))
            known = self._numeric[route.target_name] = {str(r[0]).lower() for r in cur.fetchall()}
        return known

    @staticmethod
    def where(cur: Any, route: Route, columns: tuple[str, ...], values: list[tuple]) -> str:
        """The rows holding one of `values` in `columns` (one shard's, when the target merges shards)."""
        lit = literal_maker(cur.connection)
        term = in_sql(columns, values, lit)
        if route.source_column:
            term += f" AND {quote_ident(route.source_column)} = {lit(route.source_value)}"
        return term


def unchecked(changes: list[RowChange], start: int) -> None:
    """Mark the changes from `start` on as written with foreign_key_checks=0 (the rows event's
    flag): InnoDB performs no cascade then (measured on MariaDB 10.11), so neither does sync."""
    for ch in changes[start:]:
        ch.fk_checks = False


def apply_folded(cur: Any, changes: list[RowChange]) -> None:
    """A run of plain changes on one connection: folded to one final state per key, every
    delete before every replace (the applier's rule; see apply.py)."""
    if not changes:
        return
    groups = _group(net_effect(changes))
    for route, deletes, _ in groups:
        for i in range(0, len(deletes), ROWS_PER_STATEMENT):
            _delete(cur, route, deletes[i:i + ROWS_PER_STATEMENT])
    for route, _, replaces in groups:
        for i in range(0, len(replaces), ROWS_PER_STATEMENT):
            _replace(cur, route, replaces[i:i + ROWS_PER_STATEMENT])


def foreign_keys_from_plan(plan: Any, source: str) -> list[ForeignKey] | None:
    """This source's foreign keys as the plan recorded them (`Plan.foreign_keys`: tables named by
    TablePlan.id, instance/db.table); None when the plan has no foreign-key graph (an older plan)."""
    recorded = getattr(plan, "foreign_keys", None)
    if recorded is None:
        return None
    return source_foreign_keys(recorded, plan.tables, source)


def source_foreign_keys(recorded: Iterable[Any], tables: Iterable[Any], source: str) -> list[ForeignKey]:
    """One source's entries of a plan's foreign-key graph, as cascade ForeignKeys."""
    names = {t.id: (t.database, t.table) for t in tables}
    prefix = f"{source}/"

    def name_of(table_id: str) -> TableName:
        if table_id in names:
            return names[table_id]
        db, _, table = table_id[len(prefix):].partition(".")  # a parent outside the plan
        return (db, table)

    out = []
    for fk in recorded:
        if not fk.table.startswith(prefix):
            continue
        (db, table), (pdb, ptable) = name_of(fk.table), name_of(fk.parent)
        out.append(ForeignKey(name=fk.name, database=db, table=table, columns=tuple(fk.columns), ref_database=pdb,
                              ref_table=ptable, ref_columns=tuple(fk.parent_columns), on_delete=str(fk.on_delete),
                              on_update=str(fk.on_update)))
    return out


def load_cascades(src: pymysql.connections.Connection, tables: Mapping[TableName, Any],
                  copy_end: Any = None, planned: list[ForeignKey] | None = None) -> Cascades | None:
    """The cascades among this source's synced tables (`tables`: (database, table) -> state with
    a `.route`): the plan's foreign keys (`planned`), else the source's catalog now; None when no
    synced table is the parent of one. copy_end: the copy's end BinlogPosition (where replay
    becomes exact), if known."""
    fks = planned if planned is not None else read_foreign_keys(src, {db for db, _ in tables})
    cascades = Cascades(fks, routes=lambda t: tables[t].route if t in tables else None,
                        table_of={state.route.table_id: name for name, state in tables.items()},
                        copy_end=copy_end.key() if copy_end is not None else None)
    if not cascades:
        return None
    for fk in fks:
        if fk.cascades and fk.parent in tables and fk.child in tables:
            log.info("sync reproduces the cascades of %s", fk.describe())
    return cascades
