"""The Dask scheduler connection: mutual TLS (tls://HOST:PORT?ca=&cert=&key=) on a real LocalCluster,
and connection credentials never sent over a plain scheduler connection."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from copy_helpers import run_cli
from fleet_helpers import SOURCE_COLUMN, drop_target_database, populate_fleet, target_counts

from migrator.endpoint import parse_url
from migrator.errors import ConfigError
from migrator.executor import make_executor
from migrator.plan.build import build_plan
from migrator.plan.model import save_plan
from migrator.sandbox import free_port

distributed = pytest.importorskip("distributed")


def make_certificates(where: Path) -> dict[str, str]:
    """A CA and one certificate it signed (127.0.0.1 / localhost), as real operators would have."""
    where.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (str(where / n) for n in ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem"))
    ext = where / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for cmd in (["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                 "-days", "2", "-subj", "/CN=migrator test CA"],
                ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                 "-days", "2", "-extfile", str(ext)]):
        subprocess.run(cmd, check=True, capture_output=True)
    return {"ca": ca, "cert": cert, "key": key}


def test_a_password_is_never_sent_over_a_plain_scheduler_connection():
    secret = "s3cr3t-Pw"
    ep = parse_url(f"mysql://app:{secret}@127.0.0.1:3306?name=shard7", "source")
    port = free_port()  # nothing listens: the refusal comes before any connection
    with pytest.raises(ConfigError) as refused:
        make_executor(f"dask://127.0.0.1:{port}", 2, endpoints=[ep])
    message = str(refused.value)
    assert "shard7" in message and f"tls://127.0.0.1:{port}?ca=" in message and "insecure=1" in message
    assert secret not in message
    with pytest.raises(ConfigError) as incomplete:
        make_executor(f"tls://127.0.0.1:{port}?ca=/nonexistent/ca.pem", 2, endpoints=[ep])
    assert "cert, key" in str(incomplete.value)


@pytest.mark.slow
def test_copy_and_verify_run_on_a_tls_scheduler(source, target, unique_db, tmp_path: Path):
    from distributed.security import Security

    files = make_certificates(tmp_path / "tls")
    security = Security(tls_ca_file=files["ca"], tls_scheduler_cert=files["cert"], tls_scheduler_key=files["key"],
                        tls_worker_cert=files["cert"], tls_worker_key=files["key"], tls_client_cert=files["cert"],
                        tls_client_key=files["key"], require_encryption=True)
    prefix, tdb = unique_db("tls"), unique_db("tlsw")
    expected = populate_fleet([source], prefix, shards=2, rows=60)
    plan = build_plan([source], target, includes=[f"{prefix}_*.*"], routes=[f"{prefix}_*.*={tdb}.*"],
                      source_column=SOURCE_COLUMN, chunk_rows=30)
    plan_path = tmp_path / "plan.yaml"
    save_plan(plan, plan_path)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                       protocol="tls://", security=security, dashboard_address=None, silence_logs=40)
    try:
        address = cluster.scheduler_address
        assert address.startswith("tls://")
        where = address.removeprefix("tls://")
        with pytest.raises(ConfigError):  # a client without its certificate is refused clearly, before any work
            make_executor(f"tls://{where}?ca={files['ca']}", 1)
        url = f"tls://{where}?ca={files['ca']}&cert={files['cert']}&key={files['key']}"
        work = str(tmp_path / "work")
        copied = run_cli("copy", str(plan_path), "--workdir", work, "--executor", url)
        assert copied.returncode == 0, copied.stdout + copied.stderr
        assert sum(target_counts(target, tdb).values()) == expected
        verified = run_cli("verify", str(plan_path), "--workdir", work, "--executor", url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        # the same scheduler over plain TCP does not answer: TLS is really in use
        plain = run_cli("copy", str(plan_path), "--workdir", str(tmp_path / "plain"), "--executor",
                        f"dask://{where}", env={"MIGRATOR_DASK_TIMEOUT": "3"})
        assert plain.returncode == 2, plain.stdout + plain.stderr
    finally:
        cluster.close()
        drop_target_database(target, tdb)
