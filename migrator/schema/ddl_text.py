"""Quote-aware scanning of MySQL DDL text: tokens, version comments, statements, clauses.

sqlglot treats `/*!50100 ... */` as a comment and drops or mangles it (ddl-compat.md, pitfall 1),
and cannot parse several clauses SHOW CREATE TABLE prints (partitioning, some options). This
module finds those pieces by scanning tokens (strings, quoted identifiers and comments are
single tokens, so a `PARTITION` or `,` inside a string or comment is never mistaken for SQL).
No regular expressions over SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WS = "ws"
COMMENT = "comment"
VCOMMENT = "vcomment"  # executable /*!NNNNN ... */ or MariaDB /*M!NNNNNN ... */
STRING = "string"
QIDENT = "qident"
NUMBER = "number"
WORD = "word"
PUNCT = "punct"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == WORD else ""

    @property
    def ident(self) -> str:
        """The identifier a WORD or `quoted` token names (backticks undone)."""
        if self.kind == QIDENT:
            return self.text[1:-1].replace("``", "`")
        return self.text

    @property
    def significant(self) -> bool:
        return self.kind not in (WS, COMMENT)


class ScanError(ValueError):
    """Unterminated string, identifier or comment."""


def _scan_quoted(sql: str, i: int, quote: str) -> int:
    """Index just past the closing quote; doubled quotes and backslash escapes (not in `) stay inside."""
    n = len(sql)
    j = i + 1
    while j < n:
        ch = sql[j]
        if ch == "\\" and quote != "`":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    raise ScanError(f"unterminated {quote} quote starting at offset {i}")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_$" or ord(ch) > 127


def tokenize(sql: str) -> list[Token]:
    """Split MySQL text into tokens; concatenating every token's text gives the input back."""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            j = i
            while j < n and sql[j].isspace():
                j += 1
            kind = WS
        elif ch == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            if j < 0:
                raise ScanError(f"unterminated comment starting at offset {i}")
            j += 2
            kind = VCOMMENT if sql.startswith("/*!", i) or sql.startswith("/*M!", i) else COMMENT
        elif ch == "#" or (ch == "-" and sql.startswith("--", i) and (i + 2 >= n or sql[i + 2].isspace())):
            j = sql.find("\n", i)
            j = n if j < 0 else j + 1
            kind = COMMENT
        elif ch in "'\"":
            j = _scan_quoted(sql, i, ch)
            kind = STRING
        elif ch == "`":
            j = _scan_quoted(sql, i, ch)
            kind = QIDENT
        elif ch.isdigit() or (ch == "." and i + 1 < n and sql[i + 1].isdigit()):
            j = i
            while j < n and (_is_word_char(sql[j]) or sql[j] == "."):
                j += 1
            kind = NUMBER if not any(c.isalpha() and c not in "eExX" for c in sql[i:j]) else WORD
        elif _is_word_char(ch):
            j = i
            while j < n and _is_word_char(sql[j]):
                j += 1
            # _utf8mb4'x' / x'41' / b'01' / N'x': an introducer glued to a string is one string token
            if j < n and sql[j] == "'" and (sql[i:j].lower() in ("x", "b", "n") or sql[i] == "_"):
                j = _scan_quoted(sql, j, "'")
                kind = STRING
            else:
                kind = WORD
        else:
            j = i + 1
            kind = PUNCT
        out.append(Token(kind, sql[i:j], i, j))
        i = j
    return out


def significant(tokens: Iterable[Token]) -> list[Token]:
    return [t for t in tokens if t.significant]


def join(tokens: Iterable[Token]) -> str:
    return "".join(t.text for t in tokens)


# ---------------------------------------------------------------- version comments


def version_comment_parts(text: str) -> tuple[int | None, bool, str]:
    """`/*!50100 X */` -> (50100, False, ' X '); `/*M!100301 X */` -> (100301, True, ...)."""
    body = text[2:-2]
    mariadb_only = body.startswith("M!")
    body = body[2:] if mariadb_only else body[1:]
    digits = ""
    for ch in body:
        if ch.isdigit() and len(digits) < 6:
            digits += ch
        else:
            break
    # MySQL uses 5 digits, MariaDB's /*M! uses 6; a 6th digit only counts for /*M!
    if not mariadb_only and len(digits) > 5:
        digits = digits[:5]
    version = int(digits) if digits else None
    return version, mariadb_only, body[len(digits):]


def unwrap_version_comments(sql: str, *, keep_mariadb_only: bool = True) -> tuple[str, int]:
    """Replace every executable comment by its content (padded with spaces).

    Returns (text, how many were unwrapped). MariaDB-only `/*M!...*/` comments are unwrapped
    too unless keep_mariadb_only is False (then they are dropped: a MySQL source never runs
    them). Content is unwrapped recursively (a version comment inside one is rare but legal).
    """
    count = 0
    parts: list[str] = []
    for tok in tokenize(sql):
        if tok.kind != VCOMMENT:
            parts.append(tok.text)
            continue
        _, mariadb_only, body = version_comment_parts(tok.text)
        count += 1
        if mariadb_only and not keep_mariadb_only:
            parts.append(" ")
            continue
        inner, n = unwrap_version_comments(body, keep_mariadb_only=keep_mariadb_only)
        count += n
        parts.append(" " + inner.strip() + " ")
    return "".join(parts), count


# ---------------------------------------------------------------- structure helpers


def matching_paren(tokens: list[Token], open_index: int) -> int:
    """Index of the `)` closing tokens[open_index] == `(`."""
    depth = 0
    for k in range(open_index, len(tokens)):
        t = tokens[k]
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
            if depth == 0:
                return k
    raise ScanError("unbalanced parentheses")


def split_top_level(tokens: list[Token], sep: str = ",") -> list[list[Token]]:
    """Split a token list at separators outside parentheses."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
        if depth == 0 and t.kind == PUNCT and t.text == sep:
            groups.append([])
            continue
        groups[-1].append(t)
    return [g for g in groups if significant(g)]


def find_word_seq(tokens: list[Token], words: tuple[str, ...], start: int = 0, top_level: bool = True) -> int:
    """Index (in `tokens`, significant tokens only) where the words appear in sequence, or -1."""
    sig = [k for k, t in enumerate(tokens) if t.significant]
    depth_at: dict[int, int] = {}
    depth = 0
    for k, t in enumerate(tokens):
        depth_at[k] = depth
        if t.kind == PUNCT and t.text == "(":
            depth += 1
        elif t.kind == PUNCT and t.text == ")":
            depth -= 1
    for pos, k in enumerate(sig):
        if k < start or (top_level and depth_at[k] != 0):
            continue
        if all(pos + m < len(sig) and tokens[sig[pos + m]].upper == w for m, w in enumerate(words)):
            return k
    return -1


# ---------------------------------------------------------------- scripts


@dataclass
class Statement:
    text: str  # without the delimiter
    line: int  # 1-based line where it starts
    delimiter: str = ";"


def split_statements(script: str) -> list[Statement]:
    """Split a mysql client script into statements, honouring `DELIMITER xx` lines.

    Strings, quoted identifiers and comments are opaque; version comments are kept as they
    are (a `/*!40101 SET ... */;` line is one statement).
    """
    out: list[Statement] = []
    delimiter = ";"
    pos = 0
    n = len(script)
    buf_start: int | None = None
    line = 1

    seen = [0, 1]  # (offset, line) of the last lookup: offsets only grow, so counting stays linear

    def line_of(offset: int) -> int:
        seen[1] += script.count("\n", seen[0], offset)
        seen[0] = offset
        return seen[1]

    while pos < n:
        # a DELIMITER command is a client command on its own line, only between statements
        if buf_start is None:
            ws_end = pos
            while ws_end < n and script[ws_end].isspace():
                ws_end += 1
            if script[ws_end:ws_end + 10].upper() == "DELIMITER " or script[ws_end:ws_end + 10].upper() == "DELIMITER\t":
                eol = script.find("\n", ws_end)
                eol = n if eol < 0 else eol
                delimiter = script[ws_end + 10:eol].strip() or ";"
                pos = eol + 1
                continue
        if buf_start is None and _is_client_command(script, pos):
            # MariaDB's `/*M!999999\- enable the sandbox mode */` is a client command with no delimiter
            end = script.find("*/", pos) + 2
            out.append(Statement(script[pos:end], line_of(pos), ""))
            pos = end
            continue
        tok_end = _next_token_end(script, pos)
        if buf_start is None and not script[pos:tok_end].isspace():
            if not _is_comment_only(script[pos:tok_end]):
                buf_start = pos
                line = line_of(pos)
        if buf_start is not None and script.startswith(delimiter, pos):
            text = script[buf_start:pos].strip()
            if text:
                out.append(Statement(text, line, delimiter))
            buf_start = None
            pos += len(delimiter)
            continue
        pos = tok_end
    if buf_start is not None and script[buf_start:].strip():
        out.append(Statement(script[buf_start:].strip(), line, delimiter))
    return out


def _is_client_command(script: str, pos: int) -> bool:
    if not (script.startswith("/*!", pos) or script.startswith("/*M!", pos)):
        return False
    end = script.find("*/", pos)
    if end < 0:
        return False
    _, _, body = version_comment_parts(script[pos:end + 2])
    return body.startswith("\\")


def _is_comment_only(text: str) -> bool:
    return text.startswith("--") or text.startswith("#") or (text.startswith("/*") and not text.startswith("/*!")
                                                               and not text.startswith("/*M!"))


def _next_token_end(script: str, pos: int) -> int:
    """End of the lexical unit at pos: a whole string/comment/identifier, else one character."""
    ch = script[pos]
    if ch in "'\"`":
        return _scan_quoted(script, pos, ch)
    if script.startswith("/*", pos):
        end = script.find("*/", pos + 2)
        if end < 0:
            raise ScanError(f"unterminated comment at line {script.count(chr(10), 0, pos) + 1}")
        if script.startswith("/*!", pos) or script.startswith("/*M!", pos):
            return pos + 1  # executable comment: its content is SQL (may hold the delimiter? no: scan inside)
        return end + 2
    if ch == "#" or (script.startswith("--", pos) and (pos + 2 >= len(script) or script[pos + 2].isspace())):
        end = script.find("\n", pos)
        return len(script) if end < 0 else end + 1
    return pos + 1
