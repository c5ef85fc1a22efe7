"""Column data types: aliases, MariaDB-only types and what each target stores them as (kept as
text we map ourselves: sqlglot changes some types silently)."""

from __future__ import annotations

from dataclasses import dataclass

from ...db import quote_ident
from .. import ddl_text as dt
from ..ddl_text import Token
from .context import Ctx, next_sig

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
LOB_TYPES = {"tinytext", "text", "mediumtext", "longtext", "tinyblob", "blob", "mediumblob", "longblob", "json"}
# MariaDB-only types -> a type every target stores the same text in (values read back identical)
_MARIADB_TYPES = {"inet6": "varchar(39)", "inet4": "varchar(15)", "uuid": "char(36)"}


@dataclass
class MappedType:
    word: str  # canonical lower-case base type, e.g. "varchar"
    text: str  # full type text to emit, e.g. "varchar(20)" / "float(7,3) unsigned zerofill"
    national: bool = False


def type_span(tokens: list[Token], start: int) -> int:
    """Index just past the data type that begins at significant token `start`."""
    k = start + 1
    sig_next = next_sig(tokens, k)
    if sig_next is not None and tokens[start].upper in ("DOUBLE", "NATIONAL", "CHAR", "CHARACTER", "LONG") \
            and tokens[sig_next].upper in ("PRECISION", "CHAR", "VARCHAR", "CHARACTER", "VARYING", "VARBINARY"):
        k = sig_next + 1
        nxt = next_sig(tokens, k)
        if nxt is not None and tokens[nxt].upper == "VARYING":
            k = nxt + 1
    nxt = next_sig(tokens, k)
    if nxt is not None and tokens[nxt].kind == dt.PUNCT and tokens[nxt].text == "(":
        k = dt.matching_paren(tokens, nxt) + 1
    while True:
        nxt = next_sig(tokens, k)
        if nxt is not None and tokens[nxt].upper in ("UNSIGNED", "SIGNED", "ZEROFILL"):
            k = nxt + 1
        else:
            return k



def map_type(type_tokens: list[Token], column: str, ctx: Ctx) -> MappedType | None:
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
        return MappedType(word=new.split("(")[0], text=new)
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
        return MappedType(word="bigint", text="bigint unsigned NOT NULL AUTO_INCREMENT UNIQUE")
    text = " ".join([base + (rest if rest.startswith("(") else "")] + mods)
    if rest and not rest.startswith("("):
        text = " ".join([base, rest] + mods)
    return MappedType(word=base, text=text, national=national)
