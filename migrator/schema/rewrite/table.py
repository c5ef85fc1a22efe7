"""CREATE TABLE: split into columns, indexes, options and partitioning; each part rewritten; cached
per DDL text and target profile (sharded fleets repeat the same DDL)."""

from __future__ import annotations

from dataclasses import dataclass

from ...db import quote_ident
from .. import ddl_text as dt
from ..ddl_text import Token
from ..targets import TargetCaps, resolve_caps
from .columns import INDEX_WORDS, ColumnInfo, rewrite_column, rewrite_index
from .context import Ctx, RewriteResult, next_sig
from .options import GROUPED_AI_ENGINES, rewrite_options, rewrite_partition

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
    ctx = Ctx(caps, source_flavor)
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
    option_texts, engine, table_cs = rewrite_options(parts.options, ctx)
    lines: list[str] = []
    columns: list[ColumnInfo] = []
    index_items: list[list[Token]] = []
    for item in parts.items:
        first = dt.significant(item)[0]
        if first.kind == dt.WORD and first.upper in INDEX_WORDS:
            index_items.append(item)
            continue
        if first.kind == dt.WORD and first.upper == "PERIOD":
            ctx.add("table.system-versioning", "blocking", f"{' '.join(dt.join(item).split())}: application/system "
                    "time periods have no equivalent")
            continue
        out, info = rewrite_column(item, ctx, table_cs)
        columns.append(info)
        if out:
            info.line = len(lines)
            lines.append(out)
    index_lines = []
    for item in index_items:
        out = rewrite_index(item, ctx)
        if out:
            index_lines.append(out)
    _check_grouped_auto_increment(columns, index_items, engine, ctx)
    if caps.name == "tidb":
        _tidb_auto_increment(columns, lines, index_items, option_texts, ctx)
    partition = rewrite_partition(parts.partition, ctx) if parts.partition else None
    if partition and caps.name == "tidb" and any("FOREIGN KEY" in line.upper() for line in index_lines):
        ctx.add("fk.partitioned", "warning", "TiDB does not enforce foreign keys on partitioned tables")
    body = ",\n  ".join(lines + index_lines)
    ddl_out = f"{parts.head} (\n  {body}\n)"
    if option_texts:
        ddl_out += " " + " ".join(option_texts)
    if partition:
        ddl_out += "\n" + partition
    return RewriteResult(target_ddl=ddl_out, changes=ctx.changes)


def _check_grouped_auto_increment(columns: list[ColumnInfo], index_items: list[list[Token]], engine: str,
                                  ctx: Ctx) -> None:
    """MyISAM/Aria number AUTO_INCREMENT per group when it is not the first column of its key."""
    ai = next((c.name for c in columns if c.auto_increment), None)
    if ai is None or engine not in GROUPED_AI_ENGINES:
        return
    leading: set[str] = set()
    for item in index_items:
        sig = dt.significant(item)
        open_i = next((k for k, t in enumerate(item) if t.kind == dt.PUNCT and t.text == "("), None)
        if open_i is None or any(t.upper in ("FOREIGN", "CHECK") for t in sig[:3]):
            continue
        first = next_sig(item, open_i + 1)
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


def _tidb_auto_increment(columns: list[ColumnInfo], lines: list[str], index_items: list[list[Token]],
                         option_texts: list[str], ctx: Ctx) -> None:
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
