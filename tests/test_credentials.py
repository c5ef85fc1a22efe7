"""Credentials: passwords with URL delimiters, my.cnf [client] files, per-source environment
variables and --ask-password, on a real source; the secret never appears in any output, plan,
log or checkpoint."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from migrator.db import connect, quote_ident
from migrator.endpoint import name_password_env, parse_url
from migrator.errors import ConfigError
from migrator.inventory import load_fleet_config, resolve_sources

from conftest import drop_databases
from copy_helpers import execute, run_cli
from pty_helpers import run_in_pty

SECRET = "Qz7#Kv/Wx?Jy@Pq%Zr:Lm"


def fragments(secret: str, size: int = 3) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def assert_no_secret(text: str, where: str) -> None:
    leaked = sorted(f for f in fragments(SECRET) if f in text)
    assert not leaked, f"{where} shows part of the password: {leaked}"


@pytest.mark.parametrize("password", ["Qj#Vkx", "Qj/Vkx", "Qj?Vkx", "12/Vkx", "Qj%Vkx", "Qj%cdVkx", SECRET,
                                      "Qj?name=Vkx"])
def test_unencoded_password_is_refused_with_the_fix_and_no_fragment(password):
    # before: "Port could not be cast to integer value as 'Qj'" (a fragment of the password), or
    # 12/Vkx silently read as host "app", port 12; Qj%cd silently decoded to another password
    with pytest.raises(ConfigError) as exc:
        parse_url(f"mysql://app:{password}@db1.prod:3306", "source", env={})
    msg = str(exc.value)
    assert "percent-encode" in msg and "password_file" in msg and "--ask-password" in msg
    assert "mysql://app:***@db1.prod:3306" in msg
    for token in ("Qj", "Vk", "Qz7", "Zr:"):
        assert token not in msg, (token, msg)


def test_encoded_password_and_at_sign_are_accepted():
    ep = parse_url(f"mysql://app:{quote(SECRET, safe='')}@db1.prod:3306?name=s1", "source", env={})
    assert ep.password.get_secret_value() == SECRET and ep.host == "db1.prod" and ep.password_from == "the URL"
    assert parse_url("mysql://app:p@ss@h:1", "source", env={}).password.get_secret_value() == "p@ss"
    # an `@` inside a parameter's value is not a password
    ep = parse_url("mysql://h:3306?name=a@b", "source", env={})
    assert ep.host == "h" and ep.name == "a@b"


def test_password_precedence_per_source_env_and_defaults_file(tmp_path):
    cnf = tmp_path / "my.cnf"
    cnf.write_text("[client]\nuser = reader\npassword = \"from cnf\"\n[migrator]\npassword=from group\n")
    env = {"MIGRATOR_SOURCE_PASSWORD": "role", name_password_env("db-01.prod"): "per source"}
    assert name_password_env("db-01.prod") == "MIGRATOR_PASSWORD_DB_01_PROD"
    ep = parse_url(f"mysql://h?defaults_file={cnf}", "source", env=env)
    assert (ep.user, ep.password.get_secret_value()) == ("reader", "from cnf")
    ep = parse_url(f"mysql://app@h?defaults_file={cnf}&defaults_group=migrator", "source", env=env)
    assert (ep.user, ep.password.get_secret_value()) == ("app", "from group")
    assert f"defaults_file={cnf}" in ep.safe_url() and "from" not in ep.safe_url()
    assert parse_url("mysql://h?name=db-01.prod", "source", env=env).password.get_secret_value() == "per source"
    assert parse_url("mysql://h?name=other", "source", env=env).password.get_secret_value() == "role"
    with pytest.raises(ConfigError, match=r"no \[nope\] group"):
        parse_url(f"mysql://h?defaults_file={cnf}&defaults_group=nope", "source", env={})
    with pytest.raises(ConfigError, match="cannot be read"):
        parse_url(f"mysql://h?defaults_file={tmp_path / 'missing.cnf'}", "source", env={})


def test_fleet_entry_password_file_and_name_env(tmp_path, monkeypatch):
    pw = tmp_path / "legacy.pw"
    pw.write_text("legacy secret\n")
    cfg = tmp_path / "fleet.yaml"
    cfg.write_text("sources:\n  - url: mysql://m@legacy:3307\n    name: legacy\n    password_file: " + str(pw) +
                   "\n  - url: mysql://m@db-[1-2]:3306\n    name: shard\n")
    monkeypatch.setenv("MIGRATOR_PASSWORD_SHARD_2", "two")
    eps = {e.name: e for e in resolve_sources(config=load_fleet_config(cfg))}
    assert eps["legacy"].password.get_secret_value() == "legacy secret"
    assert eps["shard-2"].password.get_secret_value() == "two" and eps["shard-1"].password is None
    # the plan stores the name: a later command finds MIGRATOR_PASSWORD_SHARD_2 again
    again = parse_url(eps["shard-2"].safe_url(), "source")
    assert again.password.get_secret_value() == "two"


@pytest.fixture
def secret_user(source):
    """A user on the real source whose password holds # / ? @ % and :"""
    user = f"u{uuid.uuid4().hex[:10]}"
    conn = connect(source, "source")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", [SECRET])
            cur.execute("GRANT SELECT, SHOW VIEW, RELOAD, REPLICATION CLIENT, REPLICATION SLAVE, PROCESS ON *.* TO "
                        f"'{user}'@'%'")
    finally:
        conn.close()
    try:
        yield user
    finally:
        execute(source, "source", f"DROP USER IF EXISTS '{user}'@'%'")


def _all_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_secret_never_written_on_a_real_plan_and_copy(source, target, secret_user, unique_db, tmp_path):
    db = unique_db("cred")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
            f"CREATE TABLE {quote_ident(db)}.t (id INT PRIMARY KEY, v VARCHAR(20))",
            f"USE {quote_ident(db)}", "INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_300")
    host = f"{source.host}:{source.port}"
    tgt = target.display()
    try:
        # 1. unencoded: refused, no fragment anywhere
        bad = run_cli("plan", "--source", f"mysql://{secret_user}:{SECRET}@{host}", "--target", tgt,
                      "--include", f"{db}.*", "--out", str(tmp_path / "bad.yaml"))
        assert bad.returncode == 2 and "percent-encode" in bad.stderr
        assert_no_secret(bad.stdout + bad.stderr, "the refusal")
        # 2. percent-encoded in the URL: planned; the plan has no password
        plan = tmp_path / "plan.yaml"
        ok = run_cli("plan", "--source", f"mysql://{secret_user}:{quote(SECRET, safe='')}@{host}?name=src1",
                     "--target", tgt, "--include", f"{db}.*", "--out", str(plan))
        assert ok.returncode == 0, ok.stderr
        # 3. copy: the password from MIGRATOR_PASSWORD_SRC1, a log file, JSON logs
        log = tmp_path / "copy.log"
        copied = run_cli("copy", str(plan), "--workdir", str(tmp_path / "work"), "--log-file", str(log),
                         "--log-format", "json", env={"MIGRATOR_PASSWORD_SRC1": SECRET})
        assert copied.returncode == 0, copied.stderr
        assert "300 rows copied" in copied.stdout
        # sync's per-source processes find the password the same way; its checkpoints and logs hold none
        synced = run_cli("sync", str(plan), "--workdir", str(tmp_path / "work"), "--until-caught-up",
                         "--log-file", str(log), env={"MIGRATOR_PASSWORD_SRC1": SECRET})
        assert synced.returncode == 0, synced.stderr
        assert list((tmp_path / "work" / "sync").glob("*.json"))
        # 4. a my.cnf [client] file on a second plan of the same source
        cnf = tmp_path / "client.cnf"
        cnf.write_text(f"[client]\nuser={secret_user}\npassword=\"{SECRET}\"\n")
        plan2 = tmp_path / "plan2.yaml"
        via_cnf = run_cli("plan", "--source", f"mysql://{host}?name=src1&defaults_file={cnf}", "--target", tgt,
                          "--include", f"{db}.*", "--out", str(plan2))
        assert via_cnf.returncode == 0, via_cnf.stderr
        # 5. a wrong password: says where it came from, not what it was
        wrong = run_cli("copy", str(plan), "--workdir", str(tmp_path / "work2"),
                        env={"MIGRATOR_PASSWORD_SRC1": SECRET[::-1]})
        assert wrong.returncode == 4 and "access denied" in wrong.stderr
        assert "MIGRATOR_PASSWORD_SRC1" in wrong.stderr
        assert_no_secret(wrong.stdout + wrong.stderr, "the access-denied error")
        for text, where in ((ok.stdout + ok.stderr, "plan output"), (copied.stdout + copied.stderr, "copy output"),
                            (synced.stdout + synced.stderr, "sync output"),
                            (via_cnf.stdout + via_cnf.stderr, "plan output (cnf)"),
                            (plan.read_text() + plan2.read_text(), "the plan files"),
                            (log.read_text(), "the log file"), (_all_text(tmp_path / "work"), "the work directory")):
            assert_no_secret(text, where)
        assert f"defaults_file={cnf}" in plan2.read_text()
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])


def test_ask_password_prompts_without_echo(source, target, secret_user, unique_db, tmp_path):
    db = unique_db("ask")
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}",
            f"CREATE TABLE {quote_ident(db)}.t (id INT PRIMARY KEY)")
    try:
        plan = tmp_path / "plan.yaml"
        code, screen = run_in_pty(["plan", "--source", f"mysql://{secret_user}@{source.host}:{source.port}",
                                   "--target", target.display(), "--include", f"{db}.*", "--out", str(plan),
                                   "--ask-password"], {"MIGRATOR_SOURCE_PASSWORD": ""}, answer=SECRET)
        assert code == 0, screen
        assert "password for the sources" in screen
        assert_no_secret(screen + plan.read_text(), "the prompt's screen or the plan")
    finally:
        drop_databases(source, "source", [db])


def test_password_by_reference_travels_as_its_source_and_is_read_on_the_worker(tmp_path, monkeypatch):
    """--executor ...?credentials=worker: a task carries where the password comes from, never the
    password; the unpickling worker reads that file or variable itself, or says what is missing."""
    import pickle

    from migrator.endpoint import with_name_password
    from migrator.executor import ExecutorUnavailable, make_executor
    from migrator.sandbox import free_port

    pw = tmp_path / "shard7.pw"
    pw.write_text(SECRET + "\n")
    by_file = parse_url(f"mysql://app@127.0.0.1:3306?name=shard7&password_file={pw}", "source")
    shipped = pickle.dumps(by_file.by_reference("source"))
    assert not [f for f in fragments(SECRET) if f.encode() in shipped], "the password travelled"
    arrived = pickle.loads(shipped)  # e.g. on the scheduler: still no password
    assert arrived.password is None
    assert arrived.resolved().password.get_secret_value() == SECRET  # read where it connects
    monkeypatch.setenv("MIGRATOR_PASSWORD_SHARD8", SECRET)
    by_env = with_name_password(parse_url("mysql://app@127.0.0.1:3306?name=shard8", "source"))
    shipped = pickle.dumps(by_env.by_reference("source"))
    monkeypatch.delenv("MIGRATOR_PASSWORD_SHARD8")  # a worker without the variable
    lost = pickle.loads(shipped)
    assert lost.password is None and lost.resolve_on_worker == "source"
    with pytest.raises(ConfigError) as missing:
        connect(lost, "source")  # refused before any connection attempt
    msg = str(missing.value)
    assert "shard8" in msg and "MIGRATOR_PASSWORD_SHARD8" in msg and "every worker" in msg and "credentials=send" in msg
    assert_no_secret(msg, "the worker's error")
    # credentials=worker: a plain scheduler connection is allowed (no password on it) ...
    port = free_port()  # nothing listens: the executor fails to connect, not to refuse
    monkeypatch.setenv("MIGRATOR_DASK_TIMEOUT", "1")
    with pytest.raises(ExecutorUnavailable):
        make_executor(f"dask://127.0.0.1:{port}?credentials=worker", 1, endpoints=[by_file])
    # ... but a password typed in the URL has no reference a worker could read
    typed = parse_url(f"mysql://app:{quote(SECRET, safe='')}@127.0.0.1:3306?name=shard9", "source", env={})
    with pytest.raises(ConfigError) as refused:
        make_executor(f"dask://127.0.0.1:{port}?credentials=worker", 1, endpoints=[typed])
    assert "shard9" in str(refused.value) and "password_file" in str(refused.value)
    assert_no_secret(str(refused.value), "the refusal")


def worker_login(ep) -> str:
    """Run on a Dask worker: log in with the endpoint as the worker unpickled it."""
    with connect(ep, "source") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            return cur.fetchone()[0]


@pytest.fixture(scope="module")
def dask_cluster():
    """A real LocalCluster whose worker processes start with this process's environment as it is
    now: a variable a test sets afterwards exists on the coordinator side only."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=50)
    try:
        yield cluster.scheduler_address.removeprefix("tcp://")
    finally:
        cluster.close()


def test_dask_workers_read_the_password_themselves(source, secret_user, dask_cluster, tmp_path, monkeypatch):
    """With credentials=worker a password file the worker can read logs in, and a variable only
    the coordinator has fails on the worker with what to do, the secret in neither."""
    import cloudpickle

    from migrator.executor import make_executor

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # worker_login, without importing this file
    pw = tmp_path / "src1.pw"
    pw.write_text(SECRET + "\n")
    host = f"{source.host}:{source.port}"
    monkeypatch.setenv("MIGRATOR_PASSWORD_SRC1", SECRET)  # here only: the worker started without it
    by_file = parse_url(f"mysql://{secret_user}@{host}?name=src1&password_file={pw}", "source")
    by_env = parse_url(f"mysql://{secret_user}@{host}?name=src1", "source")
    assert by_env.password_from == "MIGRATOR_PASSWORD_SRC1"
    with make_executor(f"dask://{dask_cluster}?credentials=worker", 1, endpoints=[by_file, by_env]) as executor:
        assert executor.submit(worker_login, executor.ship(by_file, "source")).result() == f"{secret_user}@%"
        with pytest.raises(ConfigError) as refused:
            executor.submit(worker_login, executor.ship(by_env, "source")).result()
    msg = str(refused.value)
    assert "src1" in msg and "MIGRATOR_PASSWORD_SRC1" in msg and "every worker" in msg and "credentials=send" in msg
    assert_no_secret(msg, "the worker's error")


@pytest.mark.slow
def test_sync_on_dask_uses_the_coordinators_password(source, target, secret_user, dask_cluster, unique_db, tmp_path):
    """Regression: sync tasks re-read the password on the worker from the plan's URL, so one from
    the coordinator's environment never reached it (access denied on the worker). Now they carry
    the coordinator's endpoints, as copy's tasks do."""
    db = unique_db("credsync")
    t = f"{quote_ident(db)}.t"
    execute(source, "source", f"CREATE DATABASE {quote_ident(db)}", f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)",
            f"INSERT INTO {t} VALUES (1, 1), (2, 2)")
    env = {"MIGRATOR_PASSWORD_SRC1": SECRET}  # the CLI's only: the worker never had it
    plan, work = tmp_path / "plan.yaml", str(tmp_path / "work")
    try:
        from migrator.plan.build import build_plan
        from migrator.plan.model import save_plan

        ep = parse_url(f"mysql://{secret_user}@{source.host}:{source.port}?name=src1", "source", env=env)
        save_plan(build_plan([ep], target, includes=[f"{db}.*"]), plan)
        copied = run_cli("copy", str(plan), "--workdir", work, env=env)
        assert copied.returncode == 0, copied.stderr
        execute(source, "source", f"INSERT INTO {t} VALUES (3, 3)", f"UPDATE {t} SET v = 20 WHERE id = 2")
        synced = run_cli("sync", str(plan), "--workdir", work, "--executor", f"dask://{dask_cluster}?insecure=1",
                         "--until-caught-up", env=env, timeout=180)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert_no_secret(synced.stdout + synced.stderr, "sync output")
        with connect(target, "target") as conn, conn.cursor() as cur:
            cur.execute(f"SELECT id, v FROM {t} ORDER BY id")
            assert cur.fetchall() == ((1, 1), (2, 20), (3, 3))
    finally:
        drop_databases(source, "source", [db])
        drop_databases(target, "target", [db])
