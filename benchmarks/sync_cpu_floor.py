"""Sync's CPU per row change, stage by stage, in one process (no fork, no threads, no sampling):
what reading the binlog costs at least, what decoding and building the SQL add, and what
sending that SQL with pymysql costs.

    .venv/bin/python benchmarks/sync_cpu_floor.py [--changes 100000] [--repeat 3] [--rows-per-tx 1000] [--target URL]

Starts one private MariaDB (temp dir, stopped at the end), writes the e-wallet workload of
benchmarks/sync_throughput.py (50% inserts, 40% updates, 10% deletes) and reads the same binlog
range once per stage, keeping the lowest CPU of --repeat runs. The target is the sandbox seekdb
(its server CPU is not counted: only this client's). Stages:

  read      mysql-replication reading the row events, rows left undecoded
  pread     sync's own packet reader (packets.py) doing the same: the floor of sync's reading
  library   + the library decoding every row (its own decoder, fixed by values.fix_row)
  decode    + sync's row decoder instead (rowdecode.py: one generated reader per table)
  decode0   the same with the decoder's per-column loop (the reader before issue 16), for the ratio
  changes   + row changes, net effect per key, statements built (apply.py), nothing sent
  pchanges  the same read by sync's packet reader (what sync does now)
  changes0  the same with the per-column loop and a literal per value (before issue 16)
  send      pymysql sending those statements to the target (client CPU only; no reading)
  memory    every image decoded again from the events' bytes kept in memory (no reading, no noise
            from the socket); memkey: the same with before-images decoded for the key only
Prints figures; never fails on time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pymysqlreplication import BinLogStreamReader  # noqa: E402
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent  # noqa: E402

from migrator.db import connect, qualified, query, quote_ident  # noqa: E402
from migrator.endpoint import parse_url  # noqa: E402
from migrator.positions import read_position  # noqa: E402
from migrator.sandbox import free_port, start_mariadb, stop_pid  # noqa: E402
from migrator.schema.catalog import read_columns  # noqa: E402
from migrator.sync.apply import Route, _group, delete_sql, literal_maker, net_effect, replace_sql  # noqa: E402
from migrator.sync.rowdecode import RowDecoder, event_changes  # noqa: E402
from migrator.sync.values import TableShape, fix_row, prepare_columns  # noqa: E402
from sync_throughput import WALLET, sandbox_target, workload  # noqa: E402

KIND = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
try:  # sync's own packet reader (issue 16); an older checkout has none
    from migrator.sync.packets import PacketDeleteRows, PacketReader, PacketUpdateRows, PacketWriteRows  # noqa: E402
    KIND.update({PacketWriteRows: "insert", PacketUpdateRows: "update", PacketDeleteRows: "delete"})
except ImportError:
    PacketReader = None
# before-images decoded for the key only, as sync does for a table outside any foreign key
# (tables.before_columns); an older checkout without it decodes them whole
KEY_ONLY = ({"before": frozenset({"id"})} if "before" in __import__("inspect").signature(event_changes).parameters
            else {})
BATCH = 5000  # sync's default batch_rows in the throughput benchmark


def read_events(ep, start, end, db, on_event, packets: bool = False) -> None:
    stream = (PacketReader if packets else BinLogStreamReader)(
        connection_settings={"host": ep.host, "port": ep.port, "user": ep.user, "passwd": ""},
        server_id=0x52000000 + ep.port, blocking=False, resume_stream=True, log_file=start.file, log_pos=start.pos,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent], enable_logging=False, freeze_schema=True,
        only_schemas=[db], only_tables=["wallet"])
    try:
        for ev in stream:
            on_event(stream, ev)
            if (stream.log_file, stream.log_pos) >= (end.file, end.pos):
                break
    finally:
        stream.close()


def cpu(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rows-per-tx", type=int, default=1000, help="row changes per source transaction")
    ap.add_argument("--target", default=None, help="oceanbase://root@127.0.0.1:PORT (default: the sandbox's)")
    ap.add_argument("--profile", choices=["library", "decode", "changes"], help="profile one stage instead")
    args = ap.parse_args()
    target = parse_url(args.target or sandbox_target()["url"], "target")
    work = Path(tempfile.mkdtemp(prefix="sync-floor-"))
    port = free_port()
    proc = start_mariadb(work / "m", port, server_id=950, options={"innodb-buffer-pool-size": "128M"})
    try:
        ep = parse_url(f"mysql://root@127.0.0.1:{port}?name=floor", "source")
        db, tdb = "floor_src", f"floor_t_{port}"
        with connect(ep, "source") as s, connect(target, "target") as t:
            for conn, name in ((s, db), (t, tdb)):
                query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)}")
                query(conn, f"CREATE DATABASE {quote_ident(name)}")
                query(conn, WALLET.format(name=qualified(name, "wallet")))
            start = read_position(s)
            shape = TableShape(read_columns(s, db, "wallet"))
        workload(ep, db, args.changes, args.rows_per_tx)
        with connect(ep, "source") as s:
            end = read_position(s)
        route = Route(table_id=f"floor.{db}.wallet", target_database=tdb, target_table="wallet", key=["id"],
                      columns=list(shape.names))
        counted: list[int] = [0]
        statements: list[str] = []

        def stage_read(packets: bool = False) -> None:
            def on(stream, ev):
                counted[0] += 1
            read_events(ep, start, end, db, on, packets)

        def stage_library() -> None:
            def on(stream, ev):
                prepare_columns(stream.table_map[ev.table_id].columns, shape)
                for r in ev.rows:
                    if "values" in r:
                        fix_row(shape, r["values"], r["none_sources"])
                    else:
                        fix_row(shape, r["before_values"], r["before_none_sources"])
                        fix_row(shape, r["after_values"], r["after_none_sources"])
            read_events(ep, start, end, db, on)

        def loop_decoder(cols):
            """The decoder as it was: one reader call per column (kept as the NULL fallback)."""
            dec = RowDecoder.for_table(cols, shape)
            dec.image = lambda buf, pos: dec._with_nulls(buf, pos + dec.null_bytes,
                                                         int.from_bytes(buf[pos:pos + dec.null_bytes], "little"))
            return dec

        def stage_decode(make=None) -> None:
            def on(stream, ev):
                cols = stream.table_map[ev.table_id].columns
                (make(cols) if make is not None else RowDecoder.for_table(cols, shape)).rows(ev)
            read_events(ep, start, end, db, on)

        def per_value_sql(route_, rows, lit):
            values = ",".join("(" + ",".join(lit(v) for v in route_.values_of(r)) + ")" for r in rows)
            return (f"REPLACE INTO {qualified(route_.target_database, route_.target_table)} "
                    f"({','.join(quote_ident(c) for c in route_.columns)}) VALUES {values}")

        def stage_changes(keep: bool = False, before: bool = False, packets: bool = False) -> int:
            changes: list = []
            decoders: dict = {}
            n = [0]
            if True:  # the connection is opened once, outside the stages (sync keeps its own open)
                lit = literal_maker(lit_conn)

                def flush():
                    for route_, deletes, replaces in _group(net_effect(changes)):
                        for i in range(0, len(deletes), 500):
                            sql = delete_sql(route_, deletes[i:i + 500], lit)
                            if keep:
                                statements.append(sql)
                        for i in range(0, len(replaces), 500):
                            sql = (per_value_sql if before else replace_sql)(route_, replaces[i:i + 500], lit)
                            if keep:
                                statements.append(sql)
                    n[0] += len(changes)
                    changes.clear()

                def on(stream, ev):
                    cols = stream.table_map[ev.table_id].columns
                    dec = decoders.get(id(cols))
                    if dec is None:
                        dec = decoders[id(cols)] = loop_decoder(cols) if before else RowDecoder.for_table(cols, shape)
                    kind = KIND[type(ev)]
                    event_changes(ev, kind, cols, shape, route, dec, changes,
                                  **(KEY_ONLY if kind != "insert" and not before else {}))
                    if len(changes) >= BATCH:
                        flush()
                read_events(ep, start, end, db, on, packets)
                flush()
            return n[0]

        def stage_send() -> None:
            with connect(target, "target", autocommit=False) as conn, conn.cursor() as cur:
                for i, sql in enumerate(statements):
                    cur.execute(sql)
                    if i % 10 == 9:
                        conn.commit()
                conn.commit()

        lit_conn = connect(target, "target")
        n_changes = stage_changes(keep=True)
        bodies: list = []  # (event kind, rows body): the images decoded again in memory, no reading

        def capture(stream, ev):
            packet = ev.packet
            bodies.append((KIND[type(ev)], RowDecoder.for_table(stream.table_map[ev.table_id].columns, shape),
                           bytes(packet.read(ev.event_size - packet.read_bytes))))
        read_events(ep, start, end, db, capture)

        def in_memory(before) -> None:
            """Every image of every event decoded from its bytes (`before`: the before-images' columns)."""
            for kind, dec, buf in bodies:
                pos, n, image = 0, len(buf), dec.image
                old = image if kind == "insert" or before is None or not hasattr(dec, "partial_image") \
                    else dec.partial_image(before)
                if kind == "update":
                    while pos < n:
                        _, pos = old(buf, pos)
                        _, pos = image(buf, pos)
                else:
                    img = image if kind == "insert" else old
                    while pos < n:
                        _, pos = img(buf, pos)
        if args.profile:  # one stage under cProfile, nothing measured
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall({"library": stage_library, "decode": stage_decode, "changes": stage_changes}[args.profile])
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return
        results = {}
        stages = (("memory", lambda: in_memory(None)), ("memkey", lambda: in_memory(frozenset({"id"}))),
                  ("read", stage_read), ("library", stage_library), ("decode", stage_decode),
                  ("decode0", lambda: stage_decode(loop_decoder)), ("changes", stage_changes),
                  ("changes0", lambda: stage_changes(before=True)), ("send", stage_send))
        if PacketReader is not None:
            stages += (("pread", lambda: stage_read(True)), ("pchanges", lambda: stage_changes(packets=True)))
        for _ in range(args.repeat):  # rounds over all stages: the machine's load hits each alike
            for name, fn in stages:
                results[name] = min(results.get(name, 1e9), cpu(fn))
        print(f"{n_changes} row changes ({len(statements)} statements), CPU µs per row change (lowest of {args.repeat}):")
        for name, s in results.items():
            print(f"  {name:8s} {1e6 * s / n_changes:6.2f}")
        print(f"  µs per change now (decode + changes + send): {1e6 * (results['changes'] + results['send']) / n_changes:.2f}; "
              f"before issue 16 (decode0 + changes0 + send): {1e6 * (results['changes0'] + results['send']) / n_changes:.2f}")
        print(f"  generated vs per-column decoder: {results['decode0'] / results['decode']:.2f}x less CPU; "
              f"whole conversion (decode + changes + SQL) before/after: "
              f"{(results['changes0'] - results['read']) / (results['changes'] - results['read']):.2f}x less CPU")
        print(f"  images decoded from memory (no reading): whole before-images {1e6 * results['memory'] / n_changes:.2f}, "
              f"key-only before-images {1e6 * results['memkey'] / n_changes:.2f} µs per change")
        if "pchanges" in results:
            print(f"  sync's packet reader: reading {1e6 * results['pread'] / n_changes:.2f} (library "
                  f"{1e6 * results['read'] / n_changes:.2f}); decode + changes + send "
                  f"{1e6 * (results['pchanges'] + results['send']) / n_changes:.2f} (library reading: "
                  f"{1e6 * (results['changes'] + results['send']) / n_changes:.2f})")
        floor = results["read"] + results["send"]
        print(f"  floor (read + send, nothing decoded or built): {1e6 * floor / n_changes:.2f}; "
              f"library decode + send: {1e6 * (results['library'] + results['send']) / n_changes:.2f}; "
              f"sync's stages (changes + send): {1e6 * (results['changes'] + results['send']) / n_changes:.2f}")
        with connect(target, "target") as t:
            query(t, f"DROP DATABASE IF EXISTS {quote_ident(tdb)}")
    finally:
        stop_pid(proc.pid)


if __name__ == "__main__":
    main()
