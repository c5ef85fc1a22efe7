"""DDL rewrite: SHOW CREATE TABLE of a MySQL/MariaDB source -> DDL the target accepts.

Contract used by plan, sync (DDL in the binlog) and `schema convert`:

    rewrite_create_table(ddl, target="oceanbase", source_flavor="mariadb", caps=None) -> RewriteResult
    rewrite_ddl_statement(sql, target, source_flavor="mariadb", caps=None) -> RewriteResult

RewriteResult.target_ddl is what to run on the target; .changes lists every change with its
rule, severity and reason. When `.blocking` is true the DDL must not be run: target_ddl is then
only the best effort, for review.

How (ddl-compat.md explains why): executable comments are unwrapped first; the statement is
split with a quote-aware scanner (ddl_text) into columns, indexes/constraints, table options and
the partition clause. Each column and index is parsed by sqlglot (MySQL dialect) and transformed
as a tree; the column's data type is kept as text we map ourselves, because sqlglot changes
some types silently (REAL -> FLOAT, NCHAR -> CHAR) and rejects others (MULTIPOINT, FLOAT
UNSIGNED). Table options and partitioning, which sqlglot cannot represent, are handled token by
token and re-emitted verbatim where the target accepts them. Anything no rule covers is blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from ..db import quote_ident
from ..plan.model import Change
from . import ddl_text as dt
from .ddl_text import Token
from .targets import TargetCaps, resolve_caps


class _Dialect(MySQL):
    """MySQL dialect that also knows the spatial/MariaDB type words SHOW CREATE prints."""

    class Tokenizer(MySQL.Tokenizer):
        KEYWORDS = {
            **MySQL.Tokenizer.KEYWORDS,
            "POINT": TokenType.POINT,
            "LINESTRING": TokenType.LINESTRING,
            "POLYGON": TokenType.POLYGON,
            "MULTIPOLYGON": TokenType.MULTIPOLYGON,
            "MULTILINESTRING": TokenType.MULTILINESTRING,
        }


@dataclass
class RewriteResult:
    target_ddl: str
    changes: list[Change] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(c.severity == "blocking" for c in self.changes)

    @property
    def warnings(self) -> list[Change]:
        return [c for c in self.changes if c.severity == "warning"]


class _Ctx:
    """Collects the changes of one statement."""

    def __init__(self, caps: TargetCaps, source_flavor: str) -> None:
        self.caps = caps
        self.flavor = source_flavor
        self.changes: list[Change] = []
        self.table = ""
        self.column_collations: dict[str, str] = {}  # lower-case column name -> collation forced on the target

    def add(self, rule: str, severity: str, reason: str, before: str | None = None, after: str | None = None) -> None:
        where = f"{quote_ident(self.table)}: " if self.table else ""
        self.changes.append(Change(rule=rule, severity=severity, reason=where + reason,  # type: ignore[arg-type]
                                   before=before, after=after))


# ---------------------------------------------------------------- charsets and collations


@dataclass
class CharsetMapping:
    charset: str | None
    collation: str | None
    changes: list[tuple[str, str, str]]  # (rule, severity, reason)


_UTF8_FAMILY = ("utf8", "utf8mb3")


def map_charset(charset: str | None, collation: str | None, caps: TargetCaps) -> CharsetMapping:
    """Source charset/collation -> the closest the target has, with the changes that implies."""
    changes: list[tuple[str, str, str]] = []
    cs = (charset or (collation.split("_", 1)[0] if collation else "")).lower() or None
    co = collation.lower() if collation else None
    if cs is None:
        return CharsetMapping(None, None, changes)
    new_cs = cs
    if cs not in caps.charsets:
        new_cs = "utf8mb4" if "utf8mb4" in caps.charsets else next(iter(caps.charsets))
        if cs in _UTF8_FAMILY:
            changes.append((f"charset.{cs}-to-{new_cs}", "rewrite",
                            f"charset {cs} widened to {new_cs} (every {cs} value fits; 4-byte characters now allowed)"))
        else:
            changes.append((f"charset.{cs}-to-{new_cs}", "warning",
                            f"charset {cs} is not available on {caps.name}: converted to {new_cs} "
                            "(values are re-encoded; byte lengths and key sizes grow)"))
    if co is None:
        return CharsetMapping(new_cs, None, changes)
    if co in caps.collations and co.split("_", 1)[0] == new_cs:
        return CharsetMapping(new_cs, co, changes)
    suffix = co[len(cs) + 1:] if co.startswith(cs + "_") else co.split("_", 1)[-1]
    new_co = _closest_collation(new_cs, suffix, caps)
    same_rules = suffix == new_co[len(new_cs) + 1:] and cs in _UTF8_FAMILY
    if same_rules or new_co == co:
        changes.append((f"collation.{co}-to-{new_co}", "rewrite", f"collation {co} becomes {new_co} (same rules)"))
    else:
        changes.append((f"collation.{co}-to-{new_co}", "warning",
                        f"collation {co} is not available on {caps.name}: using {new_co} "
                        "(sort order, case/accent and trailing-space comparison may differ)"))
    return CharsetMapping(new_cs, new_co, changes)


def _closest_collation(cs: str, suffix: str, caps: TargetCaps) -> str:
    if cs == "binary":
        return "binary"
    candidates = [f"{cs}_{suffix}"]
    if suffix.endswith("bin"):
        candidates.append(f"{cs}_bin")
    if suffix.startswith("uca1400") or suffix.startswith("unicode"):
        candidates += [f"{cs}_0900_ai_ci" if "_ai_" in suffix or suffix.endswith("_ci") else f"{cs}_0900_as_cs",
                       f"{cs}_unicode_ci"]
    if suffix.endswith("_cs") or suffix.endswith("_as_cs"):
        candidates.append(f"{cs}_bin")
    candidates += [f"{cs}_general_ci", caps.charsets.get(cs, f"{cs}_bin")]
    for c in candidates:
        if c in caps.collations:
            return c
    return caps.charsets.get(cs, f"{cs}_bin")


# ---------------------------------------------------------------- types

_INT_ALIASES = {"int1": "tinyint", "int2": "smallint", "int3": "mediumint", "middleint": "mediumint",
                "int4": "int", "integer": "int", "int8": "bigint"}
_DECIMAL_ALIASES = {"dec": "decimal", "numeric": "decimal", "fixed": "decimal"}
_KNOWN_TYPES = {
    "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double", "bit", "bool", "boolean",
    "char", "varchar", "binary", "varbinary", "tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob",
    "mediumblob", "longblob", "enum", "set", "date", "datetime", "timestamp", "time", "year", "json",
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection", "serial",
}
_SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
            "geometrycollection", "geomcollection"}
_LOB = {"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json"}
# MariaDB-only types -> a type every target stores the same text in (values read back identical)
_MARIADB_TYPES = {"inet6": "varchar(39)", "inet4": "varchar(15)", "uuid": "char(36)"}


@dataclass
class _Type:
    word: str  # canonical lower-case base type, e.g. "varchar"
    text: str  # full type text to emit, e.g. "varchar(20)" / "float(7,3) unsigned zerofill"
    national: bool = False


def _type_span(tokens: list[Token], start: int) -> int:
    """Index just past the data type that begins at significant token `start`."""
    k = start + 1
    sig_next = _next_sig(tokens, k)
    if sig_next is not None and tokens[start].upper in ("DOUBLE", "NATIONAL", "CHAR", "CHARACTER", "LONG") \
            and tokens[sig_next].upper in ("PRECISION", "CHAR", "VARCHAR", "CHARACTER", "VARYING", "VARBINARY"):
        k = sig_next + 1
        nxt = _next_sig(tokens, k)
        if nxt is not None and tokens[nxt].upper == "VARYING":
            k = nxt + 1
    nxt = _next_sig(tokens, k)
    if nxt is not None and tokens[nxt].kind == dt.PUNCT and tokens[nxt].text == "(":
        k = dt.matching_paren(tokens, nxt) + 1
    while True:
        nxt = _next_sig(tokens, k)
        if nxt is not None and tokens[nxt].upper in ("UNSIGNED", "SIGNED", "ZEROFILL"):
            k = nxt + 1
        else:
            return k


def _next_sig(tokens: list[Token], k: int) -> int | None:
    while k < len(tokens):
        if tokens[k].significant:
            return k
        k += 1
    return None


def _map_type(type_tokens: list[Token], column: str, ctx: _Ctx) -> _Type | None:
    sig = dt.significant(type_tokens)
    words = []
    for t in sig:
        if t.kind == dt.PUNCT and t.text == "(":
            break
        words.append(t.text.lower())
    rest = dt.join(type_tokens[type_tokens.index(sig[len(words)]):]).strip() if len(words) < len(sig) else ""
    rest = " ".join(rest.split())
    base = " ".join(words)
    national = False
    mods = [w for w in words[1:] if w in ("unsigned", "signed", "zerofill")]
    head = [w for w in words if w not in ("unsigned", "signed", "zerofill")]
    base = " ".join(head)
    if base in ("national char", "nchar", "national character", "nchar varying", "national varchar", "nvarchar",
                "national char varying", "national character varying"):
        national = True
        new = "varchar" if ("varying" in base or "varchar" in base) else "char"
        ctx.add("type.national", "rewrite", f"column {quote_ident(column)}: {base.upper()} is {new.upper()} "
                "CHARACTER SET utf8mb3 in MySQL; written as an explicit charset", before=base, after=new)
        base = new
    elif base == "double precision" or base == "real":
        ctx.add("type.real-to-double", "rewrite", f"column {quote_ident(column)}: {base.upper()} means DOUBLE in "
                "MySQL (unless REAL_AS_FLOAT): written as DOUBLE", before=base, after="double")
        base = "double"
    elif base in ("character", "char varying", "character varying", "long varchar", "long"):
        base = {"character": "char", "char varying": "varchar", "character varying": "varchar",
                "long varchar": "mediumtext", "long": "mediumtext"}[base]
    elif base in _INT_ALIASES:
        base = _INT_ALIASES[base]
    elif base in _DECIMAL_ALIASES:
        base = _DECIMAL_ALIASES[base]
    if base in _MARIADB_TYPES:
        new = _MARIADB_TYPES[base]
        ctx.add(f"type.mariadb-{base}", "warning", f"column {quote_ident(column)}: MariaDB type {base.upper()} does "
                f"not exist on {ctx.caps.name}: stored as {new} (same text; no type validation)",
                before=base, after=new)
        return _Type(word=new.split("(")[0], text=new)
    if base not in _KNOWN_TYPES:
        ctx.add("type.unknown", "blocking", f"column {quote_ident(column)}: type {base.upper()} is not known to "
                f"this migrator and may not exist on {ctx.caps.name}: change the column or skip the table",
                before=base)
        return None
    if base in _SPATIAL and not ctx.caps.spatial:
        ctx.add("type.spatial", "blocking", f"column {quote_ident(column)}: {ctx.caps.name} has no spatial types "
                f"({base.upper()}): skip the table or convert the column", before=base)
        return None
    if base == "json" and not ctx.caps.json_type:
        ctx.add("type.json", "warning", f"column {quote_ident(column)}: no JSON type on {ctx.caps.name}: LONGTEXT",
                before="json", after="longtext")
        base = "longtext"
    if base == "serial":
        return _Type(word="bigint", text="bigint unsigned NOT NULL AUTO_INCREMENT UNIQUE")
    text = " ".join([base + (rest if rest.startswith("(") else "")] + mods)
    if rest and not rest.startswith("("):
        text = " ".join([base, rest] + mods)
    return _Type(word=base, text=text, national=national)


# ---------------------------------------------------------------- parsing one item with sqlglot


def _parse_item(text: str) -> exp.Expression:
    """Parse one column/index definition as the only item of a CREATE TABLE."""
    tree = sqlglot.parse_one(f"CREATE TABLE _x ({text})", read=_Dialect)
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema) or len(tree.this.expressions) != 1:
        raise ParseError("not a single table element")
    return tree.this.expressions[0]


def _gen(node: exp.Expression) -> str:
    return node.sql(dialect=_Dialect)


def _remove_words(tokens: list[Token], words: tuple[str, ...], value_tokens: int = 0,
                  top_level: bool = True) -> tuple[list[Token], list[str]]:
    """Drop each occurrence of the word sequence (plus `value_tokens` following significant
    tokens) outside parentheses (anywhere if not top_level: partition definitions); returns the
    kept tokens and the removed texts. Only bare words match: never strings or `quoted` names."""
    out: list[Token] = []
    removed: list[str] = []
    k = 0
    n = len(tokens)
    depth = 0
    while k < n:
        if tokens[k].kind == dt.PUNCT and tokens[k].text in "()":
            depth += 1 if tokens[k].text == "(" else -1
        if tokens[k].significant and tokens[k].upper == words[0] and (depth == 0 or not top_level):
            idx = [k]
            j = k
            ok = True
            for w in words[1:]:
                j = _next_sig(tokens, j + 1)
                if j is None or tokens[j].upper != w:
                    ok = False
                    break
                idx.append(j)
            if ok:
                for _ in range(value_tokens):
                    nxt = _next_sig(tokens, idx[-1] + 1)
                    if nxt is None:
                        break
                    if tokens[nxt].kind == dt.PUNCT and tokens[nxt].text == "=":
                        nxt2 = _next_sig(tokens, nxt + 1)
                        if nxt2 is None:
                            break
                        idx.append(nxt2)
                    else:
                        idx.append(nxt)
                removed.append(dt.join(tokens[k:idx[-1] + 1]).strip())
                k = idx[-1] + 1
                continue
        out.append(tokens[k])
        k += 1
    return out, removed


_SYSTEM_VERSIONING_WORDS = (("WITH", "SYSTEM", "VERSIONING"), ("WITHOUT", "SYSTEM", "VERSIONING"),
                            ("AS", "ROW", "START"), ("AS", "ROW", "END"))


def _has_words(tokens: list[Token], words: tuple[str, ...]) -> bool:
    return dt.find_word_seq(tokens, words, top_level=False) >= 0


# ---------------------------------------------------------------- columns


@dataclass
class _ColumnInfo:
    name: str
    type: _Type | None
    auto_increment: bool = False
    line: int = -1  # index of its definition in the output lines


def _rewrite_column(tokens: list[Token], ctx: _Ctx, table_charset: CharsetMapping | None) -> tuple[str | None, _ColumnInfo]:
    sig_idx = [k for k, t in enumerate(tokens) if t.significant]
    name = tokens[sig_idx[0]].ident
    info = _ColumnInfo(name=name, type=None)
    col = quote_ident(name)
    if len(sig_idx) < 2:
        ctx.add("ddl.unparsed", "blocking", f"column {col} has no data type", before=dt.join(tokens).strip())
        return None, info
    for words in _SYSTEM_VERSIONING_WORDS:
        if _has_words(tokens, words):
            ctx.add("table.system-versioning", "blocking", f"column {col}: system-versioned (temporal) columns "
                    f"have no equivalent on {ctx.caps.name}: migrate the current rows of a non-versioned copy")
            return None, info
    t_start = sig_idx[1]
    t_end = _type_span(tokens, t_start)
    typ = _map_type(tokens[t_start:t_end], name, ctx)
    info.type = typ
    rest = tokens[t_end:]
    rest, srid = _remove_words(rest, ("SRID",), 1)
    for s in srid if ctx.caps.name != "mysql" else []:
        ctx.add("spatial.srid", "warning", f"column {col}: {s} dropped ({ctx.caps.name} rejects SRID restrictions "
                "on indexed columns): values keep their SRID but any SRID is now accepted", before=s)
    for words in (("COLUMN_FORMAT",), ("STORAGE",)):
        rest, gone = _remove_words(rest, words, 1)
        for g in gone:
            ctx.add("column.storage-attribute", "rewrite", f"column {col}: {g} dropped (NDB storage hint)", before=g)
    rest, gone = _remove_words(rest, ("COMPRESSED",), 0)
    for g in gone:
        ctx.add("column.compressed", "rewrite", f"column {col}: MariaDB column compression dropped (storage only)",
                before=g)
    rest, not_enforced = _remove_words(rest, ("NOT", "ENFORCED"), 0)
    if srid and ctx.caps.name == "mysql":
        not_enforced_suffix = " " + " ".join(srid)
    else:
        not_enforced_suffix = ""
    if typ is None:
        return None, info
    try:
        node = _parse_item(quote_ident("_c") + " text " + dt.join(rest))
    except ParseError as exc:
        ctx.add("ddl.unparsed", "blocking", f"column {col}: definition not understood ({_first_line(exc)}): "
                "review it by hand", before=dt.join(tokens).strip())
        return None, info
    assert isinstance(node, exp.ColumnDef)
    node.set("this", exp.to_identifier(name, quoted=True))
    _transform_column(node, typ, info, ctx, table_charset)
    node.set("kind", exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=typ.text))
    out = _gen(node) + not_enforced_suffix
    if not_enforced:
        out += " NOT ENFORCED"
    return out, info


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]


def _transform_column(node: exp.ColumnDef, typ: _Type, info: _ColumnInfo, ctx: _Ctx,
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


def _force_collation(constraints: list[exp.ColumnConstraint], collation: str, name: str, ctx: _Ctx) -> None:
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


def _default_ok(kind: exp.DefaultColumnConstraint, typ: _Type, col: str, ctx: _Ctx) -> bool:
    value = kind.this
    if isinstance(value, exp.Null):
        return True
    text = _gen(value)
    if typ.word in _LOB:
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


def _note_check(kind: exp.CheckColumnConstraint, typ: _Type, info: _ColumnInfo, ctx: _Ctx) -> None:
    fn = kind.this
    if isinstance(fn, exp.Anonymous) and fn.name.lower() == "json_valid":
        ctx.add("type.mariadb-json", "rewrite", f"column {quote_ident(info.name)}: MariaDB JSON is "
                f"{typ.word.upper()} with CHECK (json_valid(...)): kept as such, so values stay byte-identical")
    elif not ctx.caps.check_enforced:
        ctx.add("check.not-enforced", "warning", f"column {quote_ident(info.name)}: CHECK {_gen(fn)} is not "
                f"enforced by {ctx.caps.name}")


# ---------------------------------------------------------------- indexes and constraints

_INDEX_WORDS = {"PRIMARY", "UNIQUE", "KEY", "INDEX", "FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK"}


def _rewrite_index(tokens: list[Token], ctx: _Ctx) -> str | None:
    original = " ".join(dt.join(tokens).split())
    tokens, ignored = _remove_words(tokens, ("IGNORED",), 0)
    if ignored:
        ctx.add("index.ignored-to-invisible", "rewrite", f"MariaDB IGNORED index becomes INVISIBLE (same meaning): "
                f"{original}")
        tokens = tokens + [Token(dt.WORD, " INVISIBLE", 0, 0)]
    tokens, not_enforced = _remove_words(tokens, ("NOT", "ENFORCED"), 0)
    tokens, kbs = _remove_words(tokens, ("KEY_BLOCK_SIZE",), 1)
    for g in kbs:
        ctx.add("index.key-block-size", "rewrite", f"index option {g} dropped (storage only)", before=g)
    tokens, clustered = _remove_words(tokens, ("CLUSTERED",), 0)
    tokens, nonclustered = _remove_words(tokens, ("NONCLUSTERED",), 0)
    try:
        node = _parse_item(dt.join(tokens))
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
            ctx.add("index.desc", "warning", f"{label}: DESC key part {_gen(ordered.this)} becomes ASC "
                    f"({ctx.caps.name} ignores DESC in indexes; only scan direction changes)", before=original)
    _drop_index_type(node, label, ctx)
    if node.find(exp.ForeignKey) is not None and not ctx.caps.foreign_keys:
        ctx.add("fk.not-enforced", "warning", f"{label}: foreign keys are not enforced by {ctx.caps.name}")
    check = node.find(exp.CheckColumnConstraint)
    if check is not None and not ctx.caps.check_enforced:
        ctx.add("check.not-enforced", "warning", f"{label}: CHECK is not enforced by {ctx.caps.name}"
                " (tidb_enable_check_constraint=ON enables it)")
    out = _gen(node)
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


def _drop_index_type(node: exp.Expression, label: str, ctx: _Ctx) -> None:
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


# ---------------------------------------------------------------- table options

_STORAGE_OPTIONS = {
    "ROW_FORMAT", "KEY_BLOCK_SIZE", "STATS_PERSISTENT", "STATS_AUTO_RECALC", "STATS_SAMPLE_PAGES", "MAX_ROWS",
    "MIN_ROWS", "AVG_ROW_LENGTH", "CHECKSUM", "TABLE_CHECKSUM", "PAGE_CHECKSUM", "PACK_KEYS", "DELAY_KEY_WRITE",
    "TRANSACTIONAL", "PAGE_COMPRESSED", "PAGE_COMPRESSION_LEVEL", "IETF_QUOTES", "INSERT_METHOD", "DATA DIRECTORY",
    "INDEX DIRECTORY", "TABLESPACE", "STORAGE", "AUTOEXTEND_SIZE", "COMPRESSION", "SECONDARY_ENGINE",
    "STATS_AUTO_RECALC",
}
_MARIADB_ONLY_OPTIONS = {"PAGE_CHECKSUM", "TRANSACTIONAL", "PAGE_COMPRESSED", "PAGE_COMPRESSION_LEVEL",
                         "IETF_QUOTES", "ENCRYPTED", "ENCRYPTION_KEY_ID"}
_SECURITY_OPTIONS = {"ENCRYPTION", "ENCRYPTED", "ENCRYPTION_KEY_ID"}
_REMOTE_ENGINES = {"federated", "federatedx", "connect", "spider", "s3", "sequence"}
_GROUPED_AI_ENGINES = {"myisam", "aria", "mrg_myisam", "merge", "bdb"}


@dataclass
class _Option:
    key: str
    value: str | None
    text: str


def _parse_options(tokens: list[Token]) -> list[_Option]:
    sig = [t for t in dt.significant(tokens) if not (t.kind == dt.PUNCT and t.text == ",")]
    out: list[_Option] = []
    k = 0
    while k < len(sig):
        t = sig[k]
        start = k
        if t.upper == "DEFAULT":
            k += 1
            continue
        key = t.upper or t.text
        k += 1
        if key == "CHARACTER" and k < len(sig) and sig[k].upper == "SET":
            key, k = "CHARSET", k + 1
        elif key in ("DATA", "INDEX") and k < len(sig) and sig[k].upper == "DIRECTORY":
            key, k = key + " DIRECTORY", k + 1
        elif key == "WITH" and k + 1 < len(sig) and sig[k].upper == "SYSTEM" and sig[k + 1].upper == "VERSIONING":
            out.append(_Option("WITH SYSTEM VERSIONING", None, "WITH SYSTEM VERSIONING"))
            k += 2
            continue
        if k < len(sig) and sig[k].kind == dt.PUNCT and sig[k].text == "=":
            k += 1
        value = None
        if k < len(sig):
            if sig[k].kind == dt.PUNCT and sig[k].text == "(":
                depth, j = 0, k
                while j < len(sig):
                    depth += sig[j].text == "(" if sig[j].kind == dt.PUNCT else 0
                    depth -= sig[j].text == ")" if sig[j].kind == dt.PUNCT else 0
                    j += 1
                    if depth == 0:
                        break
                value = " ".join(s.text for s in sig[k:j])
                k = j
            else:
                value = sig[k].text
                k += 1
        out.append(_Option(key, value, " ".join(s.text for s in sig[start:k])))
    return out


def _unquote(value: str | None) -> str:
    if value and value[0] in "'\"`" and value[-1] == value[0]:
        return value[1:-1]
    return value or ""


def _rewrite_options(tokens: list[Token], ctx: _Ctx) -> tuple[list[str], str, CharsetMapping | None]:
    """Returns (option texts to emit, source engine lower-case, table charset mapping)."""
    caps = ctx.caps
    out: list[str] = []
    engine = "innodb"
    options = _parse_options(tokens)
    charset = next((_unquote(o.value) for o in options if o.key == "CHARSET"), None)
    collation = next((_unquote(o.value) for o in options if o.key == "COLLATE"), None)
    mapping: CharsetMapping | None = None
    for o in options:
        key = o.key
        if key == "ENGINE" or key == "TYPE":
            engine = _unquote(o.value).lower()
            out += _engine_option(engine, o, ctx)
        elif key in ("CHARSET", "COLLATE"):
            if mapping is None:
                mapping = map_charset(charset, collation, caps)
                for rule, sev, reason in mapping.changes:
                    ctx.add(rule, sev, f"table default: {reason}", before=" ".join(filter(None, [charset, collation])),
                            after=" ".join(filter(None, [mapping.charset, mapping.collation])))
                if mapping.charset:
                    out.append(f"DEFAULT CHARSET={mapping.charset}")
                if mapping.collation:
                    out.append(f"COLLATE={mapping.collation}")
        elif key in ("AUTO_INCREMENT", "COMMENT"):
            out.append(f"{key}={o.value}")
        elif key == "WITH SYSTEM VERSIONING":
            ctx.add("table.system-versioning", "blocking", f"system-versioned (temporal) table: no equivalent on "
                    f"{caps.name}: migrate a non-versioned copy of the current rows")
        elif key == "SEQUENCE":
            if _unquote(o.value) not in ("0", ""):
                ctx.add("table.sequence", "blocking", f"this is a MariaDB SEQUENCE: {caps.name} has no "
                        "sequences; create it by hand (or an AUTO_INCREMENT table) and set its next value")
        elif key == "UNION":
            ctx.add("engine.merge", "blocking", f"MERGE table over {o.value}: it holds no rows of its own; migrate "
                    "the underlying tables and create a view", before=o.text)
        elif key in _SECURITY_OPTIONS:
            ctx.add("table-option.encryption", "warning", f"{o.text} dropped: configure encryption at rest on "
                    f"{caps.name} instead", before=o.text)
        elif key in _STORAGE_OPTIONS:
            if caps.name == "mysql" and key not in _MARIADB_ONLY_OPTIONS:
                out.append(o.text)
            elif key == "COMPRESSION" and caps.name == "oceanbase":
                ctx.add("table-option.compression", "rewrite", f"{o.text} dropped: OceanBase compresses every table "
                        "with its own algorithm", before=o.text)
            else:
                ctx.add("table-option.storage", "rewrite", f"{o.text} dropped (storage tuning {caps.name} ignores)",
                        before=o.text)
        else:
            ctx.add("table-option.unknown", "blocking", f"table option {o.text} is not known to this migrator: "
                    "review it by hand", before=o.text)
    return out, engine, mapping


def _engine_option(engine: str, o: _Option, ctx: _Ctx) -> list[str]:
    caps = ctx.caps
    if engine in ("mrg_myisam", "merge"):
        return []  # reported with its UNION option
    if engine in _REMOTE_ENGINES:
        ctx.add("engine.remote", "blocking", f"ENGINE={o.value}: the rows live elsewhere (remote/virtual engine); "
                "migrate the real table instead", before=o.text)
        return []
    if engine in caps.engines:
        if caps.keep_engine_clause:
            return [f"ENGINE={o.value}"]
        ctx.add("engine.dropped", "rewrite", f"ENGINE={o.value} dropped: {caps.name} uses its own storage engine",
                before=o.text)
        return []
    if engine == "innodb":
        ctx.add("engine.dropped", "rewrite", f"ENGINE={o.value} dropped: {caps.name} uses its own storage engine",
                before=o.text)
        return []
    ctx.add("engine.other", "warning", f"ENGINE={o.value} is not available on {caps.name}: the table becomes "
            "transactional (locking, crash-safety and row order differ from the source)", before=o.text,
            after=f"ENGINE={caps.default_engine}" if caps.keep_engine_clause else None)
    return [f"ENGINE={'InnoDB' if caps.default_engine == 'innodb' else caps.default_engine}"] if caps.keep_engine_clause else []


# ---------------------------------------------------------------- partitioning


def _rewrite_partition(tokens: list[Token], ctx: _Ctx) -> str | None:
    caps = ctx.caps
    sig = dt.significant(tokens)
    kind = " ".join(t.upper for t in sig[2:4] if t.upper)
    original = " ".join(dt.join(tokens).split())
    if sig[2].upper == "SYSTEM_TIME":
        ctx.add("table.system-versioning", "blocking", "PARTITION BY SYSTEM_TIME (history partitions of a "
                "system-versioned table) has no equivalent", before=original)
        return None
    if _has_words(tokens, ("SUBPARTITION", "BY")) and not caps.subpartitions:
        ctx.add("partition.subpartition", "blocking", f"{caps.name} has no subpartitions: remove the SUBPARTITION "
                "clause (rows are unaffected) and re-plan", before=original)
        return None
    if _has_words(tokens, ("LINEAR",)) and not caps.linear_partitioning:
        tokens, _ = _remove_words(tokens, ("LINEAR",), 0, top_level=False)
        ctx.add("partition.linear", "warning", f"PARTITION BY {kind}: LINEAR dropped ({caps.name} has no linear "
                "hashing): same partition count, rows distributed differently", before=original)
    if caps.name != "mysql":
        tokens, alg = _remove_words(tokens, ("ALGORITHM",), 1, top_level=False)
        for a in alg:
            ctx.add("partition.key-algorithm", "rewrite", f"PARTITION BY KEY {a} dropped (MySQL 5.1 hash "
                    "compatibility switch)", before=a)
        for words in (("STORAGE", "ENGINE"), ("ENGINE",)):
            tokens, eng = _remove_words(tokens, words, 1, top_level=False)
            if eng:
                ctx.add("partition.engine", "rewrite", f"{len(eng)} per-partition ENGINE clause(s) dropped",
                        before=eng[0])
        for words in (("COMMENT",), ("DATA", "DIRECTORY"), ("INDEX", "DIRECTORY"), ("MAX_ROWS",), ("MIN_ROWS",),
                      ("TABLESPACE",), ("NODEGROUP",)):
            tokens, gone = _remove_words(tokens, words, 1, top_level=False)
            if gone:
                sev = "warning" if words == ("COMMENT",) else "rewrite"
                ctx.add("partition.option", sev, f"{len(gone)} per-partition {' '.join(words)} clause(s) dropped "
                        f"({caps.name} rejects them inside partition definitions)", before=gone[0])
    text = " ".join(dt.join(tokens).split())
    ctx.add("partition.kept", "rewrite", f"partitioning ({kind.split()[0] if kind else '?'}) carried over verbatim "
            "(sqlglot cannot represent it)")
    return text


# ---------------------------------------------------------------- CREATE TABLE


@dataclass
class _CreateParts:
    head: str
    items: list[list[Token]]
    options: list[Token]
    partition: list[Token] | None
    table: str


def _split_create_table(text: str) -> _CreateParts:
    tokens = dt.tokenize(text)
    at = dt.find_word_seq(tokens, ("TABLE",))
    if at < 0:
        raise dt.ScanError("not a CREATE TABLE statement")
    open_k = next((k for k in range(at, len(tokens)) if tokens[k].kind == dt.PUNCT and tokens[k].text == "("), -1)
    between = {t.upper for t in tokens[at + 1:open_k if open_k >= 0 else len(tokens)]}
    if open_k < 0 or between & {"AS", "SELECT", "LIKE"}:
        raise dt.ScanError("CREATE TABLE without a column list (LIKE / AS SELECT): create the table from its "
                           "SHOW CREATE TABLE instead")
    name_tokens = [t for t in tokens[at + 1:open_k] if t.significant and t.upper not in ("IF", "NOT", "EXISTS")]
    table = name_tokens[-1].ident if name_tokens else ""
    close_k = dt.matching_paren(tokens, open_k)
    items = dt.split_top_level(tokens[open_k + 1:close_k])
    tail = tokens[close_k + 1:]
    p = dt.find_word_seq(tail, ("PARTITION", "BY"))
    options = tail if p < 0 else tail[:p]
    partition = None if p < 0 else tail[p:]
    head = " ".join(dt.join(tokens[:open_k]).split())
    return _CreateParts(head=head, items=items, options=options, partition=partition, table=table)


_CACHE: dict[tuple, RewriteResult] = {}
_CACHE_MAX = 4096


def rewrite_create_table(ddl: str, target: str = "oceanbase", source_flavor: str = "mariadb",
                         caps: TargetCaps | None = None,
                         column_collations: dict[str, str] | None = None) -> RewriteResult:
    """SHOW CREATE TABLE text (MySQL 8 or MariaDB form) -> DDL for `target`, with every change.

    Sharded fleets repeat the same DDL hundreds of times: results are cached by text and profile
    (callers get their own copies of the changes). column_collations (lower-case column name ->
    collation) forces a collation on those text columns (plan's --key-collation).
    """
    caps = resolve_caps(target, caps)
    forced = {k.lower(): v for k, v in (column_collations or {}).items()}
    key = (ddl, source_flavor, caps.key(), tuple(sorted(forced.items())))
    hit = _CACHE.get(key)
    if hit is None:
        hit = _rewrite_create_table(ddl, caps, source_flavor, forced)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = hit
    return RewriteResult(target_ddl=hit.target_ddl, changes=[c.model_copy() for c in hit.changes])


def _rewrite_create_table(ddl: str, caps: TargetCaps, source_flavor: str,
                          column_collations: dict[str, str] | None = None) -> RewriteResult:
    ctx = _Ctx(caps, source_flavor)
    ctx.column_collations = column_collations or {}
    text, unwrapped = dt.unwrap_version_comments(ddl.strip().rstrip(";"),
                                                 keep_mariadb_only=source_flavor == "mariadb")
    try:
        parts = _split_create_table(text)
    except dt.ScanError as exc:
        ctx.add("ddl.unparsed", "blocking", f"CREATE TABLE not understood ({exc}): review it by hand",
                before=ddl.strip()[:200])
        return RewriteResult(target_ddl=ddl, changes=ctx.changes)
    ctx.table = parts.table
    if unwrapped:
        ctx.add("ddl.version-comment", "rewrite", f"{unwrapped} executable comment(s) /*!...*/ unwrapped so their "
                "clauses are kept, not silently lost")
    option_texts, engine, table_cs = _rewrite_options(parts.options, ctx)
    lines: list[str] = []
    columns: list[_ColumnInfo] = []
    index_items: list[list[Token]] = []
    for item in parts.items:
        first = dt.significant(item)[0]
        if first.kind == dt.WORD and first.upper in _INDEX_WORDS:
            index_items.append(item)
            continue
        if first.kind == dt.WORD and first.upper == "PERIOD":
            ctx.add("table.system-versioning", "blocking", f"{' '.join(dt.join(item).split())}: application/system "
                    "time periods have no equivalent")
            continue
        out, info = _rewrite_column(item, ctx, table_cs)
        columns.append(info)
        if out:
            info.line = len(lines)
            lines.append(out)
    index_lines = []
    for item in index_items:
        out = _rewrite_index(item, ctx)
        if out:
            index_lines.append(out)
    _check_grouped_auto_increment(columns, index_items, engine, ctx)
    if caps.name == "tidb":
        _tidb_auto_increment(columns, lines, index_items, option_texts, ctx)
    partition = _rewrite_partition(parts.partition, ctx) if parts.partition else None
    if partition and caps.name == "tidb" and any("FOREIGN KEY" in line.upper() for line in index_lines):
        ctx.add("fk.partitioned", "warning", "TiDB does not enforce foreign keys on partitioned tables")
    body = ",\n  ".join(lines + index_lines)
    ddl_out = f"{parts.head} (\n  {body}\n)"
    if option_texts:
        ddl_out += " " + " ".join(option_texts)
    if partition:
        ddl_out += "\n" + partition
    return RewriteResult(target_ddl=ddl_out, changes=ctx.changes)


def _check_grouped_auto_increment(columns: list[_ColumnInfo], index_items: list[list[Token]], engine: str,
                                  ctx: _Ctx) -> None:
    """MyISAM/Aria number AUTO_INCREMENT per group when it is not the first column of its key."""
    ai = next((c.name for c in columns if c.auto_increment), None)
    if ai is None or engine not in _GROUPED_AI_ENGINES:
        return
    leading: set[str] = set()
    for item in index_items:
        sig = dt.significant(item)
        open_i = next((k for k, t in enumerate(item) if t.kind == dt.PUNCT and t.text == "("), None)
        if open_i is None or any(t.upper in ("FOREIGN", "CHECK") for t in sig[:3]):
            continue
        first = _next_sig(item, open_i + 1)
        if first is not None:
            leading.add(item[first].ident.lower())
    if ai.lower() not in leading:
        ctx.add("auto-increment.grouped", "blocking", f"column {quote_ident(ai)}: ENGINE={engine} numbers "
                "AUTO_INCREMENT per group of the leading key columns; the target numbers globally: make the column "
                "the first of a key (or migrate it as a plain integer) before migrating")


def _key_columns(item: list[Token]) -> list[str]:
    open_i = next((k for k, t in enumerate(item) if t.kind == dt.PUNCT and t.text == "("), None)
    if open_i is None:
        return []
    parts = dt.split_top_level(item[open_i + 1:dt.matching_paren(item, open_i)])
    return [dt.significant(p)[0].ident.lower() for p in parts]


def _tidb_auto_increment(columns: list[_ColumnInfo], lines: list[str], index_items: list[list[Token]],
                         option_texts: list[str], ctx: _Ctx) -> None:
    """TiDB caches AUTO_INCREMENT ranges per server: ask for MySQL-compatible ids, or AUTO_RANDOM if opted in."""
    ai = next((c for c in columns if c.auto_increment and c.line >= 0), None)
    if ai is None:
        return
    pk = next((_key_columns(i) for i in index_items if dt.significant(i)[0].upper == "PRIMARY"), [])
    if ctx.caps.auto_random and pk == [ai.name.lower()] and ai.type is not None and ai.type.word == "bigint":
        toks = dt.tokenize(lines[ai.line])
        lines[ai.line] = "".join("AUTO_RANDOM" if t.upper == "AUTO_INCREMENT" else t.text for t in toks)
        option_texts[:] = [o for o in option_texts if not o.startswith("AUTO_INCREMENT=")]
        ctx.add("auto-increment.auto-random", "warning", f"column {quote_ident(ai.name)}: AUTO_INCREMENT becomes "
                "AUTO_RANDOM (opted in): new ids are random, not increasing; copied ids are kept")
        return
    option_texts.append("AUTO_ID_CACHE=1")
    ctx.add("auto-increment.tidb-id-cache", "rewrite", f"column {quote_ident(ai.name)}: AUTO_ID_CACHE=1 added so "
            "TiDB hands out increasing ids like MySQL (without it ids jump per TiDB server)")


# ---------------------------------------------------------------- other DDL (binlog, dumps)


def rewrite_ddl_statement(sql: str, target: str, source_flavor: str = "mariadb",
                          caps: TargetCaps | None = None,
                          column_collations: dict[str, str] | None = None) -> RewriteResult:
    """One DDL statement seen in a binlog (or a dump) -> the statement for `target`.

    CREATE TABLE goes through rewrite_create_table; ALTER TABLE specs and CREATE INDEX are
    rewritten with the same column and index rules; CREATE/ALTER DATABASE map the charset;
    views, triggers and routines follow `schema convert`; DROP/TRUNCATE/RENAME pass through.
    Anything else is blocking: the sync must stop rather than guess. column_collations (lower-case
    column name -> collation) are forced on those columns' definitions, as in rewrite_create_table.
    """
    caps = resolve_caps(target, caps)
    text, _ = dt.unwrap_version_comments(sql.strip().rstrip(";"), keep_mariadb_only=source_flavor == "mariadb")
    tokens = dt.tokenize(text)
    sig = dt.significant(tokens)
    words = [t.upper for t in sig[:4]]
    ctx = _Ctx(caps, source_flavor)
    ctx.column_collations = {k.lower(): v for k, v in (column_collations or {}).items()}
    if not sig:
        return RewriteResult(target_ddl="", changes=[])
    lead = [w for w in words if w not in ("OR", "REPLACE", "TEMPORARY", "ONLINE", "IGNORE", "UNIQUE", "FULLTEXT",
                                         "SPATIAL")]
    if words[0] == "CREATE" and "TABLE" in lead[:2]:
        if dt.find_word_seq(tokens, ("LIKE",)) >= 0 and not any(t.kind == dt.PUNCT and t.text == "(" for t in sig):
            return RewriteResult(target_ddl=text)
        return rewrite_create_table(text, target, source_flavor, caps, column_collations)
    if words[0] in ("CREATE", "ALTER") and len(words) > 1 and words[1] in ("DATABASE", "SCHEMA"):
        return rewrite_create_database(text, caps)
    if words[0] == "CREATE" and "INDEX" in lead[:2]:
        return _rewrite_create_index(tokens, ctx)
    if words[0] == "CREATE" and set(lead[:4]) & {"VIEW", "TRIGGER", "PROCEDURE", "FUNCTION", "EVENT", "DEFINER",
                                                  "ALGORITHM", "SQL", "AGGREGATE"}:
        from .convert import convert_statement  # views/triggers/routines/events: same rules as `schema convert`

        conv = convert_statement(text, 1, caps, source_flavor)
        return RewriteResult(target_ddl=conv.target or "", changes=conv.changes)
    if words[0] in ("DROP", "TRUNCATE", "RENAME"):
        return RewriteResult(target_ddl=text)
    if words[0] == "ALTER" and "TABLE" in lead[:3]:
        return _rewrite_alter(tokens, ctx)
    ctx.add("ddl.unsupported", "blocking", f"statement {' '.join(w for w in words if w)} is not handled by the DDL "
            "rewrite: apply it on the target by hand", before=" ".join(text.split())[:200])
    return RewriteResult(target_ddl=text, changes=ctx.changes)


def _rewrite_create_index(tokens: list[Token], ctx: _Ctx) -> RewriteResult:
    """CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX n ON t (...) -> ALTER TABLE t ADD ... (same index rules)."""
    tokens, online = _remove_words(tokens, ("ALGORITHM",), 1)
    tokens, lock = _remove_words(tokens, ("LOCK",), 1)
    for o in online + lock:
        ctx.add("alter.online-option", "rewrite", f"{o} dropped (online DDL hint of the source)", before=o)
    on = dt.find_word_seq(tokens, ("ON",))
    open_k = next((k for k in range(max(on, 0), len(tokens)) if tokens[k].text == "("), -1)
    if on < 0 or open_k < 0:
        ctx.add("ddl.unparsed", "blocking", "CREATE INDEX not understood: apply it by hand",
                before=" ".join(dt.join(tokens).split()))
        return RewriteResult(target_ddl=dt.join(tokens), changes=ctx.changes)
    table = " ".join(dt.join(tokens[on + 1:open_k]).split())
    ctx.table = dt.significant(tokens[on + 1:open_k])[-1].ident
    create = next(k for k, t in enumerate(tokens) if t.upper == "CREATE")
    item = tokens[create + 1:on] + tokens[open_k:]
    got = _rewrite_index(item, ctx)
    if not got:
        return RewriteResult(target_ddl="", changes=ctx.changes)
    return RewriteResult(target_ddl=f"ALTER TABLE {table} ADD {got}", changes=ctx.changes)


def rewrite_create_database(sql: str, caps: TargetCaps) -> RewriteResult:
    """CREATE/ALTER DATABASE: map its default charset and collation to what the target has."""
    text, _ = dt.unwrap_version_comments(sql)
    tokens = dt.tokenize(text)
    sig_idx = [k for k, t in enumerate(tokens) if t.significant]
    k = 2
    while k < len(sig_idx) and tokens[sig_idx[k]].upper in ("IF", "NOT", "EXISTS"):
        k += 1
    if k >= len(sig_idx):
        return RewriteResult(target_ddl=" ".join(text.split()))
    ctx = _Ctx(caps, "mysql")
    ctx.table = tokens[sig_idx[k]].ident
    head = " ".join(dt.join(tokens[:sig_idx[k] + 1]).split())
    options = _parse_options(tokens[sig_idx[k] + 1:])
    charset = next((_unquote(o.value) for o in options if o.key == "CHARSET"), None)
    collation = next((_unquote(o.value) for o in options if o.key == "COLLATE"), None)
    out: list[str] = []
    if charset or collation:
        m = map_charset(charset, collation, caps)
        for rule, sev, reason in m.changes:
            ctx.add(rule, sev, f"database default: {reason}", before=" ".join(filter(None, [charset, collation])),
                    after=" ".join(filter(None, [m.charset, m.collation])))
        out += [f"DEFAULT CHARACTER SET {m.charset}"] if m.charset else []
        out += [f"COLLATE {m.collation}"] if m.collation else []
    for o in options:
        if o.key in ("CHARSET", "COLLATE"):
            continue
        harmless = o.key == "ENCRYPTION" and _unquote(o.value).upper() == "N"
        ctx.add("database-option.dropped", "rewrite" if harmless else "warning",
                f"database option {o.text} dropped", before=o.text)
    return RewriteResult(target_ddl=" ".join([head] + out), changes=ctx.changes)


_PASS_SPECS = {"DROP", "RENAME", "ALTER", "ORDER", "ENABLE", "DISABLE", "FORCE", "TRUNCATE", "COALESCE", "ANALYZE",
               "OPTIMIZE", "REBUILD", "REPAIR", "CHECK", "EXCHANGE", "REMOVE", "REORGANIZE", "DISCARD", "IMPORT"}
_DROPPED_SPECS = {"ALGORITHM", "LOCK"}


def _rewrite_alter(tokens: list[Token], ctx: _Ctx) -> RewriteResult:
    at = dt.find_word_seq(tokens, ("TABLE",))
    name_end = _next_sig(tokens, at + 1)
    assert name_end is not None
    # the name is one token or `db`.`t`
    k = name_end
    nxt = _next_sig(tokens, k + 1)
    if nxt is not None and tokens[nxt].text == ".":
        k = _next_sig(tokens, nxt + 1) or k
    ctx.table = tokens[k].ident
    head = " ".join(dt.join(tokens[:k + 1]).split())
    specs = dt.split_top_level(tokens[k + 1:])
    out: list[str] = []
    for spec in specs:
        sig = dt.significant(spec)
        w0 = sig[0].upper
        text = " ".join(dt.join(spec).split())
        if w0 == "ADD":
            rest = spec[spec.index(sig[1]):]
            r_sig = dt.significant(rest)
            if r_sig[0].upper == "PARTITION":
                out.append(text)
                continue
            if r_sig[0].upper in ("SYSTEM", "PERIOD"):
                ctx.add("table.system-versioning", "blocking", f"{text}: system versioning has no equivalent on "
                        f"{ctx.caps.name}", before=text)
                continue
            if r_sig[0].upper == "COLUMN":
                rest = rest[rest.index(r_sig[1]):]
                r_sig = dt.significant(rest)
            if r_sig[0].upper == "IF":  # MariaDB ADD COLUMN IF NOT EXISTS
                rest = rest[rest.index(r_sig[3]):]
                r_sig = dt.significant(rest)
            if r_sig[0].kind == dt.WORD and r_sig[0].upper in _INDEX_WORDS:
                got = _rewrite_index(rest, ctx)
                if got:
                    out.append("ADD " + got)
            elif r_sig[0].kind == dt.PUNCT and r_sig[0].text == "(":
                ctx.add("ddl.unsupported", "blocking", "ALTER TABLE ADD (col, ...) list form: apply by hand",
                        before=text)
            else:
                col_tokens, position = _split_position(rest)
                got, _ = _rewrite_column(col_tokens, ctx, None)
                if got:
                    out.append("ADD COLUMN " + got + position)
        elif w0 in ("MODIFY", "CHANGE"):
            rest = spec[spec.index(sig[1]):]
            r_sig = dt.significant(rest)
            if r_sig[0].upper == "COLUMN":
                rest = rest[rest.index(r_sig[1]):]
                r_sig = dt.significant(rest)
            prefix = w0 + " COLUMN "
            if w0 == "CHANGE":
                prefix += r_sig[0].text + " "
                rest = rest[rest.index(r_sig[1]):]
            col_tokens, position = _split_position(rest)
            got, _ = _rewrite_column(col_tokens, ctx, None)
            if got:
                out.append(prefix + got + position)
        elif w0 in _DROPPED_SPECS:
            ctx.add("alter.online-option", "rewrite", f"{text} dropped (online DDL hint of the source)", before=text)
        elif w0 == "PARTITION" and len(sig) > 1 and sig[1].upper == "BY":
            got = _rewrite_partition(spec, ctx)
            if got:
                out.append(got)
        elif w0 in _PASS_SPECS or w0 == "CONVERT" and ctx.caps.name == "mysql":
            out.append(text)
        elif w0 in ("ENGINE", "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT", "AUTO_INCREMENT", "ROW_FORMAT",
                    "KEY_BLOCK_SIZE") or w0 in _STORAGE_OPTIONS:
            opts, _, _ = _rewrite_options(spec, ctx)
            out += opts
        elif w0 == "CONVERT":
            # CONVERT TO CHARACTER SET cs [COLLATE co]: map the charset, keep the statement form
            opts, _, m = _rewrite_options(spec[spec.index(sig[2]):], ctx)
            if m and m.charset:
                out.append(f"CONVERT TO CHARACTER SET {m.charset}" + (f" COLLATE {m.collation}" if m.collation else ""))
        else:
            ctx.add("ddl.unsupported", "blocking", f"ALTER TABLE clause not handled: {text[:120]}: apply by hand",
                    before=text)
    if not out:
        ctx.add("alter.empty", "rewrite", "nothing left to run on the target after the rewrite")
        return RewriteResult(target_ddl="", changes=ctx.changes)
    return RewriteResult(target_ddl=head + " " + ", ".join(out), changes=ctx.changes)


def _split_position(tokens: list[Token]) -> tuple[list[Token], str]:
    """Split a trailing `FIRST` / `AFTER col` off a column definition."""
    sig_idx = [k for k, t in enumerate(tokens) if t.significant]
    if sig_idx and tokens[sig_idx[-1]].upper == "FIRST":
        return tokens[:sig_idx[-1]], " FIRST"
    if len(sig_idx) >= 2 and tokens[sig_idx[-2]].upper == "AFTER":
        return tokens[:sig_idx[-2]], " AFTER " + tokens[sig_idx[-1]].text
    return tokens, ""
