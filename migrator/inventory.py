"""Expand a fleet into source endpoints: URL flags, a file of URLs, or a YAML fleet config.

A fleet config (validated with pydantic; unknown keys are errors):

    version: 1
    target: oceanbase://root@10.0.0.9:2881
    sources:
      - mysql://migrator@db-[001-300].prod:3306     # host range: 300 sources
      - url: mysql://migrator@legacy.prod:3307
        name: legacy
        password_file: /etc/migrator/legacy.pw     # or defaults_file: /etc/migrator/legacy.cnf

Passwords: see migrator.endpoint (URL, password_file, defaults_file, MIGRATOR_PASSWORD_<NAME>,
MIGRATOR_SOURCE_PASSWORD).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from .endpoint import Endpoint, parse_url, redact_url, with_name_password
from .errors import ConfigError
from .yamlfile import read_yaml_mapping, validate_model

_RANGE = re.compile(r"\[(\d+)-(\d+)\]")
MAX_EXPANSION = 100_000


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    name: str | None = None
    password_file: str | None = None  # this entry's password (every host of a range)
    defaults_file: str | None = None  # a my.cnf-style [client] file with its password
    defaults_group: str | None = None

    def with_params(self, url: str) -> str:
        """The URL with this entry's password_file / defaults_file as URL parameters."""
        extra = [f"{k}={v}" for k, v in (("password_file", self.password_file), ("defaults_file", self.defaults_file),
                                          ("defaults_group", self.defaults_group)) if v]
        if not extra:
            return url
        return url + ("&" if "?" in url else "?") + "&".join(extra)


class FleetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    target: str | None = None
    sources: list[SourceEntry]

    @field_validator("sources", mode="before")
    @classmethod
    def _plain_urls(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"url": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"fleet config version {value} is not supported (this migrator reads version 1)")
        return value


def expand_ranges(text: str) -> list[str]:
    """`db-[001-003].prod` -> db-001.prod, db-002.prod, db-003.prod (zero padding kept)."""
    match = _RANGE.search(text)
    if not match:
        return [text]
    lo_s, hi_s = match.groups()
    lo, hi = int(lo_s), int(hi_s)
    if lo > hi:
        raise ConfigError(f"host range [{lo_s}-{hi_s}] in {redact_url(text)!r} runs backwards")
    if hi - lo + 1 > MAX_EXPANSION:
        raise ConfigError(f"host range [{lo_s}-{hi_s}] expands to more than {MAX_EXPANSION} hosts")
    width = len(lo_s) if lo_s.startswith("0") else 0
    out: list[str] = []
    for n in range(lo, hi + 1):
        head = text[: match.start()] + str(n).zfill(width)
        out.extend(head + rest for rest in expand_ranges(text[match.end():]))
    return out


def load_fleet_config(path: str | Path) -> FleetConfig:
    raw = read_yaml_mapping(path, "fleet config", "with a 'sources' list")
    return validate_model(FleetConfig, raw, path, "fleet config")


def read_sources_file(path: str | Path) -> list[str]:
    """One URL per line; blank lines and `#` comments ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"sources file {str(path)!r} cannot be read: {exc.strerror}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def resolve_sources(
    urls: list[str] | tuple[str, ...] = (),
    sources_file: str | Path | None = None,
    config: FleetConfig | None = None,
) -> list[Endpoint]:
    """All source endpoints, expanded and named, in the order given. Names must be unique."""
    entries: list[SourceEntry] = [SourceEntry(url=u) for u in urls]
    if sources_file:
        entries += [SourceEntry(url=u) for u in read_sources_file(sources_file)]
    if config:
        entries += config.sources
    if not entries:
        raise ConfigError("no source given: use --source URL, --sources-file FILE or --config FLEET.yaml")
    endpoints: list[Endpoint] = []
    for entry in entries:
        expanded = expand_ranges(entry.url)
        for i, url in enumerate(expanded):
            ep = parse_url(entry.with_params(url), "source")
            name = ep.name or entry.name or ep.label
            if entry.name and len(expanded) > 1:
                name = f"{entry.name}-{i + 1:0{len(str(len(expanded)))}d}"
            endpoints.append(with_name_password(ep.model_copy(update={"name": name})))
    seen: dict[str, Endpoint] = {}
    for ep in endpoints:
        if ep.name in seen:
            raise ConfigError(f"source {ep.name!r} is listed twice ({seen[ep.name].display()} and {ep.display()})")
        seen[ep.name] = ep
    return endpoints
