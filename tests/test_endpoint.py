"""Connection URLs and fleet configs: good and bad input, secrets never shown."""

from __future__ import annotations

import pytest

from migrator.endpoint import parse_url, redact_url
from migrator.errors import ConfigError
from migrator.inventory import expand_ranges, load_fleet_config, resolve_sources


def test_source_url_fields():
    ep = parse_url("mysql://app:s%3Acret@db1.prod:3307/wallet?name=shard1", "source", env={})
    assert (ep.engine, ep.host, ep.port, ep.user, ep.database, ep.name) == (
        "mysql", "db1.prod", 3307, "app", "wallet", "shard1")
    assert ep.password is not None and ep.password.get_secret_value() == "s:cret"


@pytest.mark.parametrize("url,port", [("oceanbase://root@ob", 2881), ("tidb://root@t", 4000), ("mysql://root@m", 3306)])
def test_target_default_ports(url, port):
    assert parse_url(url, "target", env={}).port == port


def test_password_from_env_and_file(tmp_path):
    assert parse_url("mysql://u@h", "source", env={"MIGRATOR_SOURCE_PASSWORD": "e"}).password.get_secret_value() == "e"
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    ep = parse_url(f"oceanbase://u@h?password_file={pw}", "target", env={"MIGRATOR_TARGET_PASSWORD": "env"})
    assert ep.password.get_secret_value() == "from-file"
    assert "from-file" not in ep.safe_url() and str(pw) in ep.safe_url()


@pytest.mark.parametrize(
    "url,role,needle",
    [
        ("postgres://u@h", "source", "scheme 'postgres'"),
        ("oceanbase://u@h", "source", "scheme 'oceanbase'"),
        ("mysql://u:pw@:3306", "source", "no host"),
        ("mysql://u@h:99999", "source", "Port out of range"),
        ("mysql://u@h?sslca=x", "source", "unknown parameter 'sslca'"),
        ("mysql://u@h?ssl-mode=sometimes", "source", "ssl-mode 'sometimes'"),
        ("mysql://u@h?ssl-mode=verify-ca", "source", "needs ssl-ca"),
        ("mysql://u@h?ssl-ca=/nonexistent/ca.pem", "source", "does not exist"),
        ("mysql://u@h?password_file=/nonexistent/pw", "source", "cannot be read"),
    ],
)
def test_bad_urls_name_the_field(url, role, needle):
    with pytest.raises(ConfigError) as exc:
        parse_url(url, role, env={})
    assert needle in str(exc.value)


def test_secret_never_in_messages_or_dumps():
    secret = "Sup3rS3cret"
    with pytest.raises(ConfigError) as exc:
        parse_url(f"postgres://u:{secret}@h", "source", env={})
    assert secret not in str(exc.value)
    ep = parse_url(f"mysql://u:{secret}@h", "source", env={})
    for text in (str(ep), repr(ep), ep.display(), ep.safe_url(), ep.model_dump_json()):
        assert secret not in text
    assert redact_url(f"mysql://u:{secret}@h:1") == "mysql://u:***@h:1"


def test_host_ranges_keep_padding():
    assert expand_ranges("mysql://u@db-[008-011].prod:3306") == [
        f"mysql://u@db-{n}.prod:3306" for n in ("008", "009", "010", "011")]
    assert len(expand_ranges("mysql://u@r[1-3]-h[1-2]")) == 6
    with pytest.raises(ConfigError, match="backwards"):
        expand_ranges("mysql://u@db-[5-1]")


def test_fleet_config_expands_and_names(tmp_path):
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(
        "version: 1\n"
        "target: oceanbase://root@ob:2881\n"
        "sources:\n"
        "  - mysql://migrator@db-[001-300].prod:3306\n"
        "  - url: mysql://migrator@legacy.prod:3307\n"
        "    name: legacy\n"
    )
    config = load_fleet_config(cfg)
    eps = resolve_sources(config=config)
    assert len(eps) == 301
    assert eps[0].host == "db-001.prod" and eps[299].host == "db-300.prod"
    assert eps[-1].name == "legacy"
    assert len({e.name for e in eps}) == 301


@pytest.mark.parametrize(
    "body,needle",
    [
        ("sources: [mysql://u@h]\nextra: 1\n", "'extra'"),
        ("version: 2\nsources: [mysql://u@h]\n", "version 2"),
        ("sources: 5\n", "'sources'"),
        ("- just\n- a list\n", "mapping"),
        ("sources: [mysql://u@h\n", "not valid YAML"),
    ],
)
def test_bad_fleet_config_names_the_field(tmp_path, body, needle):
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text(body)
    with pytest.raises(ConfigError) as exc:
        load_fleet_config(cfg)
    assert needle in str(exc.value)


def test_sources_file_and_duplicates(tmp_path):
    f = tmp_path / "sources.txt"
    f.write_text("# fleet\nmysql://u@a:3306\n\nmysql://u@b:3306\n")
    assert [e.host for e in resolve_sources(sources_file=f)] == ["a", "b"]
    with pytest.raises(ConfigError, match="listed twice"):
        resolve_sources(["mysql://u@a:3306", "mysql://u@a:3306"])
    with pytest.raises(ConfigError, match="no source given"):
        resolve_sources()
