"""The orphan sweep at the copy's end position: cascades a replay over later rows cannot reach.

Sync replays from the copy's start position P over chunks read later, up to at least the copy's
end position E (DESIGN.md); at E the target must equal the source at E. A cascade replayed in
that window matches child rows on the target by the parent's old values, level by level
(cascade.py), so it stops where a level is already missing on the target. Example: a -> b -> c,
ON DELETE CASCADE; after P the source inserts c (child of b) and deletes a (InnoDB removes b
and c; the binlog holds a's row only); the chunks, read later, hold no b and no c. The replay
puts c back (its insert), deletes a, looks for b on the target, finds none, and never reaches c.

Why the fix is exact. InnoDB checks a child row's foreign key when the row is inserted, its key
changes or that foreign key's columns change, with foreign_key_checks=1 (measured on MariaDB
10.11: a re-keyed orphan is refused, an update of another column is not). So a child row whose
last such write in [P, E) ran with checks on had its ON DELETE CASCADE / SET NULL parent then.
If it exists on the source at E in that form, the parent is still there at E, or went with
checks off (a DELETE or re-key of the parent with foreign_key_checks=0 cascades nothing: a
legitimate orphan, binlogged with that flag). Hence, at E, such a row whose parent value was not
released with checks off since its write cannot exist on the source in that form when its parent
is absent on the target, or when a parent row with that value was inserted after the write (the
old parent went in between, invisibly: a cascade from further up), unless a parent was re-keyed
to that value after that insert (ON UPDATE CASCADE may have moved the row there: kept). ON
DELETE CASCADE deletes the row (and, through the cascade machinery, its own children), ON DELETE
SET NULL sets its columns to NULL. Rows whose last checked write ran with checks off are never
touched. The sweep runs once, when the replay reaches E, before anything after E is applied,
parents first along the foreign-key graph, in one target transaction.

Crash safety. The keys are rebuilt by replaying the window: a sync that restarts from a
checkpoint strictly inside (P, E) replays from P again (SourceSync.rewind_into_window), the
checkpoint never moves to E or past it before the sweep ran, and replay and sweep are
idempotent (a kill between the sweep's commit and the checkpoint's write replays the window and
sweeps again, to the same rows).

Copied rows two levels down. A row the copy read (not written in the window) under a row an
invisible cascade removed (a chunk of c read before `DELETE a` cascaded to b and c, the chunk of
b after it) is not reached by the replayed cascade either. For the tables at least two ON DELETE
CASCADE levels below a table the window deleted from (checks on), the sweep reads the target's
rows whose parent is absent (one anti-join per such table) and looks each up on the source, now,
by key: gone there, it is deleted; there with its foreign key NULL, the target's is set NULL;
else it stays (a legitimate orphan, or a row a later event rewrites: the source's current state
is as good as a chunk read later, the replay past E converges on it).

Copied rows moved two levels down. A row the copy read two or more ON UPDATE CASCADE / SET NULL
levels below a row re-keyed in the window (note read, then `UPDATE film SET id = 2` moves fa and,
through fa's key, note; fa read after) is not reached either: the replayed cascade finds fa
already moved. An InnoDB cascade copies the new value down unchanged, so each chain of foreign
keys whose columns carry the re-keyed value maps it (update_chains); the target's rows still
holding an old value are looked up on the source under their own key and, when the chain moves
a key column, under the moved key, and made equal to the source's rows (recheck_moved).

What stays inexact: a grandchild written with checks off under a row the sweep deletes by cascade (the cascade
machinery deletes every child of it); foreign keys added or dropped by a DDL inside the window
(the sweep uses those read when sync started); and an XA transaction held across E (the
checkpoint stays before E, a restart replays the window over rows written after E). `migrator
verify` names such rows.
Cost: one remembered key per child row written in the window (memory), one SELECT per 500 of
them at E (100,000 rows checked, 50,000 removed: 3.6 s on seekdb, sandbox; a 11 s sync), and an
anti-join over each table two delete-cascade levels down.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from ..db import qualified, quote_ident
from ..keys import in_sql
from ..schema.catalog import ForeignKey, TableName
from .copystate import source_copy

if TYPE_CHECKING:
    from ..positions import BinlogPosition
from .apply import ROWS_PER_STATEMENT, Route, RowChange, _delete, _replace, literal_maker
from .cascade import Cascades

log = logging.getLogger(__name__)

# A date with a zero part is text on both sides (Python has no such date), but not the same text:
# the binlog gives '0000-00-00 00:00:00', the target '0000-00-00 00:00:00.000000' for a DATETIME(6).
_ZERO_PART_DATE = re.compile(r"(\d{4}-\d\d-\d\d)((?: \d\d:\d\d:\d\d)?)(?:\.(\d{1,6}))?")


def same_value(value: tuple) -> tuple:
    """A key or foreign-key value as the window compares what the binlog said with what it reads
    back from the databases: a zero-part date's text with its fraction's zeros dropped. (Found by
    the fuzzer: a child keyed by a zero DATETIME(6) stopped sync with a KeyError in the sweep.)"""
    if not any(isinstance(v, str) for v in value):
        return value
    return tuple(_zero_part_date(v) if isinstance(v, str) else v for v in value)


def _zero_part_date(text: str) -> str:
    m = _ZERO_PART_DATE.fullmatch(text)
    if m is None or not (m.group(1).startswith("0000") or "-00" in m.group(1)):
        return text
    fraction = (m.group(3) or "").rstrip("0")
    return m.group(1) + m.group(2) + ("." + fraction if fraction else "")



@dataclass
class WindowSweep:
    """The child rows written with checks on between the copy's start and end positions, and
    the sweep that removes (or nulls) those left without their parent at the end position."""

    cascades: Cascades
    end: tuple[int, int]  # BinlogPosition.key() of the copy's end position (E)
    done: bool = False
    swept: int = 0  # rows deleted or nulled by the sweep (cascaded children included in `statements` only)
    # child table -> key -> {id(fk): sequence number of the last write of fk's columns with checks on}
    keys: dict[TableName, dict[tuple, dict[int, int]]] = field(default_factory=dict)
    released: dict[int, dict[tuple, int]] = field(default_factory=dict)  # id(fk) -> parent value -> seq gone, checks off
    created: dict[int, dict[tuple, int]] = field(default_factory=dict)  # id(fk) -> parent value -> seq of its insert
    moved: dict[int, dict[tuple, int]] = field(default_factory=dict)  # id(fk) -> parent value -> seq re-keyed to it
    seq: int = 0
    deleted_from: set[TableName] = field(default_factory=set)  # parents with a delete replayed, checks on
    rekeyed: dict[int, list[tuple[tuple, tuple]]] = field(default_factory=dict)  # id(fk) -> (old, new), checks on

    def __post_init__(self) -> None:
        c = self.cascades
        self.fks = [fk for fk in c.foreign_keys if fk.on_delete in ("CASCADE", "SET NULL")
                    and c.routes(fk.child) is not None and c.routes(fk.parent) is not None]
        self.of_child: dict[TableName, list[ForeignKey]] = {}
        self.of_parent: dict[TableName, list[ForeignKey]] = {}
        for fk in self.fks:
            self.of_child.setdefault(fk.child, []).append(fk)
            self.of_parent.setdefault(fk.parent, []).append(fk)
        self.chains = update_chains([fk for fk in c.foreign_keys if fk.on_update in ("CASCADE", "SET NULL")
                                     and c.routes(fk.child) is not None and c.routes(fk.parent) is not None])
        self.heads: dict[TableName, list[ForeignKey]] = {}
        for chain in self.chains:
            if chain.top not in self.heads.get(chain.top.parent, []):
                self.heads.setdefault(chain.top.parent, []).append(chain.top)

    def __bool__(self) -> bool:
        return bool(self.fks or self.chains)

    def due(self, at: Any) -> bool:
        """Must the sweep run before a transaction starting (or a checkpoint) at `at`?"""
        return not self.done and at.key() >= self.end

    # ------------------------------------------------------------ remembering the window

    def note(self, changes: Iterable[RowChange]) -> None:
        """One replayed transaction of the window, in binlog order. A child row's foreign key is
        checked by InnoDB when the row is inserted or that key's columns change (checks on); an
        update leaving them alone keeps what was known."""
        if self.done:
            return
        table_of = self.cascades.table_of
        for ch in changes:
            name = table_of.get(ch.route.table_id)
            if name is None:
                continue
            self.seq += 1
            before, after = ch.before or {}, ch.after or {}
            if name in self.of_child:
                seen = self.keys.setdefault(name, {})
                prior = seen.pop(same_value(ch.route.key_of(before)), {}) if ch.before is not None else {}
                if ch.after is not None:
                    marks = {}
                    moved = ch.kind == "insert" or ch.route.key_of(before) != ch.route.key_of(after)
                    for fk in self.of_child[name]:  # a new key is a new row to InnoDB: checked (measured)
                        if moved or any(before.get(c) != after.get(c) for c in fk.columns):
                            if ch.fk_checks:
                                marks[id(fk)] = self.seq
                        elif id(fk) in prior:
                            marks[id(fk)] = prior[id(fk)]
                    key = same_value(ch.route.key_of(after))
                    seen.pop(key, None)
                    if marks:
                        seen[key] = marks
            if ch.kind == "delete" and ch.fk_checks and name in self.cascades.referencing:
                self.deleted_from.add(name)
            if ch.kind == "update" and ch.fk_checks:
                for fk in self.heads.get(name, ()):
                    old, new = (tuple(row.get(c) for c in fk.ref_columns) for row in (before, after))
                    if old != new and None not in old:
                        self.rekeyed.setdefault(id(fk), []).append((old, new))
            for fk in self.of_parent.get(name, ()):
                old = tuple(before.get(c) for c in fk.ref_columns) if ch.before is not None else None
                new = tuple(after.get(c) for c in fk.ref_columns) if ch.after is not None else None
                if ch.kind == "insert" and None not in new:
                    self.created.setdefault(id(fk), {})[same_value(new)] = self.seq
                elif old is not None and new is not None and old != new and None not in new:
                    self.moved.setdefault(id(fk), {})[same_value(new)] = self.seq  # ON UPDATE CASCADE may bring children
                if not ch.fk_checks and old is not None and old != new and None not in old:
                    self.released.setdefault(id(fk), {})[same_value(old)] = self.seq

    # ------------------------------------------------------------ the sweep

    def sweep(self, conn: pymysql.connections.Connection, where: str,
              source: pymysql.connections.Connection | None = None) -> int:
        """Run once at the end position (idempotent); commits. Returns the rows it fixed.
        source: a connection to the source, for the copied rows two levels down (recheck)."""
        if self.done:
            return 0
        remembered = sum(len(k) for k in self.keys.values())
        fixed, started = 0, time.monotonic()
        with conn.cursor() as cur:
            if source is not None:
                with source.cursor() as src:
                    fixed += self.recheck_moved(cur, src)
            for name in self.parents_first():
                keys = list(self.keys.get(name, ()))
                for fk in self.of_child.get(name, ()):
                    for i in range(0, len(keys), ROWS_PER_STATEMENT):
                        fixed += self.fix(cur, fk, keys[i:i + ROWS_PER_STATEMENT])
            if source is not None:
                with source.cursor() as src:
                    fixed += self.recheck_deep(cur, src)
        conn.commit()
        self.done, self.swept = True, fixed
        self.keys, self.released, self.created, self.moved, self.deleted_from = {}, {}, {}, {}, set()
        self.rekeyed = {}
        log.info("%s: at the copy's end position sync checked %d row(s) written while the copy ran and removed or "
                 "nulled %d whose parent a cascade had removed (%.2fs)", where, remembered, fixed,
                 time.monotonic() - started)
        return fixed

    def parents_first(self) -> list[TableName]:
        """The child tables, every parent before its children (a cycle: in any order)."""
        order: list[TableName] = []
        state: dict[TableName, int] = {}

        def visit(t: TableName) -> None:
            if state.get(t):
                return
            state[t] = 1
            for fk in self.of_child.get(t, ()):
                if fk.parent != t:
                    visit(fk.parent)
            state[t] = 2
            if t in self.of_child:
                order.append(t)
        for t in sorted(self.of_child):
            visit(t)
        return order

    def fix(self, cur: Any, fk: ForeignKey, keys: list[tuple]) -> int:
        """Among `keys` of fk's child, the rows that cannot exist on the source at the end position
        (see orphaned): deleted with their cascades (ON DELETE CASCADE) or nulled (SET NULL)."""
        c = self.cascades
        route, parent = c.routes(fk.child), c.routes(fk.parent)
        marks = self.keys.get(fk.child, {})
        keys = [k for k in keys if id(fk) in marks.get(k, {})]
        if route is None or parent is None or not keys:
            return 0
        further = [col for g in c.referencing.get(fk.child, []) for col in g.ref_columns]
        names = list(dict.fromkeys([k for k in route.key if k != route.source_column] + list(fk.columns) + further))
        numeric = c.numeric_columns(cur, route)
        lit = literal_maker(cur.connection)
        join = " AND ".join(f"p.{quote_ident(pc)} = o.{quote_ident(cc)}" for cc, pc in zip(fk.columns, fk.ref_columns))
        if parent.source_column:
            join += f" AND p.{quote_ident(parent.source_column)} = {lit(parent.source_value)}"
        c.statements += 1
        cur.execute(f"SELECT {', '.join('o.' + quote_ident(n) + (' + 0' if n.lower() in numeric else '') for n in names)}, "
                    f"EXISTS (SELECT 1 FROM {qualified(parent.target_database, parent.target_table)} p WHERE {join}) "
                    f"FROM {qualified(route.target_database, route.target_table)} o WHERE "
                    f"{Cascades.where(cur, route, tuple(route.key), keys)} AND "
                    + " AND ".join(f"o.{quote_ident(cc)} IS NOT NULL" for cc in fk.columns))
        rows = []
        for found in cur.fetchall():
            row = dict(zip(names, found[:-1]))
            mark = marks.get(same_value(route.key_of(row)), {}).get(id(fk))
            if mark is None:  # read back in another form than the binlog's: kept, and said (verify decides)
                log.warning("window sweep: %s row %r read back from the target in a form sync did not see in the "
                            "binlog; left as it is (verify compares it)", fk.child, route.key_of(row))
                continue
            if self.orphaned(fk, same_value(tuple(row[cc] for cc in fk.columns)), bool(found[-1]), mark):
                rows.append(row)
        if not rows:
            return 0
        ids = [route.key_of(r) for r in rows]
        seen = {(fk.child, k) for k in ids}
        if fk.on_delete == "CASCADE":
            c.on_delete(cur, fk.child, rows, seen)
            c.statements += 1
            _delete(cur, route, ids)
        else:
            c.statements += 1
            sets = ", ".join(f"{quote_ident(cc)} = NULL" for cc in fk.columns)
            cur.execute(f"UPDATE {qualified(route.target_database, route.target_table)} SET {sets} "
                        f"WHERE {Cascades.where(cur, route, tuple(route.key), ids)}")
            for r in rows:
                after = dict(r)
                after.update({cc: None for cc in fk.columns})
                c.on_update(cur, fk.child, r, after, seen)
        return len(rows)

    def orphaned(self, fk: ForeignKey, value: tuple, has_parent: bool, written: int) -> bool:
        """Can this child row, whose fk columns (holding `value` on the target now) were last
        written with checks on at sequence `written`, not exist on the source at the end position?
        Its parent existed then. If the parent value went with checks off since, it may be a
        legitimate orphan: kept. Else a parent absent now, or inserted again since (so gone in
        between, invisibly: a cascade from further up), means the source removed or nulled it;
        unless a parent was re-keyed to that value after its insert (ON UPDATE CASCADE may have
        moved this row there): kept."""
        if self.released.get(id(fk), {}).get(value, -1) > written:
            return False
        if not has_parent:
            return True
        created = self.created.get(id(fk), {}).get(value, -1)
        return created > written and self.moved.get(id(fk), {}).get(value, -1) < created


    # ------------------------------------------------------------ copied rows two levels down

    def deep_tables(self) -> set[TableName]:
        """Tables whose rows an invisible cascade may have deleted in the window: ON DELETE
        CASCADE children, at any depth, of a table with a delete replayed (checks on)."""
        gone: set[TableName] = set()
        todo = [fk.child for t in self.deleted_from for fk in self.cascades.referencing.get(t, [])
                if fk.on_delete == "CASCADE"]
        while todo:
            t = todo.pop()
            if t not in gone:
                gone.add(t)
                todo += [fk.child for fk in self.cascades.referencing.get(t, []) if fk.on_delete == "CASCADE"]
        return gone

    def recheck_deep(self, cur: Any, src: Any) -> int:
        """Rows the copy read under a parent an invisible cascade removed (a chunk of c read
        before `DELETE a` cascaded to b and c, the chunk of b after it): the replayed cascade
        stops at the missing b. On the target they are rows of a table below a deleted-from
        parent whose own parent is absent. Each is looked up on the source by key, now: gone
        there, it is deleted; there with its foreign key NULL, the target's is set NULL; else
        it stays (a legitimate orphan, or a row a later event rewrites). Parents first; a table
        referencing itself until nothing changes. Cost: one anti-join over each such table."""
        gone = self.deep_tables()
        fixed = 0
        for name in self.parents_first():
            for fk in self.of_child.get(name, ()):
                if fk.parent not in gone:
                    continue
                for _ in range(20 if fk.parent == fk.child else 1):
                    n = self.recheck_fk(cur, src, fk)
                    fixed += n
                    if not n:
                        break
        return fixed

    def recheck_fk(self, cur: Any, src: Any, fk: ForeignKey) -> int:
        c = self.cascades
        route, parent = c.routes(fk.child), c.routes(fk.parent)
        if route is None or parent is None:
            return 0
        lit = literal_maker(cur.connection)
        key = [k for k in route.key if k != route.source_column]
        names = list(dict.fromkeys(key + list(fk.columns)))
        join = " AND ".join(f"p.{quote_ident(pc)} = o.{quote_ident(cc)}" for cc, pc in zip(fk.columns, fk.ref_columns))
        if parent.source_column:
            join += f" AND p.{quote_ident(parent.source_column)} = {lit(parent.source_value)}"
        mine = f" AND o.{quote_ident(route.source_column)} = {lit(route.source_value)}" if route.source_column else ""
        c.statements += 1
        cur.execute(f"SELECT {', '.join('o.' + quote_ident(n) for n in names)} FROM "
                    f"{qualified(route.target_database, route.target_table)} o WHERE "
                    + " AND ".join(f"o.{quote_ident(cc)} IS NOT NULL" for cc in fk.columns) + mine
                    + f" AND NOT EXISTS (SELECT 1 FROM {qualified(parent.target_database, parent.target_table)} p "
                    f"WHERE {join})")
        orphans = [dict(zip(names, r)) for r in cur.fetchall()]
        fixed = 0
        for i in range(0, len(orphans), ROWS_PER_STATEMENT):
            part = orphans[i:i + ROWS_PER_STATEMENT]
            keys = [tuple(r[k] for k in key) for r in part]
            there = source_rows(src, fk.child, names, key, keys, lit)
            rest = names[len(key):]  # the foreign key's columns outside the key
            missing = [route.key_of(r) for r, k in zip(part, keys) if k not in there]
            nulled = [route.key_of(r) for r, k in zip(part, keys)
                      if k in there and all(there[k][c] is None for c in rest)]
            if missing:
                c.statements += 1
                _delete(cur, route, missing)
            if nulled:
                c.statements += 1
                sets = ", ".join(f"{quote_ident(cc)} = NULL" for cc in fk.columns)
                cur.execute(f"UPDATE {qualified(route.target_database, route.target_table)} SET {sets} "
                            f"WHERE {Cascades.where(cur, route, tuple(route.key), nulled)}")
            fixed += len(missing) + len(nulled)
        return fixed

    # ------------------------------------------------------------ copied rows moved two levels down

    def recheck_moved(self, cur: Any, src: Any) -> int:
        """Rows the copy read two or more ON UPDATE levels below a row re-keyed in the window (a
        chunk of note read before `UPDATE film SET id = 2` moved fa and, through fa's key, note;
        the chunk of fa after it): the replayed cascade from film finds fa already moved and
        reaches nothing below. Each chain maps the re-key down to the columns it reaches
        (update_chains); the target's rows still holding an old value are looked up on the source,
        now, under their own key and, when the chain moves a key column, under the moved key, and
        those keys are made equal to the source's rows (absent there: deleted; there: written as
        they are). The source's current rows are as good as a chunk read later: the replay past the
        end position converges on them. Cost: one indexed SELECT per 500 old values per chain."""
        fixed = 0
        for chain in self.chains:
            pairs = self.rekeyed.get(id(chain.top))
            route = self.cascades.routes(chain.table)
            if not pairs or route is None:
                continue
            onward: dict[tuple, set[tuple]] = {}
            for old, new in pairs:
                onward.setdefault(old, set()).add(new)
            olds = list(onward)
            for i in range(0, len(olds), ROWS_PER_STATEMENT):
                fixed += self.recheck_chain(cur, src, chain, route, olds[i:i + ROWS_PER_STATEMENT], onward)
        return fixed

    def recheck_chain(self, cur: Any, src: Any, chain: UpdateChain, route: Route, olds: list[tuple],
                      onward: dict[tuple, set[tuple]]) -> int:
        c = self.cascades
        columns = tuple(chain.reach)
        key = [k for k in route.key if k != route.source_column]
        names = list(dict.fromkeys(key + list(columns)))
        numeric = c.numeric_columns(cur, route)
        c.statements += 1
        cur.execute(f"SELECT {', '.join(quote_ident(n) + (' + 0' if n.lower() in numeric else '') for n in names)} "
                    f"FROM {qualified(route.target_database, route.target_table)} WHERE "
                    + Cascades.where(cur, route, columns, [tuple(o[chain.reach[col]] for col in columns) for o in olds]))
        found = [dict(zip(names, r)) for r in cur.fetchall()]
        if not found:
            return 0
        own = {tuple(r[k] for k in key) for r in found}
        wanted = set(own)
        if chain.exact and set(columns) & set(key):
            by_old = {same_value(tuple(o[chain.reach[col]] for col in columns)): o for o in olds}
            for r in found:
                for new in reachable(onward, by_old[same_value(tuple(r[col] for col in columns))]):
                    moved = dict(r, **{col: new[chain.reach[col]] for col in columns})
                    wanted.add(tuple(moved[k] for k in key))
        plain = [col for col in route.columns if col != route.source_column]
        there: dict[tuple, dict[str, Any]] = {}
        lit = literal_maker(cur.connection)
        wanted_list = sorted(wanted, key=repr)
        for i in range(0, len(wanted_list), ROWS_PER_STATEMENT):
            there.update(source_rows(src, chain.table, plain, key, wanted_list[i:i + ROWS_PER_STATEMENT], lit))
        gone = [route.key_of(dict(zip(key, k))) for k in sorted(own - set(there), key=repr)]
        if gone:
            c.statements += 1
            _delete(cur, route, gone)
        if there:
            c.statements += 1
            _replace(cur, route, list(there.values()))
        return len(gone) + len(there)


@dataclass(frozen=True)
class UpdateChain:
    """A table two or more ON UPDATE CASCADE / SET NULL levels below `top`'s parent, reached
    through columns each level's cascade changes: `reach` maps the table's columns to the index,
    in top's referenced columns, of the value they hold (an InnoDB cascade copies the new value
    down unchanged). `exact`: every level cascades (no SET NULL), so a re-key's new value is the
    moved row's new value."""

    top: ForeignKey
    table: TableName
    reach: dict[str, int]
    exact: bool


def update_chains(fks: list[ForeignKey]) -> list[UpdateChain]:
    """Every table two or more levels below a re-keyable parent through ON UPDATE actions whose
    columns carry the re-keyed value (fa(film_id) -> film(id), note(film_id, actor_id) ->
    fa(film_id, actor_id): note is reached; a middle level whose cascade changes columns the
    next level does not reference stops the chain)."""
    below: dict[TableName, list[ForeignKey]] = {}
    for fk in fks:
        below.setdefault(fk.parent, []).append(fk)
    chains: list[UpdateChain] = []
    for top in fks:
        todo = [(top.child, {cc: i for i, cc in enumerate(top.columns)}, top.on_update == "CASCADE",
                 frozenset({top.parent, top.child}))]
        while todo:
            table, reach, exact, seen = todo.pop()
            for fk in below.get(table, ()):
                nxt = {cc: reach[pc] for cc, pc in zip(fk.columns, fk.ref_columns) if pc in reach}
                if nxt and fk.child not in seen:
                    chain = UpdateChain(top, fk.child, nxt, exact and fk.on_update == "CASCADE")
                    chains.append(chain)
                    todo.append((fk.child, nxt, chain.exact, seen | {fk.child}))
    return chains


def reachable(onward: dict[tuple, set[tuple]], old: tuple) -> set[tuple]:
    """The values a re-keyed value moved to in the window, directly or through later re-keys."""
    out: set[tuple] = set()
    todo = [old]
    while todo:
        for new in onward.get(todo.pop(), ()):
            if new not in out:
                out.add(new)
                todo.append(new)
    return out


def source_rows(src: Any, table: TableName, names: list[str], key: list[str], keys: list[tuple],
                lit: Any) -> dict[tuple, dict[str, Any]]:
    """The source's rows of `table` under `keys` now (one statement): key -> {column: value}."""
    src.execute(f"SELECT {', '.join(quote_ident(n) for n in names)} FROM {qualified(*table)} WHERE "
                + in_sql(key, keys, lit))
    out = {}
    for row in src.fetchall():
        values = dict(zip(names, row))
        out[tuple(values[k] for k in key)] = values
    return out


def window_sweep(cascades: Cascades | None, copy_end: Any, read_from: Any) -> WindowSweep | None:
    """The sweep this replay owes, or None: no cascading foreign key among synced tables, the
    copy's end position unknown, or the replay starts at or past it."""
    if cascades is None or copy_end is None or read_from.key() >= copy_end.key():
        return None
    sweep = WindowSweep(cascades, copy_end.key())
    return sweep if sweep else None


class WindowReplay:
    """SourceSync's part of the sweep: rewind into the window on a restart, run it when due."""

    def rewind_into_window(self) -> bool:
        """A restart strictly between the copy's start and end positions, with an orphan sweep
        owed at the end: replay from the copy's start again, so the sweep knows every row the
        window wrote (window.py; the replay is idempotent). True when it rewound."""
        start = source_copy(self.workdir, self.plan, self.name).start
        if self.window is None or start is None or self.cp.position.key() <= start.key():
            return False
        log.info("%s: sync stopped at %s:%s, inside the copy's window; replaying from the copy's start %s:%s again "
                 "(the sweep at the copy's end needs the rows the window wrote)", self.log_where(),
                 self.cp.position.file, self.cp.position.pos, start.file, start.pos)
        self.cp.position = start.model_copy()
        self._gtid = start.gtid
        self._track_gtid = bool(self._gtid)
        return True

    def sweep_window_if_due(self, at: BinlogPosition) -> None:
        """Before anything at or after the copy's end position is applied: everything before it on
        the target, then the orphan sweep (window.py), once."""
        if self.window is None or not self.window.due(at):
            return
        self.flush()  # the checkpoint may reach the end position here: save_checkpoint sweeps first
        self.run_window_sweep()

    def run_window_sweep(self) -> None:
        window = self.window
        if window is None or window.done:
            return
        from ..copy.faults import fault_point
        from ..db import connect

        fault_point("sync_window_sweep")  # crash tests: the target at the copy's end, not yet swept
        with connect(self.target, "target", autocommit=False) as tgt, self._source_session() as src:
            window.sweep(tgt, self.log_where(), src)  # target: foreign_key_checks=0, one transaction
        fault_point("sync_window_swept")  # crash tests: swept, the checkpoint not yet past the copy's end
