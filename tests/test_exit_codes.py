"""The exit codes the CLI really uses, as README's table lists them: a bug is 70 with its
traceback (it was 1, like "differences"), Ctrl-C is 130, a taken metrics port is 2."""

from __future__ import annotations

from click.testing import CliRunner

from migrator.cli import main
from migrator.plan.model import save_plan

from copy_helpers import make_plan


def _plan(tmp_path, source, target):
    path = tmp_path / "plan.yaml"
    save_plan(make_plan([source], target, []), path)
    return path


def test_a_bug_exits_70_and_ctrl_c_130(monkeypatch, tmp_path, source, target):
    path = _plan(tmp_path, source, target)
    import migrator.commands.status as status_cmd

    def broken(*_a, **_k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(status_cmd, "migration_status", broken)
    res = CliRunner().invoke(main, ["status", str(path), "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 70, res.output
    assert "Traceback" in res.output and "internal error: ZeroDivisionError: boom" in res.output

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(status_cmd, "migration_status", interrupted)
    res = CliRunner().invoke(main, ["status", str(path), "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 130 and "interrupted" in res.output


def test_one_table_of_exit_codes_in_code_and_readme():
    """errors.ExitCode is the table every command exits by; README's table lists the same codes,
    and every error a command can raise exits with one of them."""
    import pkgutil
    import re
    from pathlib import Path

    import migrator
    from migrator.errors import ExitCode, MigratorError

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert {int(c) for c in re.findall(r"^\| (\d+) \|", table, re.M)} == {int(c) for c in ExitCode}

    for mod in pkgutil.walk_packages(migrator.__path__, "migrator."):
        if not mod.name.endswith("__main__"):
            __import__(mod.name)
    seen, todo = set(), [MigratorError]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in seen)
    assert len(seen) > 5
    for cls in seen:
        assert cls.exit_code in set(ExitCode), f"{cls.__name__}.exit_code {cls.exit_code} is not in errors.ExitCode"
