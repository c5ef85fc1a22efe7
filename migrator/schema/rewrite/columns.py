"""Column definitions and index/constraint definitions, each parsed by sqlglot and transformed as a tree."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ParseError

from ...db import quote_ident
from .. import ddl_text as dt
from ..ddl_text import Token
from .charsets import CharsetMapping, map_charset
from .context import (
    SYSTEM_VERSIONING_WORDS,
    Ctx,
    gen_sql,
    has_words,
    parse_item,
    remove_words,
)
from .datatypes import LOB_TYPES, MappedType, map_type, type_span

# ---------------------------------------------------------------- columns


@dataclass
class ColumnInfo:
    name: str
    type: MappedType | None
    auto_increment: bool = False
    line: int = -1  # index of its definition in the output lines


def rewrite_column(tokens: list[Token], ctx: Ctx, table_charset: CharsetMapping | None) -> tuple[str | None, ColumnInfo]:
    sig_idx = [k for k, t in enumerate(tokens) if t.significant]
    name = tokens[sig_idx[0]].ident
    info = ColumnInfo(name=name, type=None)
    col = quote_ident(name)
    if len(sig_idx) < 2:
        ctx.add("ddl.unparsed", "blocking", f"column {col} has no data type", before=dt.join(tokens).strip())
        return None, info
    for words in SYSTEM_VERSIONING_WORDS:
        if has_words(tokens, words):
            ctx.add("table.system-versioning", "blocking", f"column {col}: system-versioned (temporal) columns "
                    f"have no equivalent on {ctx.caps.name}: migrate the current rows of a non-versioned copy")
            return None, info
    t_start = sig_idx[1]
    t_end = type_span(tokens, t_start)
    typ = map_type(tokens[t_start:t_end], name, ctx)
    info.type = typ
    rest = tokens[t_end:]
    rest, srid = remove_words(rest, ("SRID",), 1)
    for s in srid if ctx.caps.name != "mysql" else []:
        ctx.add("spatial.srid", "warning", f"column {col}: {s} dropped ({ctx.caps.name} rejects SRID restrictions "
                "on indexed columns): values keep their SRID but any SRID is now accepted", before=s)
    for words in (("COLUMN_FORMAT",), ("STORAGE",)):
        rest, gone = remove_words(rest, words, 1)
        for g in gone:
            ctx.add("column.storage-attribute", "rewrite", f"column {col}: {g} dropped (NDB storage hint)", before=g)
    rest, gone = remove_words(rest, ("COMPRESSED",), 0)
    for g in gone:
        ctx.add("column.compressed", "rewrite", f"column {col}: MariaDB column compression dropped (storage only)",
                before=g)
    rest, not_enforced = remove_words(rest, ("NOT", "ENFORCED"), 0)
    if srid and ctx.caps.name == "mysql":
        not_enforced_suffix = " " + " ".join(srid)
    else:
        not_enforced_suffix = ""
    if typ is None:
        return None, info
    try:
        node = parse_item(quote_ident("_c") + " text " + dt.join(rest))
    except ParseError as exc:
        ctx.add("ddl.unparsed", "blocking", f"column {col}: definition not understood ({_first_line(exc)}): "
                "review it by hand", before=dt.join(tokens).strip())
        return None, info
    assert isinstance(node, exp.ColumnDef)
    node.set("this", exp.to_identifier(name, quoted=True))
    _transform_column(node, typ, info, ctx, table_charset)
    node.set("kind", exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=typ.text))
    out = gen_sql(node) + not_enforced_suffix
    if not_enforced:
        out += " NOT ENFORCED"
    return out, info


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]


def _transform_column(node: exp.ColumnDef, typ: MappedType, info: ColumnInfo, ctx: Ctx,
                      table_charset: CharsetMapping | None) -> None:
    col = quote_ident(info.name)
    constraints: list[exp.ColumnConstraint] = list(node.args.get("constraints") or [])
    cs_node = next((c for c in constraints if isinstance(c.args.get("kind"), exp.CharacterSetColumnConstraint)), None)
    co_node = next((c for c in constraints if isinstance(c.args.get("kind"), exp.CollateColumnConstraint)), None)
    charset = cs_node.kind.this.name if cs_node else None
    collation = co_node.kind.this.name if co_node else None
    if typ.national and charset is None:
        charset = "utf8mb3"
        cs_node = exp.ColumnConstraint(kind=exp.CharacterSetColumnConstraint(this=exp.var(charset)))
        constraints.insert(0, cs_node)
    if charset or collation:
        m = map_charset(charset, collation, ctx.caps)
        for rule, sev, reason in m.changes:
            ctx.add(rule, sev, f"column {col}: {reason}", before=" ".join(filter(None, [charset, collation])),
                    after=" ".join(filter(None, [m.charset, m.collation])))
        if cs_node is not None and charset:
            cs_node.kind.set("this", exp.var(m.charset))
        if co_node is not None and m.collation:
            co_node.kind.set("this", exp.var(m.collation))
    forced = ctx.column_collations.get(info.name.lower())
    if forced and typ.word in _TEXT_TYPES:
        _force_collation(constraints, forced, info.name, ctx)
    kept: list[exp.ColumnConstraint] = []
    for c in constraints:
        kind = c.args.get("kind")
        if isinstance(kind, exp.AutoIncrementColumnConstraint):
            info.auto_increment = True
        if isinstance(kind, exp.DefaultColumnConstraint) and not _default_ok(kind, typ, col, ctx):
            continue
        if isinstance(kind, exp.CheckColumnConstraint):
            _note_check(kind, typ, info, ctx)
        if isinstance(kind, exp.InvisibleColumnConstraint) and not ctx.caps.invisible_columns:
            ctx.add("column.invisible", "warning", f"column {col}: {ctx.caps.name} has no invisible columns: the "
                    "column becomes visible (SELECT * now returns it)")
            continue
        kept.append(c)
    node.set("constraints", kept)


_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}


def _force_collation(constraints: list[exp.ColumnConstraint], collation: str, name: str, ctx: Ctx) -> None:
    """Give the column an explicit CHARACTER SET/COLLATE pair (plan --key-collation bin)."""
    charset = ctx.caps.charset_of(collation)
    cs_node = next((c for c in constraints if isinstance(c.args.get("kind"), exp.CharacterSetColumnConstraint)), None)
    co_node = next((c for c in constraints if isinstance(c.args.get("kind"), exp.CollateColumnConstraint)), None)
    if cs_node is None:
        constraints.insert(0, exp.ColumnConstraint(kind=exp.CharacterSetColumnConstraint(this=exp.var(charset))))
    else:
        cs_node.kind.set("this", exp.var(charset))
    if co_node is None:
        at = 1 if constraints and isinstance(constraints[0].args.get("kind"), exp.CharacterSetColumnConstraint) else 0
        constraints.insert(at, exp.ColumnConstraint(kind=exp.CollateColumnConstraint(this=exp.var(collation))))
    else:
        co_node.kind.set("this", exp.var(collation))
    ctx.add("collation.key-override", "rewrite", f"column {quote_ident(name)}: key column given {charset} COLLATE "
            f"{collation} (--key-collation): values distinct on the source stay distinct; comparisons become "
            "case- and accent-sensitive", after=f"{charset} {collation}")


def _default_ok(kind: exp.DefaultColumnConstraint, typ: MappedType, col: str, ctx: Ctx) -> bool:
    value = kind.this
    if isinstance(value, exp.Null):
        return True
    text = gen_sql(value)
    if typ.word in LOB_TYPES:
        # seekdb: error 1101 on JSON, 1067 on TEXT/BLOB; MySQL 8 takes the (expression) form
        if ctx.caps.name == "mysql" and ctx.caps.expression_defaults:
            if not isinstance(value, exp.Paren):
                kind.set("this", exp.Paren(this=value))
                ctx.add("default.lob-expression", "rewrite", f"column {col}: DEFAULT {text} written as DEFAULT "
                        f"({text}) (MySQL 8 takes LOB defaults only as expressions)")
        else:
            ctx.add("default.lob", "warning", f"column {col}: DEFAULT {text} dropped ({typ.word.upper()} columns "
                    f"cannot have a default on {ctx.caps.name}): inserts that omit the column get NULL or fail",
                    before=f"DEFAULT {text}")
            return False
    if not _plain_default(value):
        # MariaDB prints `DEFAULT uuid()`; MySQL 8 and OceanBase take expressions only in parentheses
        kind.set("this", exp.Paren(this=value))
        ctx.add("default.expression", "rewrite", f"column {col}: DEFAULT {text} written as DEFAULT ({text}) "
                "(expression defaults must be parenthesised on the target)")
    if isinstance(value, exp.Literal) and value.is_string and value.this.startswith("0000-00-00"):
        ctx.add("default.zero-date", "warning", f"column {col}: zero-date default {text} kept: the target must "
                "allow zero dates (sql_mode without NO_ZERO_DATE) or inserts omitting the column fail",
                before=f"DEFAULT {text}")
    return True


def _plain_default(value: exp.Expression) -> bool:
    """A default every MySQL-family server takes without parentheses."""
    if isinstance(value, exp.Neg):
        value = value.this
    return isinstance(value, (exp.Literal, exp.Null, exp.Boolean, exp.HexString, exp.BitString, exp.Paren,
                              exp.CurrentTimestamp, exp.Introducer, exp.National, exp.ByteString))


def _note_check(kind: exp.CheckColumnConstraint, typ: MappedType, info: ColumnInfo, ctx: Ctx) -> None:
    fn = kind.this
    if isinstance(fn, exp.Anonymous) and fn.name.lower() == "json_valid":
        ctx.add("type.mariadb-json", "rewrite", f"column {quote_ident(info.name)}: MariaDB JSON is "
                f"{typ.word.upper()} with CHECK (json_valid(...)): kept as such, so values stay byte-identical")
    elif not ctx.caps.check_enforced:
        ctx.add("check.not-enforced", "warning", f"column {quote_ident(info.name)}: CHECK {gen_sql(fn)} is not "
                f"enforced by {ctx.caps.name}")


# ---------------------------------------------------------------- indexes and constraints

INDEX_WORDS = {"PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK"}


def rewrite_index(tokens: list[Token], ctx: Ctx) -> str | None:
    original = " ".join(dt.join(tokens).split())
    tokens, ignored = remove_words(tokens, ("IGNORED",), 0)
    if ignored:
        ctx.add("index.ignored-to-invisible", "rewrite", f"MariaDB IGNORED index becomes INVISIBLE (same meaning): "
                f"{original}")
        tokens = tokens + [Token(dt.WORD, " INVISIBLE", 0, 0)]
    tokens, not_enforced = remove_words(tokens, ("NOT", "ENFORCED"), 0)
    tokens, kbs = remove_words(tokens, ("KEY_BLOCK_SIZE",), 1)
    for g in kbs:
        ctx.add("index.key-block-size", "rewrite", f"index option {g} dropped (storage only)", before=g)
    tokens, clustered = remove_words(tokens, ("CLUSTERED",), 0)
    tokens, nonclustered = remove_words(tokens, ("NONCLUSTERED",), 0)
    try:
        node = parse_item(dt.join(tokens))
    except ParseError as exc:
        ctx.add("ddl.unparsed", "blocking", f"index or constraint not understood ({_first_line(exc)}): review it "
                "by hand", before=original)
        return None
    label = _index_label(node)
    if isinstance(node, exp.IndexColumnConstraint) and str(node.args.get("kind") or "").upper() == "FULLTEXT" \
            and not ctx.caps.fulltext:
        ctx.add("index.fulltext", "warning", f"{label}: FULLTEXT indexes are ignored by {ctx.caps.name}: dropped "
                "(MATCH ... AGAINST queries will fail)", before=original)
        return ""
    if isinstance(node, exp.IndexColumnConstraint) and str(node.args.get("kind") or "").upper() == "SPATIAL" \
            and not ctx.caps.spatial:
        ctx.add("index.spatial", "blocking", f"{label}: {ctx.caps.name} has no SPATIAL indexes", before=original)
        return None
    for ordered in list(node.find_all(exp.Ordered)):
        if ordered.args.get("desc") and not ctx.caps.desc_index:
            ordered.replace(ordered.this)
            ctx.add("index.desc", "warning", f"{label}: DESC key part {gen_sql(ordered.this)} becomes ASC "
                    f"({ctx.caps.name} ignores DESC in indexes; only scan direction changes)", before=original)
    _drop_index_type(node, label, ctx)
    if node.find(exp.ForeignKey) is not None and not ctx.caps.foreign_keys:
        ctx.add("fk.not-enforced", "warning", f"{label}: foreign keys are not enforced by {ctx.caps.name}")
    check = node.find(exp.CheckColumnConstraint)
    if check is not None and not ctx.caps.check_enforced:
        ctx.add("check.not-enforced", "warning", f"{label}: CHECK is not enforced by {ctx.caps.name}"
                " (tidb_enable_check_constraint=ON enables it)")
    out = gen_sql(node)
    if not_enforced:
        out += " NOT ENFORCED"
    if ctx.caps.name == "tidb" and (clustered or nonclustered):
        out += " " + ("CLUSTERED" if clustered else "NONCLUSTERED")
    return out


def _index_label(node: exp.Expression) -> str:
    if isinstance(node, exp.PrimaryKey):
        return "PRIMARY KEY"
    name = node.this if isinstance(node.this, exp.Identifier) else None
    if isinstance(node.this, exp.Schema) and isinstance(node.this.this, exp.Identifier):
        name = node.this.this
    return f"index/constraint {quote_ident(name.name)}" if name is not None else "unnamed index/constraint"


def _drop_index_type(node: exp.Expression, label: str, ctx: Ctx) -> None:
    """USING BTREE/HASH: seekdb and TiDB ignore it; kept only for MySQL."""
    if ctx.caps.name == "mysql":
        return
    found: list[str] = []
    for n in [node, *node.find_all(exp.IndexParameters, exp.IndexConstraintOption)]:
        for key in ("index_type", "using"):
            value = n.args.get(key)
            if value and not isinstance(value, bool):
                found.append(value.name if isinstance(value, exp.Expression) else str(value))
                n.set(key, None)
    options = node.args.get("options")
    if options:
        node.set("options", [o for o in options if any(v for k, v in o.args.items() if k != "using")])
    for using in found:
        ctx.add("index.using", "rewrite", f"{label}: USING {using.upper()} dropped ({ctx.caps.name} chooses its "
                "own index structure)")
