"""Test and benchmark helpers for fleets: sharded wallet schemas on many real MariaDB instances,
merged into one target database, and row counts read back from both sides."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from migrator.db import connect, query, quote_ident
from migrator.endpoint import Endpoint, parse_url
from migrator.sandbox import SandboxInfo

SOURCE_COLUMN = "__source"


def fleet_endpoints(info: SandboxInfo) -> list[Endpoint]:
    return [parse_url(s.url, "source") for s in info.sources]


def shard_names(prefix: str, index: int, shards: int) -> list[str]:
    """Source i holds shards prefix_<i*shards+k>: names unique over the fleet, like wallet_000..wallet_127."""
    return [f"{prefix}_{index * shards + k:04d}" for k in range(shards)]


def populate_source(ep: Endpoint, dbs: list[str], rows: int) -> int:
    """Each shard: `ledger` (decimal amounts, fractional datetimes, text) and `accounts`; rows each."""
    conn = connect(ep, "source")
    try:
        with conn.cursor() as cur:
            for db in dbs:
                q = quote_ident(db)
                cur.execute(f"CREATE DATABASE {q}")
                cur.execute(f"CREATE TABLE {q}.ledger (id BIGINT PRIMARY KEY, account INT NOT NULL, "
                            "amount DECIMAL(18,2) NOT NULL, note VARCHAR(120), at DATETIME(3) NOT NULL)")
                cur.execute(f"CREATE TABLE {q}.accounts (id INT PRIMARY KEY, name VARCHAR(120) NOT NULL, "
                            "balance DECIMAL(18,2) NOT NULL)")
                cur.executemany(f"INSERT INTO {q}.ledger VALUES (%s, %s, %s, %s, %s)", [
                    (i, i % 17, Decimal(i * 7 % 100000) / 100, None if i % 5 == 0 else f"{db} entry {i} 'q'",
                     f"2024-01-{i % 28 + 1:02d} 10:{i % 60:02d}:00.{i % 1000:03d}") for i in range(1, rows + 1)])
                cur.executemany(f"INSERT INTO {q}.accounts VALUES (%s, %s, %s)",
                                [(i, f"acct {i} of {db}", Decimal(i * 13) / 10) for i in range(1, 18)])
    finally:
        conn.close()
    return len(dbs) * (rows + 17)


def populate_fleet(endpoints: list[Endpoint], prefix: str, *, shards: int = 2, rows: int = 200,
                   workers: int = 8) -> int:
    """Create the shards on every source in parallel; total rows written."""
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(lambda ie: populate_source(ie[1], shard_names(prefix, ie[0], shards), rows),
                            enumerate(endpoints)))


def flush_status(endpoints: list[Endpoint]) -> None:
    """Reset Max_used_connections on every source (so a later read measures one stage)."""
    for ep in endpoints:
        conn = connect(ep, "source")
        try:
            with conn.cursor() as cur:
                cur.execute("FLUSH STATUS")
        finally:
            conn.close()


def max_used_connections(ep: Endpoint) -> int:
    conn = connect(ep, "source")
    try:
        return int(query(conn, "SHOW GLOBAL STATUS LIKE 'Max_used_connections'")[0][1])
    finally:
        conn.close()


def target_counts(target: Endpoint, database: str) -> dict[tuple[str, str], int]:
    """(table, source shard value) -> rows, from the merged target tables."""
    conn = connect(target, "target")
    try:
        out: dict[tuple[str, str], int] = {}
        for table in ("ledger", "accounts"):
            rows = query(conn, f"SELECT {quote_ident(SOURCE_COLUMN)}, COUNT(*) FROM "
                               f"{quote_ident(database)}.{quote_ident(table)} GROUP BY 1")
            out.update({(table, str(shard)): int(n) for shard, n in rows})
        return out
    finally:
        conn.close()


def drop_target_database(target: Endpoint, database: str) -> None:
    conn = connect(target, "target")
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)}")
    finally:
        conn.close()
