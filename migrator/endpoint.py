"""Connection URLs for sources and targets.

`mysql://user:pass@host:port` (sources; `mariadb://` too) and `oceanbase://`, `tidb://`,
`mysql://` for the target. The password, first found wins:
  1. in the URL, percent-encoded (`#` %23, `/` %2F, `?` %3F, `@` %40, `%` %25, `:` %3A);
  2. `?password_file=PATH` (the file's first line);
  3. `?defaults_file=PATH` (a my.cnf-style option file: `password` from its `[client]` group, then
     from `[defaults_group]` when `?defaults_group=NAME` is given; `user` too when the URL has none);
  4. MIGRATOR_PASSWORD_<NAME>: per source, NAME its name upper-cased with every other character
     than A-Z/0-9 turned into `_` (source `db-01` -> MIGRATOR_PASSWORD_DB_01);
  5. MIGRATOR_SOURCE_PASSWORD / MIGRATOR_TARGET_PASSWORD (also what `--ask-password` fills).
TLS through `ssl-ca`, `ssl-cert`, `ssl-key`, `ssl-mode`. The password is a SecretStr: it never
prints, `display` omits it, and no error message quotes any part of the URL's user:password.
"""

from __future__ import annotations

import configparser
import os
import re
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
PER_NAME_ENV = "MIGRATOR_PASSWORD_"
KNOWN_PARAMS = {"password_file", "defaults_file", "defaults_group", "ssl-ca", "ssl-cert", "ssl-key", "ssl-mode",
                "name", "connect_timeout"}
ENCODE_HINT = ("percent-encode these characters in the URL's password (# %23, / %2F, ? %3F, @ %40, % %25, : %3A), "
               "or leave the password out of the URL and give it with ?password_file=PATH, ?defaults_file=MY.CNF, "
               "the environment (MIGRATOR_PASSWORD_<NAME>, MIGRATOR_SOURCE_PASSWORD, MIGRATOR_TARGET_PASSWORD) "
               "or --ask-password")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


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
    defaults_file: str | None = None
    defaults_group: str | None = None
    # where the password came from ("URL", "password_file /x", "MIGRATOR_PASSWORD_SRC1"...): never the secret
    password_from: str = ""
    # sent to a worker by reference (executor credentials=worker): its role; the password is looked
    # up again, from the same file or variable, by the process that connects (`resolved`). Not on
    # unpickling: a scheduler may unpickle task arguments too, and must not resolve (and re-send) it.
    resolve_on_worker: str = ""

    def by_reference(self, role: Role) -> Endpoint:
        """This endpoint without its password, for a worker to resolve where it connects."""
        if self.password is None:
            return self
        return self.model_copy(update={"password": None, "resolve_on_worker": role})

    def resolved(self) -> Endpoint:
        """The endpoint to connect with here: a reference resolved on this machine, or a
        ConfigError naming the source, where its password comes from and what to do."""
        if not self.resolve_on_worker or self.password is not None:
            return self
        value, why = resolve_here(self)
        if value is None:
            raise ConfigError(why)
        return self.model_copy(update={"password": SecretStr(value), "resolve_on_worker": ""})

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
        if self.defaults_file:
            params.append(f"defaults_file={self.defaults_file}")
        if self.defaults_group:
            params.append(f"defaults_group={self.defaults_group}")
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
    _check_userinfo(url.strip(), role, shown)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        why = str(exc) if "out of range" in str(exc) else "the port after the host is not a number"
        if "@" in url.partition("://")[2].split("@", 1)[-1] or "@" in url.partition("://")[2].partition("?")[2]:
            why += f" (a password holding '/', '?' or '#' cuts the URL short: {ENCODE_HINT})"
        raise ConfigError(f"bad {role} URL {shown!r}: {why}") from None
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
    user = _decode_userinfo(parts.username, "user name", role, shown) if parts.username else None
    password = _decode_userinfo(parts.password, "password", role, shown) if parts.password is not None else None
    password_from = "the URL" if password is not None else ""
    if password is None and "password_file" in params:
        password, password_from = _read_password_file(params["password_file"], role), f"password_file {params['password_file']}"
    if "defaults_file" in params:
        found = read_defaults_file(params["defaults_file"], params.get("defaults_group"), role)
        user = user or found.get("user")
        if password is None and found.get("password") is not None:
            password, password_from = found["password"], f"defaults_file {params['defaults_file']}"
    name = params.get("name", "")
    if password is None and name and env.get(name_password_env(name)):
        password, password_from = env[name_password_env(name)], name_password_env(name)
    if password is None and env.get(PASSWORD_ENV[role]):
        password, password_from = env[PASSWORD_ENV[role]], PASSWORD_ENV[role]
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
        user=user or "root",
        password=SecretStr(password) if password is not None else None,
        database=database,
        tls=Tls(mode=mode, ca=params.get("ssl-ca"), cert=params.get("ssl-cert"), key=params.get("ssl-key")),  # type: ignore[arg-type]
        name=name,
        connect_timeout=timeout,
        password_file=params.get("password_file"),
        defaults_file=params.get("defaults_file"),
        defaults_group=params.get("defaults_group"),
        password_from=password_from,
    )


def resolve_here(ep: Endpoint) -> tuple[str | None, str]:
    """The password of an endpoint sent by reference, from the same source the coordinator used
    (its password_file, defaults_file or variable), read on this machine; else None and why not."""
    role, source = ep.resolve_on_worker, ep.password_from
    try:
        if source.startswith("password_file") and ep.password_file:
            value: str | None = _read_password_file(ep.password_file, role)
        elif source.startswith("defaults_file") and ep.defaults_file:
            value = read_defaults_file(ep.defaults_file, ep.defaults_group, role).get("password")
        elif source.startswith("MIGRATOR_"):
            value = os.environ.get(source) or None
        else:  # typed in the URL or asked for: nothing a worker can look up (make_executor refuses it)
            value, source = None, source or "nowhere"
        why = "" if value is not None else f"{source} gives no password here"
    except ConfigError as exc:
        value, why = None, str(exc)
    if value is not None:
        return value, ""
    where = "file" if source.startswith(("password_file", "defaults_file")) else "environment variable"
    return None, (
        f"{role} {ep.label}: its password comes from {source} on the machine that started the run, and this worker "
        f"({os.uname().nodename}) cannot read it ({why}): provide the same {where} on every worker, or add "
        "credentials=send to the --executor URL (passwords then travel to the workers in the task, over TLS)")


def name_password_env(name: str) -> str:
    """The per-source password variable: `db-01.prod` -> MIGRATOR_PASSWORD_DB_01_PROD."""
    return PER_NAME_ENV + re.sub(r"[^A-Z0-9]", "_", name.upper())


def with_name_password(ep: Endpoint, env: dict[str, str] | None = None) -> Endpoint:
    """A source named after parsing (fleet config, host:port label): take MIGRATOR_PASSWORD_<NAME>
    when nothing more specific (URL, password_file, defaults_file) gave a password."""
    env = os.environ if env is None else env
    var = name_password_env(ep.name) if ep.name else ""
    if not var or not env.get(var) or ep.password_from not in ("", *PASSWORD_ENV.values()):
        return ep
    return ep.model_copy(update={"password": SecretStr(env[var]), "password_from": var})


def _check_userinfo(url: str, role: str, shown: str) -> None:
    """A password holding `/`, `?` or `#` unencoded ends the URL's host part early: urlsplit then
    reads a fragment of the password as the host or port (and its error quotes it). Catch that
    before parsing and say what to do, quoting nothing of the user:password."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        return
    cut = min([i for i in (rest.find(c) for c in "/?#") if i >= 0], default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority or "@" not in tail:
        return
    query = tail.split("#", 1)[0].partition("?")[2]
    at_in_query = "@" in query and "@" not in tail.split("?", 1)[0] and "#" not in tail
    if at_in_query and all(k in KNOWN_PARAMS for k, _ in parse_qsl(query, keep_blank_values=True)):
        return  # an `@` inside a parameter's value (password_file=/etc/a@b): not a password
    raise ConfigError(
        f"bad {role} URL {shown!r}: the user:password part holds a '/', '?' or '#' that is not percent-encoded, "
        f"so the URL cannot be split into user, password and host; {ENCODE_HINT}"
    )


def _decode_userinfo(raw: str, what: str, role: str, shown: str) -> str:
    if _BAD_ESCAPE.search(raw):
        raise ConfigError(f"bad {role} URL {shown!r}: the {what} holds a '%' that does not start a %XX escape; "
                          f"{ENCODE_HINT}")
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise ConfigError(f"bad {role} URL {shown!r}: the {what}'s %XX escapes do not decode as UTF-8 "
                          f"(was a '%' meant literally?); {ENCODE_HINT}") from None


def read_defaults_file(path: str, group: str | None, role: str) -> dict[str, str]:
    """`user` and `password` from a my.cnf-style option file: the [client] group, then [group]
    (later wins, as the mysql client reads them). Quotes around values are removed."""
    parser = configparser.RawConfigParser(allow_no_value=True, strict=False, interpolation=None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{role} defaults_file {path!r} cannot be read: {exc.strerror}") from None
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        raise ConfigError(f"{role} defaults_file {path!r} is not a my.cnf-style option file"
                          + (f" (line {line})" if line else "") + ": write [client] then password=...") from None
    found: dict[str, str] = {}
    groups = ["client"] + ([group] if group else [])
    if group and not parser.has_section(group):
        raise ConfigError(f"{role} defaults_file {path!r} has no [{group}] group (defaults_group={group})")
    for g in groups:
        if not parser.has_section(g):
            continue
        for key in ("user", "password"):
            value = parser.get(g, key, fallback=None)
            if value is not None:
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                found[key] = value
    return found


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


def prompt_password(role: Role) -> None:
    """--ask-password: read the password without echo (from the terminal) and keep it in this
    process's environment as MIGRATOR_SOURCE_PASSWORD / MIGRATOR_TARGET_PASSWORD, where the
    processes this run starts (sync's per-source processes) find it too. Never written anywhere."""
    import click

    what = "sources" if role == "source" else "target"
    value = click.prompt(f"password for the {what} (not shown)", hide_input=True, default="", show_default=False,
                         err=True)
    os.environ[PASSWORD_ENV[role]] = value
