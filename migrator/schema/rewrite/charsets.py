"""Charsets and collations: the source's -> what the target has (closest collation when absent)."""

from __future__ import annotations

from dataclasses import dataclass

from ..targets import TargetCaps

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
