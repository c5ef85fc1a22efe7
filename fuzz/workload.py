"""Random application-shaped transactions on the source, drawn from the run's seed.

Shapes: multi-statement transactions over several tables, inserts, updates, primary-key changes,
deletes, delete-and-reinsert of the same key, upserts (ON DUPLICATE KEY UPDATE, REPLACE),
SAVEPOINT with ROLLBACK TO / RELEASE (nested too), whole-transaction ROLLBACK, XA (START, END,
PREPARE, COMMIT or ROLLBACK, and COMMIT ONE PHASE), big transactions (bulk inserts with a
savepoint inside, table-wide updates and deletes), ADD/DROP COLUMN, and FLUSH BINARY LOGS at
random moments (between transactions, and from a second session inside an open transaction).
With foreign keys: child rows mostly reference existing parent keys (sampled from the source),
parents that have children are deleted and re-keyed (so cascades fire), and sometimes a
statement runs with `SET foreign_key_checks=0` (no cascade on the source, none to reproduce).

The workload is one application thread: given the seed and the tables, the statements it runs
and so the source's final content are the same on every run (rows to change are sampled with
`ORDER BY RAND(n)` from the source itself). DDL waits for `ddl_allowed` (copy refuses a table
whose shape changed under it), so it does not depend on timing either."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pymysql

from migrator.db import quote_ident

from .schema_gen import ColumnSpec, ForeignKeySpec, TableSpec, add_column_spec

# statement errors an application meets and carries on after (the statement alone is undone)
EXPECTED_ERRORS = {1062: "duplicate key", 1264: "out of range", 1406: "too long", 1366: "bad string",
                   1292: "bad datetime", 1265: "truncated", 1048: "null", 1451: "fk", 1452: "fk",
                   1467: "auto-increment exhausted"}


@dataclass
class WorkloadConfig:
    transactions: int = 200
    big_rows: int = 2000  # rows of a big transaction (soak: 100k+)
    big_every: int = 60  # about one big transaction per this many
    ddl: bool = True
    xa: bool = True
    flush: bool = True
    pace: float = 0.0  # seconds between transactions
    ddl_after: int | None = None  # transaction index from which DDL may run (default: a third)


@dataclass
class WorkloadStats:
    transactions: int = 0
    committed: int = 0
    rolled_back: int = 0
    savepoints: int = 0
    rollback_to: int = 0
    xa_committed: int = 0
    xa_rolled_back: int = 0
    big: int = 0
    big_rows: int = 0
    flushes: int = 0
    ddl: int = 0
    statements: int = 0
    fk_parent_ops: int = 0  # deletes and key changes of parent rows that had children
    fk_unchecked: int = 0  # statements run with foreign_key_checks=0
    expected_errors: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # one line per transaction: index, shape

    def summary(self) -> str:
        return (f"{self.transactions} tx ({self.committed} commit, {self.rolled_back} rollback, {self.xa_committed} XA "
                f"commit, {self.xa_rolled_back} XA rollback, {self.savepoints} savepoints, {self.rollback_to} rollback-to, "
                f"{self.big} big/{self.big_rows} rows, {self.ddl} DDL, {self.flushes} flushes"
                + (f", {self.fk_parent_ops} parent deletes/re-keys with children, {self.fk_unchecked} with "
                   f"foreign_key_checks=0" if self.fk_parent_ops or self.fk_unchecked else "") + ")")


class Workload:
    def __init__(self, connect, db: str, tables: list[TableSpec], seed: int, cfg: WorkloadConfig,
                 ddl_allowed: threading.Event | None = None, stop: threading.Event | None = None):
        self.connect, self.db, self.tables, self.seed, self.cfg = connect, db, tables, seed, cfg
        self.rnd = random.Random(f"{seed}:workload")
        self.ddl_allowed = ddl_allowed or threading.Event()
        self.stop = stop or threading.Event()
        self.big_committed = threading.Event()
        self.last_big = ""  # what the last big transaction was (kills after it say so)
        self.stats = WorkloadStats()
        self.by_name = {t.name: t for t in tables}
        self.ops = self.OPS + (self.FK_OPS if any(t.fks for t in tables) else [])
        self.error: BaseException | None = None
        self.conn: pymysql.connections.Connection | None = None
        self.side: pymysql.connections.Connection | None = None

    # ------------------------------------------------------------ driving
    def run(self) -> WorkloadStats:
        self.conn, self.side = self.connect(autocommit=False), self.connect(autocommit=True)
        try:
            ddl_after = self.cfg.ddl_after if self.cfg.ddl_after is not None else self.cfg.transactions // 3
            for n in range(self.cfg.transactions):
                if self.stop.is_set():
                    break
                if n == ddl_after:
                    while not self.ddl_allowed.wait(0.2):
                        if self.stop.is_set():
                            return self.stats
                self.transaction(n, ddl=n >= ddl_after and self.cfg.ddl)
                if self.cfg.pace:
                    time.sleep(self.cfg.pace)
            if self.cfg.flush and self.rnd.random() < 0.5:  # the application goes idle right after a rotation
                self.stats.log.append("end flush")
                self.flush(self.side)
        finally:
            self.conn.close()
            self.side.close()
        return self.stats

    def thread(self) -> threading.Thread:
        def body():
            try:
                self.run()
            except BaseException as exc:  # noqa: BLE001 - reported by the round
                self.error = exc

        return threading.Thread(target=body, name="fuzz-workload", daemon=True)

    def transaction(self, n: int, ddl: bool) -> None:
        r = self.rnd.random()
        self.stats.transactions += 1
        big_p = 1.0 / max(1, self.cfg.big_every)
        if r < big_p:
            shape = "big"
        elif self.cfg.flush and r < big_p + 0.04:
            shape = "flush"
        elif ddl and r < big_p + 0.08:
            shape = "ddl"
        elif self.cfg.xa and r < big_p + 0.16:
            shape = "xa"
        elif r < big_p + 0.30:
            shape = "savepoint"
        elif r < big_p + 0.36:
            shape = "rollback"
        else:
            shape = "mixed"
        self.stats.log.append(f"{n} {shape}")
        getattr(self, f"tx_{shape}")(n)

    # ------------------------------------------------------------ statements
    def sql(self, stmt: str, conn=None) -> int:
        """Run one statement; an error an application expects undoes that statement only."""
        self.stats.statements += 1
        try:
            with (conn or self.conn).cursor() as cur:
                return cur.execute(stmt)
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args else 0
            if code in EXPECTED_ERRORS:
                self.stats.expected_errors[EXPECTED_ERRORS[code]] += 1
            else:
                self.stats.unexpected.append(f"{code} {exc.args[1] if len(exc.args) > 1 else exc}: {stmt[:300]}")
            return 0

    def commit(self) -> None:
        self.conn.commit()
        self.stats.committed += 1

    def rollback(self) -> None:
        self.conn.rollback()
        self.stats.rolled_back += 1

    def q(self, t: TableSpec) -> str:
        return f"{quote_ident(self.db)}.{quote_ident(t.name)}"

    def literal(self, c: ColumnSpec, t: TableSpec, nulls: bool = True) -> str:
        if nulls and c.nullable and self.rnd.random() < 0.1:
            return "NULL"
        return c.kind.draw(self.rnd, c.effective_charset(t.charset))

    def insert_columns(self, t: TableSpec) -> list[ColumnSpec]:
        return [c for c in t.columns if c.name != t.auto_increment]

    def row(self, t: TableSpec, cols: list[ColumnSpec], key: dict[str, str] | None = None,
            pools: dict[str, list[tuple[str, ...]]] | None = None) -> str:
        """One row of literals; its foreign-key columns mostly take a parent key from `pools`."""
        given = dict(key or {})
        for fk in t.fks:
            pool = (pools or {}).get(fk.name)
            if pool and self.rnd.random() < 0.85:
                given.update({c: v for c, v in zip(fk.columns, self.rnd.choice(pool)) if c not in given})
            elif fk.parent == t.name and (not pool or self.rnd.random() < 0.7):  # a root of the tree
                given.update({c: "NULL" for c in fk.columns if c not in given})
        vals = [given[c.name] if c.name in given else self.literal(c, t) for c in cols]
        return "(" + ", ".join(vals) + ")"

    def rows(self, t: TableSpec, cols: list[ColumnSpec], n: int) -> str:
        pools = self.parent_pools(t, min(n * 2, 64))
        return ", ".join(self.row(t, cols, pools=pools) for _ in range(n))

    def parent_pools(self, t: TableSpec, n: int) -> dict[str, list[tuple[str, ...]]]:
        """Up to n existing keys of each parent of t (as SQL literals), sampled with a seeded RAND."""
        pools = {}
        for fk in t.fks:
            parent = self.by_name.get(fk.parent)
            if parent is not None:
                pools[fk.name] = [tuple(k[c] for c in fk.parent_columns) for k in self.keys(parent, n)]
        return pools

    def children(self, t: TableSpec) -> list[tuple[TableSpec, ForeignKeySpec]]:
        return [(c, fk) for c in self.tables for fk in c.fks if fk.parent == t.name]

    def referenced_keys(self, t: TableSpec, n: int) -> list[dict[str, str]]:
        """Keys of t that a child row references (sampled with a seeded RAND), or [] when none."""
        kids = self.children(t)
        if not kids:
            return []
        child, fk = self.rnd.choice(kids)
        cols = ", ".join(quote_ident(c) for c in fk.columns)
        not_null = " AND ".join(f"{quote_ident(c)} IS NOT NULL" for c in fk.columns)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT DISTINCT {cols} FROM {self.q(child)} WHERE {not_null} "
                        f"ORDER BY RAND({self.rnd.randrange(2**31)}) LIMIT {n}")
            rows = cur.fetchall()
        return [{k: self.conn.escape(v) for k, v in zip(fk.parent_columns, row)} for row in rows]

    def keys(self, t: TableSpec, n: int) -> list[dict[str, str]]:
        """n existing keys of t (as SQL literals), sampled by the source with a seeded RAND."""
        cols = ", ".join(quote_ident(k) for k in t.key)
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT {cols} FROM {self.q(t)} ORDER BY RAND({self.rnd.randrange(2**31)}) LIMIT {n}")
            rows = cur.fetchall()
        return [{k: self.conn.escape(v) for k, v in zip(t.key, row)} for row in rows]

    @staticmethod
    def where(key: dict[str, str]) -> str:
        return " AND ".join(f"{quote_ident(k)} = {v}" for k, v in key.items())

    # ------------------------------------------------------------ operations
    def op_insert(self, t: TableSpec) -> None:
        cols = self.insert_columns(t)
        rows = self.rows(t, cols, self.rnd.choice([1, 1, 2, 5]))
        verb = self.rnd.choice(["INSERT", "INSERT", "REPLACE"])
        self.sql(f"{verb} INTO {self.q(t)} ({', '.join(quote_ident(c.name) for c in cols)}) VALUES {rows}")

    def op_update(self, t: TableSpec) -> None:
        vcols = t.value_columns()
        for key in self.keys(t, self.rnd.choice([1, 1, 3])):
            if not vcols:
                return
            sets = self.rnd.sample(vcols, min(len(vcols), self.rnd.randint(1, 3)))
            assigns = ", ".join(f"{quote_ident(c.name)} = {self.literal(c, t)}" for c in sets)
            self.sql(f"UPDATE {self.q(t)} SET {assigns} WHERE {self.where(key)}")

    def op_update_range(self, t: TableSpec) -> None:
        vcols = t.value_columns()
        if vcols:
            c = self.rnd.choice(vcols)
            order = ", ".join(quote_ident(k) for k in t.key)
            self.sql(f"UPDATE {self.q(t)} SET {quote_ident(c.name)} = {self.literal(c, t)} "
                     f"ORDER BY {order} LIMIT {self.rnd.randint(2, 30)}")

    def op_key_change(self, t: TableSpec) -> None:
        for key in self.keys(t, 1):
            c = self.rnd.choice(t.key_columns())
            self.sql(f"UPDATE {self.q(t)} SET {quote_ident(c.name)} = {self.literal(c, t, nulls=False)} "
                     f"WHERE {self.where(key)}")

    def op_delete(self, t: TableSpec) -> None:
        for key in self.keys(t, self.rnd.choice([1, 1, 2, 4])):
            self.sql(f"DELETE FROM {self.q(t)} WHERE {self.where(key)}")

    def op_delete_reinsert(self, t: TableSpec) -> None:
        cols = t.columns if t.auto_increment is None else t.columns  # an auto-increment key is re-used as is
        for key in self.keys(t, 1):
            self.sql(f"DELETE FROM {self.q(t)} WHERE {self.where(key)}")
            self.sql(f"INSERT INTO {self.q(t)} ({', '.join(quote_ident(c.name) for c in cols)}) "
                     f"VALUES {self.row(t, cols, key, self.parent_pools(t, 8))}")

    def op_upsert(self, t: TableSpec) -> None:
        cols = t.columns
        for key in self.keys(t, 1):
            vcols = t.value_columns()
            if not vcols:
                return
            c = self.rnd.choice(vcols)
            names = ", ".join(quote_ident(x.name) for x in cols)
            self.sql(f"INSERT INTO {self.q(t)} ({names}) VALUES {self.row(t, cols, key, self.parent_pools(t, 8))} "
                     f"ON DUPLICATE KEY UPDATE {quote_ident(c.name)} = {self.literal(c, t)}")

    def op_delete_referenced(self, t: TableSpec) -> None:
        """Delete parent rows that have children (cascade, set null, or 1451)."""
        keys = self.referenced_keys(t, self.rnd.choice([1, 1, 3]))
        if not keys:
            return self.op_delete(t)
        for key in keys:
            self.stats.fk_parent_ops += 1
            self.sql(f"DELETE FROM {self.q(t)} WHERE {self.where(key)}")

    def op_rekey_referenced(self, t: TableSpec) -> None:
        """Change the key of a parent row that has children (ON UPDATE cascade, set null, or 1451)."""
        keys = self.referenced_keys(t, 1)
        if not keys:
            return self.op_key_change(t)
        c = self.rnd.choice(t.key_columns())
        self.stats.fk_parent_ops += 1
        self.sql(f"UPDATE {self.q(t)} SET {quote_ident(c.name)} = {self.literal(c, t, nulls=False)} "
                 f"WHERE {self.where(keys[0])}")

    def op_unchecked(self, t: TableSpec) -> None:
        """One operation with foreign_key_checks=0 on the application's session: the source
        cascades nothing (the binlog event says so) and child rows may point nowhere."""
        self.sql("SET SESSION foreign_key_checks = 0")
        self.stats.fk_unchecked += 1
        getattr(self, self.rnd.choice(["op_delete_referenced", "op_rekey_referenced", "op_insert"]))(t)
        self.sql("SET SESSION foreign_key_checks = 1")

    OPS = ["op_insert", "op_insert", "op_update", "op_update", "op_update_range", "op_key_change", "op_delete",
           "op_delete_reinsert", "op_upsert"]
    # added when the round has foreign keys
    FK_OPS = ["op_delete_referenced", "op_delete_referenced", "op_rekey_referenced", "op_rekey_referenced",
              "op_unchecked"]

    def some_ops(self, k: int | None = None) -> None:
        tables = self.rnd.sample(self.tables, min(len(self.tables), self.rnd.randint(1, 3)))
        for _ in range(k or self.rnd.randint(1, 6)):
            getattr(self, self.rnd.choice(self.ops))(self.rnd.choice(tables))
            if self.cfg.flush and self.rnd.random() < 0.02:  # another session rotates the binlog mid-transaction
                self.flush(self.side)

    def flush(self, conn) -> None:
        self.sql("FLUSH BINARY LOGS", conn)
        self.stats.flushes += 1

    # ------------------------------------------------------------ transaction shapes
    def tx_mixed(self, n: int) -> None:
        self.conn.begin()
        self.some_ops()
        self.commit()

    def tx_rollback(self, n: int) -> None:
        self.conn.begin()
        self.some_ops()
        self.rollback()

    def tx_savepoint(self, n: int) -> None:
        self.conn.begin()
        self.some_ops()
        depth = self.rnd.choice([1, 1, 2])
        for d in range(depth):
            self.sql(f"SAVEPOINT sp{d}")
            self.stats.savepoints += 1
            self.some_ops()
        for d in reversed(range(depth)):
            roll = self.rnd.random()
            if roll < 0.5:
                self.sql(f"ROLLBACK TO SAVEPOINT sp{d}")
                self.stats.rollback_to += 1
                self.some_ops(self.rnd.randint(0, 2) or None)
            elif roll < 0.7:
                self.sql(f"RELEASE SAVEPOINT sp{d}")
        if self.rnd.random() < 0.1:
            self.rollback()
        else:
            self.commit()

    def tx_xa(self, n: int) -> None:
        xid = f"'fz{self.seed}_{n}'"
        self.conn.commit()  # no implicit transaction open
        self.sql(f"XA START {xid}")
        self.some_ops()
        self.sql(f"XA END {xid}")
        if self.rnd.random() < 0.2:
            self.sql(f"XA COMMIT {xid} ONE PHASE")
            self.stats.xa_committed += 1
            return
        self.sql(f"XA PREPARE {xid}")
        if self.cfg.flush and self.rnd.random() < 0.2:
            self.flush(self.side)
        if self.rnd.random() < 0.75:
            self.sql(f"XA COMMIT {xid}")
            self.stats.xa_committed += 1
        else:
            self.sql(f"XA ROLLBACK {xid}")
            self.stats.xa_rolled_back += 1

    def tx_flush(self, n: int) -> None:
        self.flush(self.side)

    def tx_ddl(self, n: int) -> None:
        t = self.rnd.choice(self.tables)
        self.conn.commit()
        droppable = [c for c in t.droppable()]
        if droppable and len(t.value_columns()) > 2 and self.rnd.random() < 0.45:
            c = self.rnd.choice(droppable)
            self.sql(f"ALTER TABLE {self.q(t)} DROP COLUMN {quote_ident(c.name)}")
            t.columns.remove(c)
        else:
            c = add_column_spec(self.rnd, t)
            self.sql(f"ALTER TABLE {self.q(t)} ADD COLUMN {c.ddl()}")
            t.columns.append(c)
        self.stats.ddl += 1

    def tx_big(self, n: int) -> None:
        """A big transaction: bulk insert with a savepoint inside (issue 13 #4's shape), or a
        table-wide update, or a bulk delete."""
        t = self.rnd.choice(self.tables)
        self.stats.big += 1
        kind = self.rnd.choice(["insert", "insert", "update", "delete"])
        self.last_big = f"tx {n}: {kind} of {t.name}"
        self.conn.begin()
        if kind == "insert":
            cols = self.insert_columns(t)
            names = ", ".join(quote_ident(c.name) for c in cols)
            total = self.cfg.big_rows
            savepoint_at = self.rnd.randint(1, max(1, total // 2)) if self.rnd.random() < 0.6 else None
            self.last_big = f"tx {n}: {total} rows into {t.name}" + (f", SAVEPOINT after {savepoint_at}" if savepoint_at else "")
            done, batch = 0, 500
            while done < total:
                size = min(batch, total - done)
                if savepoint_at is not None and done <= savepoint_at < done + size:
                    size = max(1, savepoint_at - done)
                if savepoint_at is not None and done >= savepoint_at:
                    self.sql("SAVEPOINT big")
                    self.stats.savepoints += 1
                    savepoint_at = None
                self.sql(f"INSERT IGNORE INTO {self.q(t)} ({names}) VALUES {self.rows(t, cols, size)}")
                done += size
            self.stats.big_rows += total
        elif kind == "update":
            vcols = t.value_columns()
            if vcols:
                c = self.rnd.choice(vcols)
                self.stats.big_rows += self.sql(f"UPDATE IGNORE {self.q(t)} SET {quote_ident(c.name)} = {self.literal(c, t)}")
        else:
            order = ", ".join(quote_ident(k) for k in t.key)
            self.stats.big_rows += self.sql(f"DELETE FROM {self.q(t)} ORDER BY {order} LIMIT {self.cfg.big_rows // 2}")
        self.commit()
        self.stats.log.append(f"{n} big: {self.last_big}")
        self.big_committed.set()  # a kill of sync soon after lands while it applies this transaction


def initial_rows(conn, db: str, t: TableSpec, n: int, seed: int, tables: list[TableSpec] | None = None) -> None:
    """Fill a new table with n random rows (before plan and copy); foreign-key columns mostly
    take keys of the parents among `tables` (filled before)."""
    w = Workload(lambda **_: conn, db, tables or [t], seed, WorkloadConfig())
    w.rnd = random.Random(f"{seed}:initial:{t.name}")
    w.conn = conn
    cols = w.insert_columns(t)
    names = ", ".join(quote_ident(c.name) for c in cols)
    done = 0
    while done < n:
        size = min(500, n - done)
        w.sql(f"INSERT IGNORE INTO {w.q(t)} ({names}) VALUES {w.rows(t, cols, size)}")
        conn.commit()
        done += size
    if w.stats.unexpected:
        raise RuntimeError(f"initial rows of {t.name}: {w.stats.unexpected[0]}")
