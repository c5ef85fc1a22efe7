"""A task file: everything `migrator plan` takes as flags, in one reviewed YAML file.

    version: 1
    name: ewallet
    out: plans/ewallet.yaml
    target: oceanbase://root@ob.prod:2881
    sources:                                   # as in a fleet config
      - mysql://migrator@db-[001-300].prod:3306
      - url: mysql://migrator@legacy.prod:3307
        name: legacy
        password_file: /etc/migrator/legacy.pw
    include: [wallet_*.*]
    exclude: [wallet_*.tmp_*]
    copy_only: [wallet_*.audit_log]
    skip: []
    routes: ["wallet_*.ledger=wallet.ledger"]
    source_column: shard
    key_collation: rewrite
    chunk_rows: 100000
    parallel: 8

`migrator plan --task FILE` plans from it; `migrator check FILE` lists every problem at once
(schema errors, URLs, host ranges, duplicate names, routes) without touching a database;
`migrator check --schema` prints its JSON schema for editors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .endpoint import parse_url
from .errors import ConfigError
from .inventory import SourceEntry, expand_ranges, read_sources_file
from .plan.build import DEFAULT_PARALLEL
from .plan.chunking import DEFAULT_CHUNK_ROWS
from .yamlfile import parse_yaml_mapping



class TaskFile(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"title": "migrator task file"})
    version: Literal[1] = 1
    name: str | None = Field(None, description="Plan name (default: the output file's stem)")
    out: str | None = Field(None, description="Plan file to write (YAML); --out overrides")
    target: str = Field(description="Target URL: oceanbase://, tidb:// or mysql://")
    sources: list[SourceEntry] = Field(default_factory=list, description="Source URLs or {url, name, password_file, "
                                                                         "defaults_file, defaults_group}")
    sources_file: str | None = Field(None, description="A file with one source URL per line")
    include: list[str] = Field(default_factory=list, description="Shell patterns DB.TABLE to plan")
    exclude: list[str] = Field(default_factory=list, description="Shell patterns DB.TABLE to leave out")
    copy_only: list[str] = Field(default_factory=list, description="Tables to copy but not sync")
    skip: list[str] = Field(default_factory=list, description="Tables listed in the plan but not migrated")
    routes: list[str] = Field(default_factory=list, description="'SRC_DB.SRC_TABLE=DST_DB.DST_TABLE' merges/renames")
    source_column: str | None = Field(None, description="Shard merges: column NAME added to the target's keys")
    key_collation: Literal["rewrite", "bin"] = "rewrite"
    chunk_rows: int = Field(DEFAULT_CHUNK_ROWS, ge=1, description="Rows per chunk")
    parallel: int = Field(DEFAULT_PARALLEL, ge=1, le=256, description="Source instances read at once")

    @field_validator("sources", mode="before")
    @classmethod
    def _plain_urls(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"url": v} if isinstance(v, str) else v for v in value]
        return value


def check_task(path: str | Path) -> tuple[TaskFile | None, list[str]]:
    """The task file and every problem found in it (empty when it can be planned)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"cannot be read: {exc.strerror}"]
    try:
        raw = parse_yaml_mapping(text, path, "task file", "plan settings: target, sources, include, ...")
    except ConfigError as exc:
        return None, [str(exc)]
    errors: list[str] = []
    task: TaskFile | None = None
    try:
        task = TaskFile.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top)"
            errors.append(f"{where}: {err['msg']}")
    errors += _check_values(raw, path.parent)
    return (task if not errors else None), errors


def _check_values(raw: dict[str, Any], base: Path) -> list[str]:
    """What pydantic cannot see: URLs, host ranges, duplicate names, routes."""
    from .plan.routes import parse_route

    errors: list[str] = []
    if isinstance(raw.get("target"), str):
        try:
            parse_url(raw["target"], "target")
        except ConfigError as exc:
            errors.append(f"target: {exc}")
    entries = raw.get("sources") if isinstance(raw.get("sources"), list) else []
    urls: list[tuple[str, str, str | None]] = []  # (where, url, name)
    for i, entry in enumerate(entries):
        url = entry if isinstance(entry, str) else entry.get("url") if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(url, str) and isinstance(entry, dict):  # its password_file / defaults_file are read too
            extra = [f"{k}={entry[k]}" for k in ("password_file", "defaults_file", "defaults_group")
                     if isinstance(entry.get(k), str)]
            url = url + (("&" if "?" in url else "?") + "&".join(extra) if extra else "")
        if isinstance(url, str):
            urls.append((f"sources.{i}", url, name if isinstance(name, str) else None))
    if isinstance(raw.get("sources_file"), str):
        try:
            for j, url in enumerate(read_sources_file(base / raw["sources_file"])):
                urls.append((f"sources_file line {j + 1}", url, None))
        except ConfigError as exc:
            errors.append(f"sources_file: {exc}")
    if not urls and not errors and "sources" not in raw and "sources_file" not in raw:
        errors.append("sources: no source given (a list of URLs, or sources_file)")
    names: dict[str, str] = {}
    for where, url, name in urls:
        try:
            expanded = expand_ranges(url)
        except ConfigError as exc:
            errors.append(f"{where}: {exc}")
            continue
        bad: list[str] = []
        for k, one in enumerate(expanded):
            try:
                ep = parse_url(one, "source")
            except ConfigError as exc:
                bad.append(str(exc))
                continue
            label = ep.name or (f"{name}-{k + 1:0{len(str(len(expanded)))}d}" if name and len(expanded) > 1
                                else name) or ep.label
            if label in names:
                errors.append(f"{where}: source {label!r} is listed twice (also {names[label]})")
            names.setdefault(label, where)
        if bad:  # a bad URL in a 300-host range is said once
            errors.append(f"{where}: {bad[0]}" + (f" (and {len(bad) - 1} more host(s) of the range)"
                                                  if len(bad) > 1 else ""))
    routes = raw.get("routes") if isinstance(raw.get("routes"), list) else []
    for i, route in enumerate(routes):
        if isinstance(route, str):
            try:
                parse_route(route)
            except ConfigError as exc:
                errors.append(f"routes.{i}: {exc}")
    return errors


def load_task(path: str | Path) -> TaskFile:
    """The task file, or a ConfigError listing every problem."""
    task, errors = check_task(path)
    if errors or task is None:
        raise ConfigError(f"task file {str(path)!r}: {len(errors)} problem(s):\n  " + "\n  ".join(errors))
    return task
