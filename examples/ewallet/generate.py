"""Generate the e-wallet example fleet on MariaDB sources.

8 shards (wallet_00 ... wallet_07) spread round-robin over the given sources. Deterministic for
a given seed, so sources and expectations are reproducible. Run it directly:

    python examples/ewallet/generate.py --sandbox .migrator-sandbox --accounts 2000 [--fleet fleet.yaml]
"""

from __future__ import annotations

import argparse
import random
from decimal import Decimal
from pathlib import Path

import pymysql

SCHEMA = Path(__file__).with_name("schema.sql")
SHARDS = 8
CURRENCIES = ("IDR", "USD", "SGD")
NOTES = ("kopi ☕", "makan siang 🍜", "pulsa", "transfer ke ibu 💸", "", "ongkir", "😀 thanks")


def shard_names(n: int = SHARDS) -> list[str]:
    return [f"wallet_{i:02d}" for i in range(n)]


def split_statements(sql: str) -> list[str]:
    """Statements of schema.sql (one per blank-line block, comments dropped)."""
    out, cur = [], []
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        if not line.strip():
            if cur:
                out.append("\n".join(cur).rstrip().rstrip(";"))
                cur = []
            continue
        cur.append(line)
    if cur:
        out.append("\n".join(cur).rstrip().rstrip(";"))
    return out


def create_shard(conn: pymysql.connections.Connection, db: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}` DEFAULT CHARACTER SET utf8mb4")
        cur.execute(f"USE `{db}`")
        for stmt in split_statements(SCHEMA.read_text()):
            cur.execute(stmt)


def fill_shard(conn: pymysql.connections.Connection, db: str, shard_no: int, accounts: int, seed: int = 7) -> None:
    rnd = random.Random(seed * 1000 + shard_no)
    with conn.cursor() as cur:
        cur.execute(f"USE `{db}`")
        cur.executemany(
            "INSERT INTO merchant (name, category, settings) VALUES (%s, %s, %s)",
            [(f"Toko {shard_no}-{i}", rnd.choice(["food", "telco", "retail"]), '{"fee_bps": %d}' % rnd.randint(0, 300))
             for i in range(20)],
        )
        cur.executemany(
            "INSERT INTO account (user_id, currency, balance, created_at) VALUES (%s, %s, %s, %s)",
            [(shard_no * 10_000_000 + i, CURRENCIES[i % 3], Decimal(rnd.randint(0, 10_000_000)) / 100,
              f"2024-01-{1 + i % 28:02d} 10:00:00.{i % 1000000:06d}") for i in range(accounts)],
        )
        transfers = accounts * 2
        rows_t, rows_l = [], []
        for t in range(1, transfers + 1):
            a, b = rnd.randint(1, accounts), rnd.randint(1, accounts)
            amount = Decimal(rnd.randint(100, 100_000)) / 100
            ts = f"2024-02-{1 + t % 28:02d} 12:{t % 60:02d}:{(t * 7) % 60:02d}.{t % 1000:03d}000"
            rows_t.append((a, b, amount, "done", rnd.choice(NOTES), ts))
            rows_l += [(t, a, -amount, "debit", ts), (t, b, amount, "credit", ts)]
        cur.executemany(
            "INSERT INTO transfer (from_account, to_account, amount, state, note, created_at) VALUES (%s,%s,%s,%s,%s,%s)",
            rows_t,
        )
        cur.executemany(
            "INSERT INTO ledger_entry (transfer_id, account_id, amount, kind, created_at) VALUES (%s,%s,%s,%s,%s)",
            rows_l,
        )
        # back-office log: no key, and identical duplicate rows happen (same second, same action)
        audit = [(f"2024-03-{1 + i % 28:02d} 09:00:00", rnd.choice(["ops", "risk"]), f"review {i // 2}")
                 for i in range(accounts // 10 + 2)]
        cur.executemany("INSERT INTO audit_log (at, actor, action) VALUES (%s, %s, %s)", audit)
        cur.executemany(
            "INSERT INTO customer_note_legacy (account_id, note) VALUES (%s, %s)",
            [(i, rnd.choice(["café crème", "Müller", "naïve façade", "plain"])) for i in range(1, accounts // 10 + 2)],
        )
    conn.commit()


def transfer(conn: pymysql.connections.Connection, rnd: random.Random, accounts: int, max_amount: int = 50_000) -> bool:
    """One app transfer between two accounts of this shard, in one transaction: debit, credit,
    the transfer row and its two ledger entries (kind set by the trigger). The sum of balances
    is invariant. False when the payer lacked the funds (nothing written)."""
    a, b = rnd.sample(range(1, accounts + 1), 2)
    amount = Decimal(rnd.randint(100, max_amount)) / 100
    with conn.cursor() as cur:
        conn.begin()
        try:
            if not cur.execute("UPDATE account SET balance = balance - %s WHERE id = %s AND balance >= %s",
                               (amount, a, amount)):
                conn.rollback()
                return False
            cur.execute("UPDATE account SET balance = balance + %s WHERE id = %s", (amount, b))
            cur.execute("INSERT INTO transfer (from_account, to_account, amount, state, note, created_at) "
                        "VALUES (%s, %s, %s, 'done', %s, NOW(6))", (a, b, amount, rnd.choice(NOTES)))
            tid = cur.lastrowid
            cur.executemany("INSERT INTO ledger_entry (transfer_id, account_id, amount, kind, created_at) "
                            "VALUES (%s, %s, %s, 'credit', NOW(6))", [(tid, a, -amount), (tid, b, amount)])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return True


def generate(source_urls: list[tuple[str, int]], accounts: int = 2000, shards: int = SHARDS) -> dict[str, str]:
    """Create and fill the shards on (host, port) sources; returns shard -> 'host:port'."""
    placement: dict[str, str] = {}
    for i, db in enumerate(shard_names(shards)):
        host, port = source_urls[i % len(source_urls)]
        conn = pymysql.connect(host=host, port=port, user="root", password="", charset="utf8mb4", autocommit=False)
        try:
            create_shard(conn, db)
            fill_shard(conn, db, i, accounts)
        finally:
            conn.close()
        placement[db] = f"{host}:{port}"
    return placement


def fleet_config(info: dict) -> dict:
    """A `migrator plan --config` fleet file for a sandbox.yaml: its sources (named) and target."""
    return {"version": 1, "target": info["target"]["url"] if info.get("target") else None,
            "sources": [{"url": s["url"], "name": s["name"]} for s in info["sources"]]}


def main() -> None:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sandbox", default=".migrator-sandbox", help="sandbox directory (its sandbox.yaml)")
    ap.add_argument("--accounts", type=int, default=2000, help="accounts per shard")
    ap.add_argument("--fleet", metavar="FILE", help="also write a fleet config for `migrator plan --config FILE`")
    args = ap.parse_args()
    info = yaml.safe_load((Path(args.sandbox) / "sandbox.yaml").read_text())
    sources = [("127.0.0.1", s["port"]) for s in info["sources"]]
    for db, where in generate(sources, args.accounts).items():
        print(db, "->", where)
    if args.fleet:
        Path(args.fleet).write_text(yaml.safe_dump(fleet_config(info), sort_keys=False))
        print("fleet config:", args.fleet)


if __name__ == "__main__":
    main()
