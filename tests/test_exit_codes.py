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
