"""Connection URLs for sources and targets.

`mysql://user:pass@host:port` (sources; `mariadb://` too) and `oceanbase://`, `tidb://`,
`mysql://` for the target. The password may instead come from `?password_file=PATH` or from
MIGRATOR_SOURCE_PASSWORD / MIGRATOR_TARGET_PASSWORD. TLS through `ssl-ca`, `ssl-cert`,
`ssl-key`, `ssl-mode`. The password is a SecretStr: it never prints, and `display` omits it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .errors import ConfigError

Engine = Literal["mysql", "mariadb", "oceanbase", "tidb"]
Role = Literal["source", "target"]
SslMode = Literal["disabled", "preferred", "required", "verify-ca", "verify-identity"]

DEFAULT_PORTS: dict[str, int] = {"mysql": 3306, "mariadb": 3306, "oceanbase": 2881, "tidb": 4000}
SOURCE_SCHEMES = ("mysql", "mariadb")
TARGET_SCHEMES = ("oceanbase", "tidb", "mysql")
PASSWORD_ENV = {"source": "MIGRATOR_SOURCE_PASSWORD", "target": "MIGRATOR_TARGET_PASSWORD"}
KNOWN_PARAMS = {"password_file", "ssl-ca", "ssl-cert", "ssl-key", "ssl-mode", "name", "connect_timeout"}


class Tls(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: SslMode = "preferred"
    ca: str | None = None
    cert: str | None = None
    key: str | None = None


class Endpoint(BaseModel):
    """One database server. `name` labels it in plans, checkpoints and messages."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    engine: Engine
    host: str
    port: int = Field(ge=1, le=65535)
    user: str = "root"
    password: SecretStr | None = None
    database: str | None = None
    tls: Tls = Tls()
    name: str = ""
    connect_timeout: float = 10.0
    password_file: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.host}:{self.port}"

    def display(self) -> str:
        """The URL without any secret: safe for logs, plan files and reports."""
        db = f"/{self.database}" if self.database else ""
        return f"{self.engine}://{self.user}@{self.host}:{self.port}{db}"

    def safe_url(self) -> str:
        """A URL that reconnects without the password (which comes from env or password_file):
        what plan files and checkpoints store."""
        params = []
        if self.name:
            params.append(f"name={self.name}")
        if self.password_file:
            params.append(f"password_file={self.password_file}")
        if self.tls.mode != "preferred" or self.tls.ca:
            params.append(f"ssl-mode={self.tls.mode}")
        for key, value in (("ssl-ca", self.tls.ca), ("ssl-cert", self.tls.cert), ("ssl-key", self.tls.key)):
            if value:
                params.append(f"{key}={value}")
        return self.display() + ("?" + "&".join(params) if params else "")

    def __str__(self) -> str:  # never the password
        return self.display()


def parse_url(url: str, role: Role, *, env: dict[str, str] | None = None) -> Endpoint:
    """Parse a connection URL; errors name the bad field and never echo the password."""
    env = os.environ if env is None else env
    shown = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad {role} URL {shown!r}: {exc}") from None
    allowed = SOURCE_SCHEMES if role == "source" else TARGET_SCHEMES
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        raise ConfigError(
            f"bad {role} URL {shown!r}: scheme {scheme or '(none)'!r} is not one of "
            f"{', '.join(s + '://' for s in allowed)}"
        )
    if not parts.hostname:
        raise ConfigError(f"bad {role} URL {shown!r}: no host; write {scheme}://user@host:port")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in KNOWN_PARAMS:
            raise ConfigError(
                f"bad {role} URL {shown!r}: unknown parameter {key!r} "
                f"(known: {', '.join(sorted(KNOWN_PARAMS))})"
            )
        params[key] = value
    password = unquote(parts.password) if parts.password is not None else None
    if password is None and "password_file" in params:
        password = _read_password_file(params["password_file"], role)
    if password is None and env.get(PASSWORD_ENV[role]):
        password = env[PASSWORD_ENV[role]]
    mode = params.get("ssl-mode", "required" if "ssl-ca" in params else "preferred")
    if mode not in SslMode.__args__:  # type: ignore[attr-defined]
        raise ConfigError(
            f"bad {role} URL {shown!r}: ssl-mode {mode!r} is not one of {', '.join(SslMode.__args__)}"  # type: ignore[attr-defined]
        )
    if mode in ("verify-ca", "verify-identity") and "ssl-ca" not in params:
        raise ConfigError(f"bad {role} URL {shown!r}: ssl-mode={mode} needs ssl-ca=PATH")
    for key in ("ssl-ca", "ssl-cert", "ssl-key"):
        if key in params and not Path(params[key]).is_file():
            raise ConfigError(f"bad {role} URL {shown!r}: {key} file {params[key]!r} does not exist")
    try:
        timeout = float(params.get("connect_timeout", 10))
    except ValueError:
        raise ConfigError(f"bad {role} URL {shown!r}: connect_timeout must be a number of seconds") from None
    database = parts.path.lstrip("/") or None
    return Endpoint(
        engine=scheme,  # type: ignore[arg-type]
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        user=unquote(parts.username) if parts.username else "root",
        password=SecretStr(password) if password is not None else None,
        database=database,
        tls=Tls(mode=mode, ca=params.get("ssl-ca"), cert=params.get("ssl-cert"), key=params.get("ssl-key")),  # type: ignore[arg-type]
        name=params.get("name", ""),
        connect_timeout=timeout,
        password_file=params.get("password_file"),
    )


def _read_password_file(path: str, role: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{role} password_file {path!r} cannot be read: {exc.strerror}") from None


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***` (also when the URL does not parse)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{hostpart}"
