"""What each target accepts: charsets, collations, engines and feature flags.

Defaults come from /work/shared/ddl-compat.md (seekdb 1.4 observed; TiDB from its documentation;
MySQL 8.0). `probe_target_caps(conn, target)` replaces the charset/collation/engine lists with
what a live server reports (SHOW CHARACTER SET / SHOW COLLATION / SHOW ENGINES), keeping the
behaviour flags, which no SHOW statement reveals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..errors import ConfigError

TARGETS = ("oceanbase", "tidb", "mysql")


@dataclass(frozen=True)
class TargetCaps:
    name: str  # oceanbase | tidb | mysql
    charsets: dict[str, str]  # charset -> its default collation
    collations: frozenset[str]
    engines: frozenset[str]  # lower-case engine names the target accepts
    default_engine: str = "innodb"
    keep_engine_clause: bool = False  # emit ENGINE=... (only where the engine means something)
    fulltext: bool = True
    spatial: bool = True
    desc_index: bool = True  # DESC key parts honoured
    check_enforced: bool = True
    foreign_keys: bool = True
    subpartitions: bool = True
    linear_partitioning: bool = False
    json_type: bool = True
    invisible_columns: bool = True
    expression_defaults: bool = True  # DEFAULT (expr)
    routines: bool = True
    triggers: bool = True
    events: bool = False
    sequences: bool = False
    system_versioning: bool = False
    max_key_bytes: int = 3072
    auto_random: bool = False  # TiDB opt-in: BIGINT AUTO_INCREMENT PK -> AUTO_RANDOM
    probed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    def key(self) -> tuple:
        """Hashable identity of the profile (for caching rewrites of identical DDL across shards)."""
        return tuple((k, tuple(sorted(v.items())) if isinstance(v, dict) else v) for k, v in vars(self).items())

    def charset_of(self, collation: str) -> str:
        return collation.split("_", 1)[0]

    def has_collation(self, name: str) -> bool:
        return name.lower() in self.collations


_OB_COLLATIONS = frozenset({"utf8mb4_general_ci", "utf8mb4_bin", "binary"})
_TIDB_COLLATIONS = frozenset({
    "ascii_bin", "binary", "gbk_bin", "gbk_chinese_ci", "latin1_bin", "utf8_bin", "utf8_general_ci",
    "utf8_unicode_ci", "utf8mb4_0900_ai_ci", "utf8mb4_0900_bin", "utf8mb4_bin", "utf8mb4_general_ci",
    "utf8mb4_unicode_ci",
})
_MYSQL_CHARSETS = {
    "utf8mb4": "utf8mb4_0900_ai_ci", "utf8mb3": "utf8mb3_general_ci", "latin1": "latin1_swedish_ci",
    "ascii": "ascii_general_ci", "binary": "binary", "ucs2": "ucs2_general_ci", "utf16": "utf16_general_ci",
    "utf32": "utf32_general_ci", "cp1251": "cp1251_general_ci", "gbk": "gbk_chinese_ci", "big5": "big5_chinese_ci",
    "latin2": "latin2_general_ci", "sjis": "sjis_japanese_ci", "euckr": "euckr_korean_ci",
}
_MYSQL_COLLATIONS = frozenset(
    set(_MYSQL_CHARSETS.values())
    | {"utf8mb4_bin", "utf8mb4_general_ci", "utf8mb4_unicode_ci", "utf8mb4_unicode_520_ci", "utf8mb4_0900_as_cs",
       "utf8mb4_0900_as_ci", "utf8mb4_0900_bin", "utf8mb3_bin", "utf8mb3_unicode_ci", "latin1_bin",
       "latin1_general_ci", "latin1_general_cs", "ascii_bin", "utf16_bin", "ucs2_bin", "cp1251_bin"}
)


def default_caps(target: str) -> TargetCaps:
    """The built-in profile of a target (no server contacted)."""
    if target == "oceanbase":
        return TargetCaps(
            name="oceanbase",
            charsets={"utf8mb4": "utf8mb4_general_ci", "binary": "binary"},
            collations=_OB_COLLATIONS,
            engines=frozenset({"innodb"}),  # MyISAM is accepted but silently becomes the OB engine
            desc_index=False,  # DESC key parts are accepted and silently dropped
            max_key_bytes=16384,
        )
    if target == "tidb":
        return TargetCaps(
            name="tidb",
            charsets={"utf8mb4": "utf8mb4_bin", "utf8": "utf8_bin", "latin1": "latin1_bin", "ascii": "ascii_bin",
                      "binary": "binary", "gbk": "gbk_chinese_ci"},
            collations=_TIDB_COLLATIONS,
            engines=frozenset({"innodb"}),
            fulltext=False, spatial=False, desc_index=False, invisible_columns=False, check_enforced=False, subpartitions=False,
            routines=False, triggers=False, events=False, sequences=True, max_key_bytes=3072,
        )
    if target == "mysql":
        return TargetCaps(
            name="mysql",
            charsets=dict(_MYSQL_CHARSETS),
            collations=_MYSQL_COLLATIONS,
            engines=frozenset({"innodb", "myisam", "memory", "csv", "archive", "blackhole", "merge"}),
            keep_engine_clause=True, linear_partitioning=True, events=True,
        )
    raise ConfigError(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")


def resolve_caps(target: str, caps: TargetCaps | None) -> TargetCaps:
    if caps is not None:
        return caps
    return default_caps(target)


def probe_target_caps(conn, target: str) -> TargetCaps:
    """Default profile of `target` with charsets, collations and engines read from the server."""
    base = default_caps(target)
    with conn.cursor() as cur:
        cur.execute("SHOW CHARACTER SET")
        charsets = {str(r[0]).lower(): str(r[2]).lower() for r in cur.fetchall()}
        cur.execute("SHOW COLLATION")
        collations = frozenset(str(r[0]).lower() for r in cur.fetchall())
        cur.execute("SHOW ENGINES")
        engines = frozenset(str(r[0]).lower() for r in cur.fetchall() if str(r[1]).upper() in ("YES", "DEFAULT"))
    if target == "oceanbase":
        # seekdb lists InnoDB/MyISAM names but stores everything in its own engine
        engines = frozenset({"innodb"})
    return replace(base, charsets=charsets, collations=collations, engines=engines or base.engines, probed=True)
