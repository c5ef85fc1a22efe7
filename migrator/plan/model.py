"""The plan file: what a DBA reviews and commits, and what every later stage reads.

YAML on disk, validated by these pydantic models, versioned (`format_version`). It never holds
a secret: endpoints are stored as `Endpoint.safe_url()` (password from env or password_file).

Key values (chunk boundaries) are stored as JSON scalars: integers as ints, everything else as
text in the form MySQL accepts in a comparison with that column (DECIMAL/DATETIME/strings as
text); binary key values as {"hex": "..."}. `encode_key_value` / `decode_key_value` convert.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..endpoint import Endpoint, parse_url
from ..errors import ConfigError
from ..state import atomic_write_text
from ..yamlfile import read_yaml_mapping, validate_model

PLAN_FORMAT_VERSION = 2
# Formats this migrator still reads: 1 lacks the foreign-key graph (Plan.foreign_keys is None).
READABLE_FORMAT_VERSIONS = (1, 2)

Severity = Literal["rewrite", "warning", "blocking"]
FindingSeverity = Literal["info", "warning", "blocking"]
TableMode = Literal["copy+sync", "copy-only", "skip"]
KeyValue = Any  # int | str | {"hex": str} | None
FkAction = Literal["CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Change(Model):
    """One thing the DDL rewrite did (or refused to do), and why."""

    rule: str  # stable rule id, e.g. "charset.latin1-to-utf8mb4"
    severity: Severity
    reason: str  # one line a DBA understands
    before: str | None = None
    after: str | None = None


class Finding(Model):
    """A preflight result: what is wrong, where, and what to do."""

    check: str  # e.g. "binlog.format", "table.no-key", "object.trigger"
    severity: FindingSeverity
    message: str
    instance: str | None = None
    database: str | None = None
    table: str | None = None
    fix: str | None = None


class Column(Model):
    name: str
    data_type: str  # information_schema DATA_TYPE, e.g. "bigint", "varchar"
    column_type: str  # full COLUMN_TYPE, e.g. "bigint(20) unsigned"
    nullable: bool
    charset: str | None = None
    collation: str | None = None
    default: str | None = None
    extra: str = ""
    generated: bool = False  # virtual/stored generated: never written, never compared as data


class Chunk(Model):
    """A half-open key range: lower < key <= upper on the chunk key, None = unbounded."""

    id: int
    lower: list[KeyValue] | None = None
    upper: list[KeyValue] | None = None
    estimated_rows: int = 0


class TablePlan(Model):
    source: str  # SourcePlan.name
    database: str
    table: str
    target_database: str
    target_table: str
    columns: list[Column]
    key: list[str] = Field(default_factory=list)  # chunk/sync key; empty = no usable key
    key_kind: Literal["primary", "unique", "none"] = "none"
    mode: TableMode = "copy+sync"
    estimated_rows: int = 0
    estimated_bytes: int = 0
    chunks: list[Chunk] = Field(default_factory=list)
    source_ddl: str = ""
    target_ddl: str = ""
    changes: list[Change] = Field(default_factory=list)
    source_column: str | None = None  # shard merge: column holding the source identity
    shape_fingerprint: str = ""

    @property
    def source_name(self) -> str:
        return f"{self.database}.{self.table}"

    @property
    def target_name(self) -> str:
        return f"{self.target_database}.{self.target_table}"

    @property
    def id(self) -> str:
        """Stable id across the fleet: instance/db.table."""
        return f"{self.source}/{self.database}.{self.table}"

    def data_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.generated]


class ForeignKey(Model):
    """One FOREIGN KEY of a source table, read from information_schema (REFERENTIAL_CONSTRAINTS +
    KEY_COLUMN_USAGE). Tables are named by TablePlan.id (instance/db.table); a foreign key never
    crosses instances. `parent_in_plan` is False when the parent is filtered out or skipped."""

    name: str
    table: str  # child TablePlan.id
    columns: list[str]
    parent: str  # parent TablePlan.id (same instance)
    parent_columns: list[str]
    on_delete: FkAction = "RESTRICT"
    on_update: FkAction = "RESTRICT"
    parent_in_plan: bool = True

    @property
    def cascades(self) -> bool:
        """Deleting or re-keying a parent row changes child rows (CASCADE / SET NULL / SET DEFAULT)."""
        return any(a in ("CASCADE", "SET NULL", "SET DEFAULT") for a in (self.on_delete, self.on_update))

    def describe(self) -> str:
        acts = [f"ON {w} {a}" for w, a in (("DELETE", self.on_delete), ("UPDATE", self.on_update))
                if a not in ("RESTRICT", "NO ACTION")]
        return (f"{self.table.split('/', 1)[-1]}({', '.join(self.columns)}) -> "
                f"{self.parent.split('/', 1)[-1]}({', '.join(self.parent_columns)})" + (" " + " ".join(acts) if acts else ""))


class SourcePlan(Model):
    name: str
    url: str  # Endpoint.safe_url(): no password
    host: str
    port: int
    version: str = ""
    flavor: Literal["mysql", "mariadb"] = "mariadb"
    server_id: int | None = None
    gtid_mode: bool = False

    def endpoint(self) -> Endpoint:
        return parse_url(self.url, "source")


class TargetPlan(Model):
    url: str  # Endpoint.safe_url()
    engine: Literal["oceanbase", "tidb", "mysql"]
    version: str = ""

    def endpoint(self) -> Endpoint:
        return parse_url(self.url, "target")


class Route(Model):
    """Many source tables (shell patterns over db.table) into one target table."""

    source_pattern: str
    target_database: str
    target_table: str
    source_column: str | None = None


class Plan(Model):
    format_version: int = PLAN_FORMAT_VERSION
    name: str = ""
    created_at: str = ""
    migrator_version: str = ""
    target: TargetPlan
    sources: list[SourcePlan]
    includes: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    tables: list[TablePlan] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    # None: a format-1 plan, written before plan read foreign keys (re-run `migrator plan`).
    foreign_keys: list[ForeignKey] | None = None

    def foreign_keys_of(self, table_id: str) -> list[ForeignKey]:
        """The foreign keys of a child table."""
        return [fk for fk in self.foreign_keys or [] if fk.table == table_id]

    def children_of(self, table_id: str) -> list[ForeignKey]:
        """The foreign keys that reference a parent table (what a delete/update of it may cascade to)."""
        return [fk for fk in self.foreign_keys or [] if fk.parent == table_id]

    def source(self, name: str) -> SourcePlan:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"plan has no source named {name!r}")

    def blocking(self) -> list[Finding | Change]:
        out: list[Finding | Change] = [f for f in self.findings if f.severity == "blocking"]
        for t in self.tables:
            if t.mode != "skip":
                out += [c for c in t.changes if c.severity == "blocking"]
        return out

    def active_tables(self) -> list[TablePlan]:
        return [t for t in self.tables if t.mode != "skip"]

    def fingerprint(self) -> str:
        """Hash of everything that decides what copy/sync/verify do (not of timestamps)."""
        body = self.model_dump(mode="json", exclude={"created_at", "migrator_version", "findings"})
        if self.foreign_keys is None:  # a format-1 plan keeps the fingerprint its runs recorded
            body.pop("foreign_keys")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def load_plan(path: str | Path) -> Plan:
    raw = read_yaml_mapping(path, "plan file", "a plan written by `migrator plan`")
    if raw.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise ConfigError(
            f"plan file {str(path)!r} has format_version {raw.get('format_version')!r}; "
            f"this migrator reads {', '.join(map(str, READABLE_FORMAT_VERSIONS))}: re-run `migrator plan`"
        )
    return validate_model(Plan, raw, path, "plan file")


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    if "\n" in data:  # DDL reads as a block
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


def _list_presenter(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    # Key bounds ([1, "a"]) read best on one line; lists of mappings stay in block style.
    flow = all(not isinstance(v, (dict, list)) for v in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(list, _list_presenter)


def dump_plan(plan: Plan) -> str:
    body = plan.model_dump(mode="json")
    for table, raw in zip(plan.tables, body["tables"]):  # columns: only what differs from defaults
        raw["columns"] = [c.model_dump(mode="json", exclude_defaults=True) for c in table.columns]
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def save_plan(plan: Plan, path: str | Path) -> None:
    atomic_write_text(path, dump_plan(plan))


def encode_key_value(value: Any) -> KeyValue:
    """A key value read from the source -> a JSON/YAML scalar for the plan file."""
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"hex": bytes(value).hex()}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_timedelta(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def decode_key_value(value: KeyValue) -> Any:
    """A plan-file key value -> a query parameter for pymysql."""
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    return value


def format_timedelta(td: timedelta) -> str:
    """A TIME value as MySQL text, the sign on the whole value ('-00:00:01.000001')."""
    total_us = td.days * 86_400_000_000 + td.seconds * 1_000_000 + td.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    secs, us = divmod(total_us, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{h:02d}:{m:02d}:{s:02d}" + (f".{us:06d}" if us else "")
