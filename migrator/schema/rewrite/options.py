"""Table options (engine, storage, security, MariaDB-only) and the partition clause, token by token:
sqlglot cannot represent them; what the target accepts is re-emitted verbatim."""

from __future__ import annotations

from dataclasses import dataclass

from .. import ddl_text as dt
from ..ddl_text import Token
from .charsets import CharsetMapping, map_charset
from .context import Ctx, has_words, remove_words

# ---------------------------------------------------------------- table options

STORAGE_OPTIONS = {
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
GROUPED_AI_ENGINES = {"myisam", "aria", "mrg_myisam", "merge", "bdb"}


@dataclass
class _Option:
    key: str
    value: str | None
    text: str


def parse_options(tokens: list[Token]) -> list[_Option]:
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


def unquote(value: str | None) -> str:
    if value and value[0] in "'\"`" and value[-1] == value[0]:
        return value[1:-1]
    return value or ""


def rewrite_options(tokens: list[Token], ctx: Ctx) -> tuple[list[str], str, CharsetMapping | None]:
    """Returns (option texts to emit, source engine lower-case, table charset mapping)."""
    caps = ctx.caps
    out: list[str] = []
    engine = "innodb"
    options = parse_options(tokens)
    charset = next((unquote(o.value) for o in options if o.key == "CHARSET"), None)
    collation = next((unquote(o.value) for o in options if o.key == "COLLATE"), None)
    mapping: CharsetMapping | None = None
    for o in options:
        key = o.key
        if key == "ENGINE" or key == "TYPE":
            engine = unquote(o.value).lower()
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
            if unquote(o.value) not in ("0", ""):
                ctx.add("table.sequence", "blocking", f"this is a MariaDB SEQUENCE: {caps.name} has no "
                        "sequences; create it by hand (or an AUTO_INCREMENT table) and set its next value")
        elif key == "UNION":
            ctx.add("engine.merge", "blocking", f"MERGE table over {o.value}: it holds no rows of its own; migrate "
                    "the underlying tables and create a view", before=o.text)
        elif key in _SECURITY_OPTIONS:
            ctx.add("table-option.encryption", "warning", f"{o.text} dropped: configure encryption at rest on "
                    f"{caps.name} instead", before=o.text)
        elif key in STORAGE_OPTIONS:
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


def _engine_option(engine: str, o: _Option, ctx: Ctx) -> list[str]:
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


def rewrite_partition(tokens: list[Token], ctx: Ctx) -> str | None:
    caps = ctx.caps
    sig = dt.significant(tokens)
    kind = " ".join(t.upper for t in sig[2:4] if t.upper)
    original = " ".join(dt.join(tokens).split())
    if sig[2].upper == "SYSTEM_TIME":
        ctx.add("table.system-versioning", "blocking", "PARTITION BY SYSTEM_TIME (history partitions of a "
                "system-versioned table) has no equivalent", before=original)
        return None
    if has_words(tokens, ("SUBPARTITION", "BY")) and not caps.subpartitions:
        ctx.add("partition.subpartition", "blocking", f"{caps.name} has no subpartitions: remove the SUBPARTITION "
                "clause (rows are unaffected) and re-plan", before=original)
        return None
    if has_words(tokens, ("LINEAR",)) and not caps.linear_partitioning:
        tokens, _ = remove_words(tokens, ("LINEAR",), 0, top_level=False)
        ctx.add("partition.linear", "warning", f"PARTITION BY {kind}: LINEAR dropped ({caps.name} has no linear "
                "hashing): same partition count, rows distributed differently", before=original)
    if caps.name != "mysql":
        tokens, alg = remove_words(tokens, ("ALGORITHM",), 1, top_level=False)
        for a in alg:
            ctx.add("partition.key-algorithm", "rewrite", f"PARTITION BY KEY {a} dropped (MySQL 5.1 hash "
                    "compatibility switch)", before=a)
        for words in (("STORAGE", "ENGINE"), ("ENGINE",)):
            tokens, eng = remove_words(tokens, words, 1, top_level=False)
            if eng:
                ctx.add("partition.engine", "rewrite", f"{len(eng)} per-partition ENGINE clause(s) dropped",
                        before=eng[0])
        for words in (("COMMENT",), ("DATA", "DIRECTORY"), ("INDEX", "DIRECTORY"), ("MAX_ROWS",), ("MIN_ROWS",),
                      ("TABLESPACE",), ("NODEGROUP",)):
            tokens, gone = remove_words(tokens, words, 1, top_level=False)
            if gone:
                sev = "warning" if words == ("COMMENT",) else "rewrite"
                ctx.add("partition.option", sev, f"{len(gone)} per-partition {' '.join(words)} clause(s) dropped "
                        f"({caps.name} rejects them inside partition definitions)", before=gone[0])
    text = " ".join(dt.join(tokens).split())
    ctx.add("partition.kept", "rewrite", f"partitioning ({kind.split()[0] if kind else '?'}) carried over verbatim "
            "(sqlglot cannot represent it)")
    return text
