"""Exceptions users see, and the CLI's exit codes. The CLI turns each exception into one clean
line and its exit code; no tracebacks (but for a bug)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code of every command (stable; README's table lists the same, tests check it)."""

    OK = 0  # also sync stopped cleanly (Ctrl-C / SIGTERM / --duration)
    DIFFERENT = 1  # blocking findings, verify differences, cutover not complete, a server down; click's "Aborted!"
    USAGE = 2  # usage or configuration error
    UNCHECKED = 2  # verify: chunks that could not be compared (errors)
    STATE = 3  # a checkpoint that cannot be resumed
    SOURCE = 4  # a source failed or refused
    TARGET = 5  # the target failed or refused
    INTERNAL = 70  # a bug (traceback shown)
    INTERRUPTED = 130  # Ctrl-C outside sync's clean stop


class MigratorError(Exception):
    """Base of every expected failure; the message is the whole user-facing explanation."""

    exit_code: int = ExitCode.USAGE
    kind = "error"
    # True only for a connection-level failure worth retrying (server restarting, network, too many
    # connections); a refusal (wrong password, missing grant, missing table) is reported at once.
    transient: bool = False


class ConfigError(MigratorError):
    """Bad URL, config file, flag combination or plan file."""

    exit_code: int = ExitCode.USAGE
    kind = "config error"


class StateError(MigratorError):
    """A checkpoint that cannot be resumed (changed plan, altered table, corrupt file)."""

    exit_code: int = ExitCode.STATE
    kind = "state error"


class WorkdirBusy(StateError):
    """Another migrator process holds the work directory's writer lock."""


class SourceError(MigratorError):
    """A source instance failed or refused (unreachable, privileges, binlog)."""

    exit_code: int = ExitCode.SOURCE
    kind = "source error"


class TargetError(MigratorError):
    """The target failed or rejected something."""

    exit_code: int = ExitCode.TARGET
    kind = "target error"


class SandboxError(MigratorError):
    """The local sandbox could not start or stop (missing binary, port taken)."""

    exit_code: int = ExitCode.USAGE
    kind = "sandbox error"


class InternalError(MigratorError):
    """A bug (an unexpected exception), e.g. in a sync source process."""

    exit_code: int = ExitCode.INTERNAL
    kind = "internal error"
