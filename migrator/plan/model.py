"""The plan file: what a DBA reviews and commits, and what every later stage reads.

YAML on disk (plus, from format 3, a catalog file of derived data beside it: see save_plan),
validated by these pydantic models, versioned (`format_version`). It never holds
a secret: endpoints are stored as `Endpoint.safe_url()` (password from env or password_file).

Key values (chunk boundaries) are stored as migrator.keys encodes them (KeyValue).
"""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ..endpoint import Endpoint, parse_url
from ..errors import ConfigError
from ..keys import KeyValue
from ..schema.model import Change, Column
from ..state import atomic_write_bytes, atomic_write_text
from ..yamlfile import SafeDumper, parse_yaml_mapping, validate_model

PLAN_FORMAT_VERSION = 3
# Formats this migrator still reads: 1 lacks the foreign-key graph (Plan.foreign_keys is None);
# 1 and 2 are one YAML file, 3 keeps derived data in a catalog file beside the plan (save_plan).
READABLE_FORMAT_VERSIONS = (1, 2, 3)

FindingSeverity = Literal["info", "warning", "blocking"]
TableMode = Literal["copy+sync", "copy-only", "skip"]
M = TypeVar("M", bound=BaseModel)
FkAction = Literal["CASCADE", "SET NULL", "RESTRICT", "NO ACTION", "SET DEFAULT"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(Model):
    """A preflight result: what is wrong, where, and what to do."""

    check: str  # e.g. "binlog.format", "table.no-key", "object.trigger"
    severity: FindingSeverity
    message: str
    instance: str | None = None
    database: str | None = None
    table: str | None = None
    fix: str | None = None


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

    def endpoints(self) -> list[Endpoint]:
        """Every server the plan connects to, passwords resolved (from files or the environment)."""
        return [s.endpoint() for s in self.sources] + [self.target.endpoint()]

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
        exclude = {"created_at", "migrator_version", "findings"}
        if self.format_version >= 3:  # pydantic's own JSON, fields in declaration order: 5x faster
            return hashlib.sha256(self.model_dump_json(exclude=exclude).encode()).hexdigest()[:16]
        body = self.model_dump(mode="json", exclude=exclude)  # formats 1-2: the hash their runs recorded
        if self.foreign_keys is None:  # a format-1 plan keeps the fingerprint its runs recorded
            body.pop("foreign_keys")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- files
#
# Format 3 writes two files. PLAN.yaml is what a DBA reviews: sources, target, routes, tables (mode,
# key, target names, rewritten DDL and its changes), findings, the FK graph. PLAN.catalog.jsonl,
# beside it, holds what the tools derive from the sources: column catalogs, chunk boundaries,
# source DDL, shape fingerprints and row estimates. It is two JSON lines: (1) the catalog, whose
# SHA-256 the plan records (`catalog:`), so a stale or foreign catalog is refused; (2) the plan's
# own content as JSON with the SHA-256 of the YAML bytes it was written with: while the YAML is
# untouched, loading reads that line instead of parsing YAML (json is ~100x faster); a hand-edited
# plan is parsed from its YAML. Formats 1 and 2 are single YAML files holding everything inline.

CATALOG_SUFFIX = ".catalog.jsonl"


def catalog_path(plan_path: str | Path) -> Path:
    """Where save_plan writes the catalog of `plan_path`: plans/x.yaml -> plans/x.catalog.jsonl."""
    p = Path(plan_path)
    stem = p.stem if p.suffix in (".yaml", ".yml") else p.name
    return p.with_name(stem + CATALOG_SUFFIX)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_line(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def load_plan(path: str | Path) -> Plan:
    with _gc_paused():
        return _load_plan(Path(path))


def _load_plan(path: Path) -> Plan:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"plan file {str(path)!r} cannot be read: {exc.strerror}") from None
    companion = _read_companion(catalog_path(path))
    cache = companion[1] if companion else {}
    cached = cache.get("plan_sha256") == _sha256(data) and cache.get("models") == _models_hash()
    if cached:
        raw = cache["plan"]  # the YAML is byte for byte the one written with this catalog
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"plan file {str(path)!r} is not UTF-8 text: {exc}") from None
        raw = parse_yaml_mapping(text, path, "plan file", "a plan written by `migrator plan`")
    if raw.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise ConfigError(
            f"plan file {str(path)!r} has format_version {raw.get('format_version')!r}; "
            f"this migrator reads {', '.join(map(str, READABLE_FORMAT_VERSIONS))}: re-run `migrator plan`"
        )
    if raw.get("catalog") is None:  # formats 1 and 2, or dump_plan's single document: all inline
        return validate_model(Plan, raw, path, "plan file")
    catalog = _Catalog.read(raw.pop("catalog"), path, companion)
    if not cached:  # parsed from YAML, maybe edited by hand: validate everything
        for t in raw.get("tables") or []:
            if isinstance(t, dict):  # anything else: validation names it
                t.update(catalog.derived(t))
        return validate_model(Plan, raw, path, "plan file")
    # Written by save_plan from validated models with these very model definitions (`models`):
    # the tables are constructed without validating them again (30,000 tables: seconds saved).
    tables = raw.pop("tables")
    plan = validate_model(Plan, raw, path, "plan file")
    ddl, change_lists = cache["ddl"], [_construct_all(Change, c) for c in cache["changes"]]
    for t in tables:
        t["target_ddl"] = ddl[t["target_ddl"]]
        if "changes" in t:
            t["changes"] = list(change_lists[t["changes"]])  # Change objects shared by tables of one DDL
    plan.tables = [_construct(TablePlan, catalog.merged(t)) for t in tables]
    return plan


def _construct(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of `cls` from trusted field values (defaults filled in), as
    BaseModel.model_construct builds it, without its per-field bookkeeping (5x faster: a plan
    of 30,000 tables builds 180,000 of these). Only for models without private attributes or
    extras, from data save_plan wrote from validated models (see load_plan)."""
    fields = {}
    for name, default in _fields(cls):  # in declaration order, as validation leaves them
        fields[name] = values[name] if name in values else default()
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


def _construct_all(cls: type[M], rows: Iterable[dict[str, Any]]) -> list[M]:
    """_construct for many rows that already hold every field in declaration order (Chunk
    mappings built so; Change mappings as model_dump wrote them), in one tight loop."""
    new, setattr_, out = cls.__new__, object.__setattr__, []
    for values in rows:
        obj = new(cls)
        setattr_(obj, "__dict__", values)
        setattr_(obj, "__pydantic_fields_set__", set(values))
        setattr_(obj, "__pydantic_extra__", None)
        setattr_(obj, "__pydantic_private__", None)
        out.append(obj)
    return out


_FIELDS: dict[type, list[tuple[str, Any]]] = {}


def _fields(cls: type[BaseModel]) -> list[tuple[str, Any]]:
    """(field, callable returning its default) for each field of `cls`; a required field's
    callable raises KeyError."""
    if cls not in _FIELDS:
        out = []
        for name, field in cls.model_fields.items():
            if field.default_factory is not None:
                out.append((name, field.default_factory))
            elif not field.is_required():
                out.append((name, lambda v=field.default: v))
            else:
                out.append((name, lambda n=name: _missing(cls, n)))
        _FIELDS[cls] = out
    return _FIELDS[cls]


def _missing(cls: type, name: str) -> Any:
    raise KeyError(f"{cls.__name__}.{name}")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a plan is built or written: the hundreds of thousands of
    objects of a large plan would trigger a full collection over and over (3x the load time);
    nothing here makes reference cycles, and collection resumes at the end."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_MODELS_HASH: list[str] = []


def _models_hash() -> str:
    """Hash of the plan models' schema: a parse cache written by other model definitions is not used."""
    if not _MODELS_HASH:
        _MODELS_HASH.append(_sha256(json.dumps(Plan.model_json_schema(), sort_keys=True).encode())[:16])
    return _MODELS_HASH[0]


def _read_companion(path: Path) -> tuple[bytes, dict[str, Any]] | None:
    """(catalog line, parse-cache record) of a catalog file; None when absent or unreadable
    (the plan's `catalog:` reference then decides whether that is an error)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    first, _, second = data.partition(b"\n")
    try:
        cache = json.loads(second) if second.strip() else {}
    except ValueError:
        cache = {}
    return first, cache if isinstance(cache, dict) else {}


class _Catalog:
    """The derived data of a format-3 plan, read from the catalog file the plan records."""

    def __init__(self, data: dict[str, Any], path: Path):
        self.path = path
        self.column_sets = [validate_model(_ColumnList, {"columns": cols}, path, "catalog").columns
                            for cols in data["columns"]]  # Column objects shared by the tables of one shape
        self.ddl = data["ddl"]
        self.by_id = {t["id"]: t for t in data["tables"]}

    @classmethod
    def read(cls, ref: Any, plan_path: Path, companion: tuple[bytes, dict[str, Any]] | None) -> _Catalog:
        """Refuses a missing, stale or foreign catalog."""
        if not isinstance(ref, dict) or not isinstance(ref.get("file"), str) or not isinstance(ref.get("sha256"), str):
            raise ConfigError(f"plan file {str(plan_path)!r}: field 'catalog' must be {{file: NAME, sha256: HEX}}: "
                              "re-run `migrator plan`")
        cpath = plan_path.parent / ref["file"]
        redo = f"re-run `migrator plan … --out {plan_path}` to write both files again"
        if companion is None or cpath != catalog_path(plan_path):
            companion = _read_companion(cpath)
        if companion is None:
            raise ConfigError(f"plan file {str(plan_path)!r} needs its catalog {str(cpath)!r} (column catalogs and "
                              f"chunk boundaries, written beside the plan by `migrator plan`), which cannot be read: "
                              f"copy it next to the plan, or {redo}")
        line = companion[0]
        if _sha256(line) != ref["sha256"]:
            raise ConfigError(f"catalog {str(cpath)!r} does not belong to plan file {str(plan_path)!r}: its SHA-256 is "
                              f"{_sha256(line)[:16]}…, the plan records {ref['sha256'][:16]}… (stale, or from another "
                              f"`migrator plan` run): restore the catalog written with this plan, or {redo}")
        try:
            return cls(json.loads(line), cpath)
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"catalog {str(cpath)!r} cannot be read ({exc}): {redo}") from None

    def derived(self, t: dict[str, Any]) -> dict[str, Any]:
        """The derived fields of reviewed table entry `t`, as mappings to validate."""
        entry = self._entry(t)
        return {"columns": list(self.column_sets[entry["columns"]]),  # Column objects shared by tables of one shape
                "chunks": [{"id": c[0], "lower": c[1], "upper": c[2], "estimated_rows": c[3]} for c in entry["chunks"]],
                "source_ddl": self.ddl[entry["source_ddl"]], "shape_fingerprint": entry["shape"],
                "estimated_rows": entry["rows"], "estimated_bytes": entry["bytes"]}

    def merged(self, t: dict[str, Any]) -> dict[str, Any]:
        """All field values of trusted table entry `t`, its chunks as objects."""
        entry = self._entry(t)
        t["columns"] = list(self.column_sets[entry["columns"]])
        t["chunks"] = _construct_all(Chunk, ({"id": c[0], "lower": c[1], "upper": c[2], "estimated_rows": c[3]}
                                             for c in entry["chunks"]))
        t["source_ddl"] = self.ddl[entry["source_ddl"]]
        t["shape_fingerprint"] = entry["shape"]
        t["estimated_rows"] = entry["rows"]
        t["estimated_bytes"] = entry["bytes"]
        return t

    def _entry(self, t: dict[str, Any]) -> dict[str, Any]:
        tid = f"{t.get('source')}/{t.get('database')}.{t.get('table')}"
        entry = self.by_id.get(tid)
        if entry is None:
            raise ConfigError(f"table {tid} is in the plan but not in its catalog {str(self.path)!r} (added by hand?): "
                              "re-run `migrator plan`")
        return entry


class _ColumnList(Model):
    columns: list[Column]


class _Dumper(SafeDumper):  # libyaml's emitter when available
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


def _yaml(body: dict[str, Any]) -> str:
    return yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)


def _plan_body(plan: Plan) -> dict[str, Any]:
    body = plan.model_dump(mode="json")
    for table, raw in zip(plan.tables, body["tables"]):  # columns: only what differs from defaults
        raw["columns"] = [c.model_dump(mode="json", exclude_defaults=True) for c in table.columns]
    return body


def dump_plan(plan: Plan) -> str:
    """The whole plan as one self-contained YAML document (derived data inline, as in formats 1
    and 2); load_plan reads it back without a catalog file. save_plan writes the reviewed form."""
    return _yaml(_plan_body(plan))


def save_plan(plan: Plan, path: str | Path) -> None:
    """Write the plan. Format 3: the reviewed YAML at `path` and its catalog beside it
    (catalog_path), the catalog first, each atomically; older formats: one YAML file."""
    with _gc_paused():
        _save_plan(plan, Path(path))


def _cache_body(reviewed: dict[str, Any]) -> dict[str, Any]:
    """The reviewed plan for the catalog's parse cache: each distinct target DDL and list of
    changes once (`ddl`, `changes`), the tables naming them by index (read back in _load_plan)."""
    ddl: dict[str, int] = {}
    changes: dict[str, int] = {}
    change_lists: list[Any] = []
    tables = []
    for t in reviewed["tables"]:
        t = dict(t, target_ddl=ddl.setdefault(t["target_ddl"], len(ddl)))
        if "changes" in t:
            key = json.dumps(t["changes"])
            if key not in changes:
                changes[key] = len(change_lists)
                change_lists.append(t["changes"])
            t["changes"] = changes[key]
        tables.append(t)
    return {"ddl": list(ddl), "changes": change_lists, "plan": {**reviewed, "tables": tables}}


def _save_plan(plan: Plan, path: Path) -> None:
    if plan.format_version < 3:
        atomic_write_text(path, dump_plan(plan))
        return
    cpath = catalog_path(path)
    body = _plan_body(plan)
    column_index: dict[str, int] = {}
    column_sets: list[Any] = []
    ddl_index: dict[str, int] = {}
    tables = []
    for table, raw in zip(plan.tables, body["tables"]):
        cols = raw.pop("columns")
        key = json.dumps(cols, sort_keys=True)
        if key not in column_index:
            column_index[key] = len(column_sets)
            column_sets.append(cols)
        source_ddl = raw.pop("source_ddl")
        tables.append({"id": table.id, "columns": column_index[key],
                       "chunks": [[c["id"], c["lower"], c["upper"], c["estimated_rows"]] for c in raw.pop("chunks")],
                       "source_ddl": ddl_index.setdefault(source_ddl, len(ddl_index)),
                       "shape": raw.pop("shape_fingerprint"), "rows": raw.pop("estimated_rows"),
                       "bytes": raw.pop("estimated_bytes")})
        for optional in ("source_column", "changes"):  # keep the reviewed entry short
            if not raw[optional]:
                del raw[optional]
    catalog = _json_line({"catalog_format": 3, "plan": path.name, "columns": column_sets, "ddl": list(ddl_index),
                          "tables": tables})
    reviewed: dict[str, Any] = {}
    for k, v in body.items():
        reviewed[k] = v
        if k == "migrator_version":  # the catalog reference near the top, where a reviewer sees it
            reviewed["catalog"] = {"file": cpath.name, "sha256": _sha256(catalog)}
    text = _yaml(reviewed).encode("utf-8")
    cache = _json_line({"plan_sha256": _sha256(text), "models": _models_hash(), **_cache_body(reviewed)})
    atomic_write_bytes(cpath, catalog + b"\n" + cache + b"\n")
    atomic_write_bytes(path, text)

