"""Other DDL seen in a binlog or a dump: CREATE INDEX, CREATE/ALTER DATABASE, ALTER TABLE; views,
triggers and routines go through objects.py; DROP/TRUNCATE/RENAME pass through."""

from __future__ import annotations

from .. import ddl_text as dt
from ..ddl_text import Token
from ..targets import TargetCaps, resolve_caps
from .charsets import map_charset
from .columns import INDEX_WORDS, rewrite_column, rewrite_index
from .context import Ctx, RewriteResult, next_sig, remove_words
from .objects import OBJECT_KINDS, object_kind, rewrite_object
from .options import (
    STORAGE_OPTIONS,
    parse_options,
    rewrite_options,
    rewrite_partition,
    unquote,
)
from .table import rewrite_create_table

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
    ctx = Ctx(caps, source_flavor)
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
        kind, name_at = object_kind(sig)  # views/triggers/routines/events: same rules as `schema convert`
        if kind in OBJECT_KINDS:
            return rewrite_object(kind, sig[name_at].ident, text, tokens, caps)
    if words[0] in ("DROP", "TRUNCATE", "RENAME"):
        return RewriteResult(target_ddl=text)
    if words[0] == "ALTER" and "TABLE" in lead[:3]:
        return _rewrite_alter(tokens, ctx)
    ctx.add("ddl.unsupported", "blocking", f"statement {' '.join(w for w in words if w)} is not handled by the DDL "
            "rewrite: apply it on the target by hand", before=" ".join(text.split())[:200])
    return RewriteResult(target_ddl=text, changes=ctx.changes)


def _rewrite_create_index(tokens: list[Token], ctx: Ctx) -> RewriteResult:
    """CREATE [UNIQUE|FULLTEXT|SPATIAL] INDEX n ON t (...) -> ALTER TABLE t ADD ... (same index rules)."""
    tokens, online = remove_words(tokens, ("ALGORITHM",), 1)
    tokens, lock = remove_words(tokens, ("LOCK",), 1)
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
    got = rewrite_index(item, ctx)
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
    ctx = Ctx(caps, "mysql")
    ctx.table = tokens[sig_idx[k]].ident
    head = " ".join(dt.join(tokens[:sig_idx[k] + 1]).split())
    options = parse_options(tokens[sig_idx[k] + 1:])
    charset = next((unquote(o.value) for o in options if o.key == "CHARSET"), None)
    collation = next((unquote(o.value) for o in options if o.key == "COLLATE"), None)
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
        harmless = o.key == "ENCRYPTION" and unquote(o.value).upper() == "N"
        ctx.add("database-option.dropped", "rewrite" if harmless else "warning",
                f"database option {o.text} dropped", before=o.text)
    return RewriteResult(target_ddl=" ".join([head] + out), changes=ctx.changes)


_PASS_SPECS = {"DROP", "RENAME", "ALTER", "ORDER", "ENABLE", "DISABLE", "FORCE", "TRUNCATE", "COALESCE", "ANALYZE",
               "OPTIMIZE", "REBUILD", "REPAIR", "CHECK", "EXCHANGE", "REMOVE", "REORGANIZE", "DISCARD", "IMPORT"}
_DROPPED_SPECS = {"ALGORITHM", "LOCK"}


def _rewrite_alter(tokens: list[Token], ctx: Ctx) -> RewriteResult:
    at = dt.find_word_seq(tokens, ("TABLE",))
    name_end = next_sig(tokens, at + 1)
    assert name_end is not None
    # the name is one token or `db`.`t`
    k = name_end
    nxt = next_sig(tokens, k + 1)
    if nxt is not None and tokens[nxt].text == ".":
        k = next_sig(tokens, nxt + 1) or k
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
            if r_sig[0].kind == dt.WORD and r_sig[0].upper in INDEX_WORDS:
                got = rewrite_index(rest, ctx)
                if got:
                    out.append("ADD " + got)
            elif r_sig[0].kind == dt.PUNCT and r_sig[0].text == "(":
                ctx.add("ddl.unsupported", "blocking", "ALTER TABLE ADD (col, ...) list form: apply by hand",
                        before=text)
            else:
                col_tokens, position = _split_position(rest)
                got, _ = rewrite_column(col_tokens, ctx, None)
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
            got, _ = rewrite_column(col_tokens, ctx, None)
            if got:
                out.append(prefix + got + position)
        elif w0 in _DROPPED_SPECS:
            ctx.add("alter.online-option", "rewrite", f"{text} dropped (online DDL hint of the source)", before=text)
        elif w0 == "PARTITION" and len(sig) > 1 and sig[1].upper == "BY":
            got = rewrite_partition(spec, ctx)
            if got:
                out.append(got)
        elif w0 in _PASS_SPECS or w0 == "CONVERT" and ctx.caps.name == "mysql":
            out.append(text)
        elif w0 in ("ENGINE", "DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT", "AUTO_INCREMENT", "ROW_FORMAT",
                    "KEY_BLOCK_SIZE") or w0 in STORAGE_OPTIONS:
            opts, _, _ = rewrite_options(spec, ctx)
            out += opts
        elif w0 == "CONVERT":
            # CONVERT TO CHARACTER SET cs [COLLATE co]: map the charset, keep the statement form
            opts, _, m = rewrite_options(spec[spec.index(sig[2]):], ctx)
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
