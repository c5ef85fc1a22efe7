"""Exceptions users see. The CLI turns each into one clean line and an exit code; no tracebacks.

Exit codes (stable, documented in README's table):
  0 ok, 1 differences / blocking findings (and click's "Aborted!" for a declined confirmation),
  2 usage or configuration error, 3 bad state (checkpoint refused), 4 source error,
  5 target error, 70 internal error (a bug: traceback shown), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations


class MigratorError(Exception):
    """Base of every expected failure; the message is the whole user-facing explanation."""

    exit_code = 2
    kind = "error"
    # True only for a connection-level failure worth retrying (server restarting, network, too many
    # connections); a refusal (wrong password, missing grant, missing table) is reported at once.
    transient: bool = False


class ConfigError(MigratorError):
    """Bad URL, config file, flag combination or plan file."""

    exit_code = 2
    kind = "config error"


class StateError(MigratorError):
    """A checkpoint that cannot be resumed (changed plan, altered table, corrupt file)."""

    exit_code = 3
    kind = "state error"


class SourceError(MigratorError):
    """A source instance failed or refused (unreachable, privileges, binlog)."""

    exit_code = 4
    kind = "source error"


class TargetError(MigratorError):
    """The target failed or rejected something."""

    exit_code = 5
    kind = "target error"


class SandboxError(MigratorError):
    """The local sandbox could not start or stop (missing binary, port taken)."""

    exit_code = 2
    kind = "sandbox error"


class InternalError(MigratorError):
    """A bug (an unexpected exception), e.g. in a sync source process."""

    exit_code = 70
    kind = "internal error"
