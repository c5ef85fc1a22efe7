"""What every rewrite step shares: the sqlglot dialect, the result and change collector, and
small token helpers (parsing one table element, removing word sequences)."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from ...db import quote_ident
from .. import ddl_text as dt
from ..ddl_text import Token
from ..model import Change
from ..targets import TargetCaps


class Dialect(MySQL):
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


class Ctx:
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

def next_sig(tokens: list[Token], k: int) -> int | None:
    while k < len(tokens):
        if tokens[k].significant:
            return k
        k += 1
    return None

# ---------------------------------------------------------------- parsing one item with sqlglot


def parse_item(text: str) -> exp.Expression:
    """Parse one column/index definition as the only item of a CREATE TABLE."""
    tree = sqlglot.parse_one(f"CREATE TABLE _x ({text})", read=Dialect)
    if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema) or len(tree.this.expressions) != 1:
        raise ParseError("not a single table element")
    return tree.this.expressions[0]


def gen_sql(node: exp.Expression) -> str:
    return node.sql(dialect=Dialect)


def remove_words(tokens: list[Token], words: tuple[str, ...], value_tokens: int = 0,
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
                j = next_sig(tokens, j + 1)
                if j is None or tokens[j].upper != w:
                    ok = False
                    break
                idx.append(j)
            if ok:
                for _ in range(value_tokens):
                    nxt = next_sig(tokens, idx[-1] + 1)
                    if nxt is None:
                        break
                    if tokens[nxt].kind == dt.PUNCT and tokens[nxt].text == "=":
                        nxt2 = next_sig(tokens, nxt + 1)
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


SYSTEM_VERSIONING_WORDS = (("WITH", "SYSTEM", "VERSIONING"), ("WITHOUT", "SYSTEM", "VERSIONING"),
                            ("AS", "ROW", "START"), ("AS", "ROW", "END"))


def has_words(tokens: list[Token], words: tuple[str, ...]) -> bool:
    return dt.find_word_seq(tokens, words, top_level=False) >= 0
