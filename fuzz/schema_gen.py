"""Random tables drawn from the value corpus: every integer width and sign, DECIMAL, FLOAT/DOUBLE,
BINARY/VARBINARY (keys too), CHAR/VARCHAR/TEXT in utf8mb4 and latin1, ENUM/SET, BIT, JSON,
temporal types with zero and zero-part values, YEAR, BLOB; single, composite and non-integer
primary keys, tables keyed only by a NOT NULL unique key, secondary unique keys; and (fk rounds)
foreign-key graphs: children of earlier tables (chains 3 deep, composite keys, two parents,
keys that start with the parent's key),
self-references, every ON DELETE / ON UPDATE action InnoDB accepts.

A table is a function of (seed, index) alone (its foreign keys point only at earlier tables), so
a shrunk run with fewer tables keeps the first ones unchanged and every reference valid."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from migrator.db import quote_ident

from .corpus import KEY_KINDS, KINDS, Kind

# key shapes applications use: (kinds of the key columns, primary key or NOT NULL unique key only)
KEY_SHAPES: list[tuple[list[str], bool]] = [
    (["bigint_u"], True), (["int"], True), (["bin16"], True), (["int", "varchar"], True), (["varchar"], True),
    (["date", "smallint_u"], True), (["dec12"], True), (["varbin"], True), (["bigint"], False),
    (["datetime6", "int_u"], True), (["bin4", "mediumint"], True), (["char"], True), (["enum", "int"], True),
]


@dataclass
class ColumnSpec:
    name: str
    kind: Kind
    nullable: bool = True
    charset: str | None = None  # explicit CHARACTER SET of a textual column

    def effective_charset(self, table_charset: str) -> str:
        return self.charset or table_charset

    def ddl(self) -> str:
        cs = f" CHARACTER SET {self.charset}" if self.charset and self.kind.textual else ""
        null = " NULL DEFAULT NULL" if self.nullable and self.kind.canon not in ("json",) else (
            " NULL" if self.nullable else " NOT NULL")
        if self.kind.sql in ("BLOB", "TEXT"):
            null = " NULL" if self.nullable else " NOT NULL"
        return f"{quote_ident(self.name)} {self.kind.sql}{cs}{null}"


ACTIONS = ["CASCADE", "SET NULL", "RESTRICT", "NO ACTION"]


@dataclass
class ForeignKeySpec:
    name: str
    columns: list[str]  # child columns, in the order of the parent's key
    parent: str  # parent table name (an earlier table of the round, or the table itself)
    parent_columns: list[str]
    on_delete: str = "RESTRICT"
    on_update: str = "RESTRICT"

    def ddl(self) -> str:
        cols = ", ".join(quote_ident(c) for c in self.columns)
        pcols = ", ".join(quote_ident(c) for c in self.parent_columns)
        return (f"CONSTRAINT {quote_ident(self.name)} FOREIGN KEY ({cols}) REFERENCES {quote_ident(self.parent)} ({pcols})"
                f" ON DELETE {self.on_delete} ON UPDATE {self.on_update}")

    def cascades(self) -> bool:
        return "CASCADE" in (self.on_delete, self.on_update) or "SET NULL" in (self.on_delete, self.on_update)


@dataclass
class TableSpec:
    name: str
    columns: list[ColumnSpec]
    key: list[str]
    primary: bool  # False: the key is a NOT NULL UNIQUE key and the table has no primary key
    charset: str = "utf8mb4"
    auto_increment: str | None = None
    unique: list[list[str]] = field(default_factory=list)
    added: int = 0  # columns added by the workload so far (names c_add<N>)
    fks: list[ForeignKeySpec] = field(default_factory=list)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def key_columns(self) -> list[ColumnSpec]:
        return [self.column(k) for k in self.key]

    def value_columns(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.name not in self.key]

    def droppable(self) -> list[ColumnSpec]:
        """Columns in no key and no foreign key: what an ALTER TABLE ... DROP COLUMN of the workload
        may remove."""
        in_keys = set(self.key) | {c for u in self.unique for c in u} | {c for fk in self.fks for c in fk.columns}
        return [c for c in self.columns if c.name not in in_keys]

    def create_sql(self, db: str) -> str:
        cols = []
        for c in self.columns:
            line = c.ddl()
            if c.name == self.auto_increment:
                line = f"{quote_ident(c.name)} {c.kind.sql} NOT NULL AUTO_INCREMENT"
            cols.append(line)
        keys = ", ".join(quote_ident(k) for k in self.key)
        cols.append(f"PRIMARY KEY ({keys})" if self.primary else f"UNIQUE KEY `uk_key` ({keys})")
        for i, u in enumerate(self.unique):
            cols.append(f"UNIQUE KEY `uk_{i}` ({', '.join(quote_ident(c) for c in u)})")
        cols += [fk.ddl() for fk in self.fks]
        return (f"CREATE TABLE {quote_ident(db)}.{quote_ident(self.name)} (\n  " + ",\n  ".join(cols)
                + f"\n) ENGINE=InnoDB DEFAULT CHARSET={self.charset}")

    def describe(self) -> str:
        return (f"{self.name}: key {'PK' if self.primary else 'UNIQUE'}({', '.join(f'{k} {self.column(k).kind.sql}' for k in self.key)})"
                f", {self.charset}, {len(self.columns)} columns"
                + (f", unique {self.unique}" if self.unique else "")
                + "".join(f", FK ({', '.join(fk.columns)}) -> {fk.parent} ON DELETE {fk.on_delete} ON UPDATE {fk.on_update}"
                          for fk in self.fks))


def _charset_for(rnd: random.Random, kind: Kind) -> str | None:
    if not kind.textual:
        return None
    return rnd.choice([None, None, "utf8mb4", "latin1"])


def gen_table(seed: int, index: int) -> TableSpec:
    """Table number `index` of run `seed`."""
    rnd = random.Random(f"{seed}:table:{index}")
    charset = rnd.choice(["utf8mb4", "utf8mb4", "latin1"])
    shape, primary = KEY_SHAPES[(seed + index) % len(KEY_SHAPES)] if index < 2 else rnd.choice(KEY_SHAPES)
    columns: list[ColumnSpec] = []
    for i, kname in enumerate(shape):
        kind = KINDS[kname]
        columns.append(ColumnSpec(f"k{i}", kind, nullable=False, charset=_charset_for(rnd, kind)))
    auto = "k0" if shape == ["bigint_u"] and rnd.random() < 0.5 else None
    value_kinds = [k for k in KINDS.values()]
    for i in range(rnd.randint(3, 9)):
        kind = rnd.choice(value_kinds)
        columns.append(ColumnSpec(f"c{i}", kind, nullable=True, charset=_charset_for(rnd, kind)))
    spec = TableSpec(f"t{index}", columns, [c.name for c in columns[: len(shape)]], primary, charset, auto)
    candidates = [c for c in spec.value_columns() if c.kind.key_ok]
    if candidates and rnd.random() < 0.45:
        spec.unique.append([rnd.choice(candidates).name])
    return spec


def gen_tables(seed: int, n: int, fk: bool = False) -> list[TableSpec]:
    """The first n tables of run `seed`; with fk, a foreign-key graph over them."""
    tables = [gen_table(seed, i) for i in range(n)]
    if fk:
        for i, t in enumerate(tables):
            add_foreign_keys(seed, i, t, tables[:i])
    return tables


def fk_round(seed: int) -> bool:
    """Whether a round whose configuration leaves it open has foreign keys (about 4 in 10)."""
    return random.Random(f"{seed}:fk").random() < 0.4


def _action(rnd: random.Random, nullable: bool) -> str:
    choices = ["CASCADE", "CASCADE", "CASCADE", "RESTRICT", "NO ACTION"] + (["SET NULL", "SET NULL"] if nullable else [])
    return rnd.choice(choices)


def add_foreign_keys(seed: int, index: int, t: TableSpec, earlier: list[TableSpec]) -> None:
    """Foreign keys of table `index` (a function of seed and index; parents are earlier tables,
    the previous one most often so chains run deep): child columns of exactly the parent key's
    kinds and character sets, nullable or not, actions drawn from ACTIONS (SET NULL only on
    nullable columns); sometimes a second parent, sometimes a self-reference (parent_id)."""
    rnd = random.Random(f"{seed}:fk:{index}")
    parents: list[TableSpec] = []
    if earlier and rnd.random() < 0.85:
        parents.append(earlier[-1] if rnd.random() < 0.65 else rnd.choice(earlier))
        if len(earlier) > 1 and rnd.random() < 0.25:
            other = rnd.choice(earlier)
            if other is not parents[0]:
                parents.append(other)
    for n, parent in enumerate(parents):
        nullable = rnd.random() < 0.6
        cols = []
        for j, pc in enumerate(parent.key_columns()):
            c = ColumnSpec(f"f{n}_{j}", pc.kind, nullable=nullable, charset=pc.effective_charset(parent.charset))
            t.columns.append(c)
            cols.append(c.name)
        t.fks.append(ForeignKeySpec(f"fk_{t.name}_{n}", cols, parent.name, list(parent.key),
                                    _action(rnd, nullable), _action(rnd, nullable)))
        if n == 0 and not nullable and t.auto_increment is None and identifying(seed, index):
            t.key = cols + t.key  # fa(film_id, actor_id): a re-key of the parent moves this key, and its children
    if len(t.key) == 1 and rnd.random() < 0.35:
        kc = t.key_columns()[0]
        t.columns.append(ColumnSpec("parent_id", kc.kind, nullable=True, charset=kc.effective_charset(t.charset)))
        # ON UPDATE CASCADE / SET NULL on a self-reference: InnoDB answers 1451 when the cascade
        # would touch the table again (an expected application error)
        t.fks.append(ForeignKeySpec(f"fk_{t.name}_self", ["parent_id"], t.name, list(t.key),
                                    rnd.choice(["CASCADE", "CASCADE", "SET NULL", "RESTRICT", "NO ACTION"]),
                                    rnd.choice(["CASCADE", "SET NULL", "RESTRICT", "NO ACTION"])))


def identifying(seed: int, index: int) -> bool:
    """Whether table `index`'s key starts with its first parent's key (an identifying relation, as
    sakila's film_actor): ON UPDATE CASCADE then reaches two and more levels down through keys.
    Drawn apart from the table's other choices, so a seed's other tables and actions stay as they were."""
    return random.Random(f"{seed}:identifying:{index}").random() < 0.35


def add_column_spec(rnd: random.Random, table: TableSpec) -> ColumnSpec:
    """A column the workload adds with ALTER TABLE ... ADD COLUMN (NULL default)."""
    table.added += 1
    kind = rnd.choice([k for k in KINDS.values() if k.canon != "json"] + KEY_KINDS)
    return ColumnSpec(f"c_add{table.added}", kind, nullable=True, charset=_charset_for(rnd, kind))
