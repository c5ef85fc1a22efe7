"""Views, triggers, routines and events (in a dump or a binlog): the body stays verbatim, it is SQL
the target parses itself; DEFINER / ALGORITHM / SQL SECURITY are handled per target, and an object
kind the target lacks is blocking."""

from __future__ import annotations

from ...db import quote_ident
from .. import ddl_text as dt
from ..model import Change
from ..targets import TargetCaps
from .context import RewriteResult

OBJECT_KINDS = ("view", "trigger", "procedure", "function", "event")


def object_kind(sig: list[dt.Token]) -> tuple[str, int]:
    """(kind, index of the name) for CREATE/DROP statements; skips OR REPLACE, DEFINER=..., etc."""
    kinds = {"TABLE": "table", "VIEW": "view", "TRIGGER": "trigger", "PROCEDURE": "procedure",
             "FUNCTION": "function", "EVENT": "event", "DATABASE": "database", "SCHEMA": "schema",
             "INDEX": "index", "SEQUENCE": "sequence", "USER": "user", "ROLE": "role", "SERVER": "server"}
    for k, t in enumerate(sig[1:], start=1):
        if t.upper in kinds and not (k > 0 and sig[k - 1].text == "="):
            n = k + 1
            while n < len(sig) and sig[n].upper in ("IF", "NOT", "EXISTS"):
                n += 1
            # db.name: keep the last part as the name
            if n + 2 < len(sig) and sig[n + 1].text == ".":
                n += 2
            return kinds[t.upper], min(n, len(sig) - 1)
        if t.upper in ("AS", "(", "BEGIN"):
            break
    return "", 0


def supported(kind: str, caps: TargetCaps) -> bool:
    return {"trigger": caps.triggers, "procedure": caps.routines, "function": caps.routines,
            "event": caps.events, "view": True}[kind]


def rewrite_object(kind: str, name: str, text: str, tokens: list[dt.Token], caps: TargetCaps) -> RewriteResult:
    """Views, triggers, routines, events: the body stays verbatim; clauses around it are handled.
    A blocked object has no target DDL."""
    changes: list[Change] = []
    who = f"{kind} {quote_ident(name)}"
    if not supported(kind, caps):
        changes.append(Change(rule=f"{kind}.unsupported", severity="blocking",
                              reason=f"{who}: {caps.name} has no {kind}s: re-implement it in the application "
                                     "or a scheduler", before=" ".join(text.split())[:200]))
        return RewriteResult("", changes)
    if kind == "function" and dt.find_word_seq(tokens, ("SONAME",)) >= 0:
        changes.append(Change(rule="function.udf", severity="blocking",
                              reason=f"{who}: a loadable (C) function cannot be migrated: install an equivalent "
                                     "on the target by hand"))
        return RewriteResult("", changes)
    keyword = {"view": "VIEW", "trigger": "TRIGGER", "procedure": "PROCEDURE", "function": "FUNCTION",
               "event": "EVENT"}[kind]
    at = dt.find_word_seq(tokens, (keyword,))
    head, body = tokens[:at], tokens[at:]
    kept: list[dt.Token] = []
    sig_head = [i for i, t in enumerate(head) if t.significant]
    skip_until = -1
    for pos, i in enumerate(sig_head):
        if i <= skip_until:
            continue
        t = head[i]
        if t.upper == "DEFINER":
            end = definer_end(head, sig_head, pos)
            clause = " ".join(dt.join(head[i:end + 1]).split())
            changes.append(Change(rule="definer.dropped", severity="warning",
                                  reason=f"{who}: {clause} dropped: the object is owned by the user who runs the "
                                         "script (create that account and re-add DEFINER if it matters)",
                                  before=clause))
            skip_until = end
            continue
        if t.upper == "ALGORITHM" and kind == "view":
            end = sig_head[min(pos + 2, len(sig_head) - 1)]
            clause = " ".join(dt.join(head[i:end + 1]).split())
            if caps.name != "mysql":
                changes.append(Change(rule="view.algorithm", severity="rewrite",
                                      reason=f"{who}: {clause} dropped ({caps.name} chooses how to run views)",
                                      before=clause))
                skip_until = end
                continue
        if t.upper == "SQL" and pos + 2 < len(sig_head) and head[sig_head[pos + 1]].upper == "SECURITY":
            end = sig_head[pos + 2]
            mode = head[end].upper
            clause = f"SQL SECURITY {mode}"
            if caps.name == "oceanbase" or mode == "INVOKER" and caps.name != "mysql":
                sev = "warning" if mode == "INVOKER" else "rewrite"
                changes.append(Change(rule="view.sql-security", severity=sev,  # type: ignore[arg-type]
                                      reason=f"{who}: {clause} dropped ({caps.name} rejects or ignores it"
                                             + ("; the view now runs with its owner's privileges)" if sev ==
                                                "warning" else ")"), before=clause))
                skip_until = end
                continue
        kept.append(t)
        kept.append(dt.Token(dt.WS, " ", 0, 0))
    target = "".join(t.text for t in kept).strip() + " " + dt.join(body).strip()
    return RewriteResult(target, changes)


def definer_end(head: list[dt.Token], sig_head: list[int], pos: int) -> int:
    """Index in `head` of the last token of `DEFINER = user@host` (or CURRENT_USER[()])."""
    j = pos + 1
    if j < len(sig_head) and head[sig_head[j]].text == "=":
        j += 1
    if j >= len(sig_head):
        return sig_head[-1]
    if head[sig_head[j]].upper == "CURRENT_USER":
        if j + 2 < len(sig_head) and head[sig_head[j + 1]].text == "(":
            return sig_head[j + 2]
        return sig_head[j]
    end = j
    if j + 2 < len(sig_head) and head[sig_head[j + 1]].text == "@":
        end = j + 2
    return sig_head[end]
