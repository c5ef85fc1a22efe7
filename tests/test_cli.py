"""The command line: every command explains itself; expected failures are one line, no traceback."""

from __future__ import annotations

import click
from click.testing import CliRunner

from migrator.cli import main


def _walk(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, path + (name,))


def test_every_command_has_help_text():
    runner = CliRunner()
    seen = []
    for path, cmd in _walk(main):
        assert (cmd.help or "").strip(), f"`migrator {' '.join(path)}` has no help text"
        res = runner.invoke(main, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        assert "Usage:" in res.output
        seen.append(path)
    assert ("sandbox", "up") in seen and ("demo",) in seen


def test_usage_error_exit_code_2():
    res = CliRunner().invoke(main, ["sandbox", "up", "--sources", "0"])
    assert res.exit_code == 2
    assert "Traceback" not in res.output
