"""Reading YAML files into pydantic models with one clear line per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


# libyaml's parser when PyYAML was built with it (several times faster), else the pure-Python one.
SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def read_yaml_mapping(path: str | Path, what: str, expected: str) -> dict[str, Any]:
    """The file's top-level mapping; `what` names the file in errors ("plan file"),
    `expected` says what a mapping here holds."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_yaml_mapping(text, path, what, expected)


def parse_yaml_mapping(text: str, path: str | Path, what: str, expected: str) -> dict[str, Any]:
    """`text` (read from `path`) as a top-level mapping, errors as in read_yaml_mapping."""
    try:
        raw = yaml.load(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {str(path)!r} must be a mapping ({expected})")
    return raw


def validate_model(model: type[M], raw: dict[str, Any], path: str | Path, what: str) -> M:
    """model.model_validate(raw); every error as 'field X: message' (one line each)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        lines = [f"field {'.'.join(str(p) for p in e['loc'])!r}: {e['msg']}" for e in exc.errors()]
        if len(lines) == 1:
            raise ConfigError(f"{what} {str(path)!r}: {lines[0]}") from None
        raise ConfigError(f"{what} {str(path)!r}: {len(lines)} problems:\n  " + "\n  ".join(lines)) from None
