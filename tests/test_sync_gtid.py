"""sync starts by GTID (MariaDB gtid_binlog_pos form) where the checkpoint has one, else by file/offset."""

from __future__ import annotations

from pymysqlreplication.event import MariadbGtidEvent

from migrator.db import connect, qualified, query
from migrator.state import atomic_write_json, read_json
from migrator.sync.runner import run_sync
from migrator.sync.stream import Checkpoint, GtidStreamReader, SyncOptions, stream_server_id
from sync_helpers import forget_target_checkpoint, rows_of, run_cli, setup_tables, write_plan

DDL = "CREATE TABLE {name} (id INT NOT NULL PRIMARY KEY, note MEDIUMTEXT)"


def setup(source, target, db, tmp_path):
    tdb = db + "_t"
    wd, plan = setup_tables(source, target, db, tdb, tmp_path, [("t", DDL)])
    return tdb, wd, plan


def insert(source, db, ids, note="x") -> str:
    """One transaction per row; returns the GTID of the last one (the session's @@last_gtid)."""
    with connect(source, "source") as c:
        for i in ids:
            query(c, f"INSERT INTO {qualified(db, 't')} VALUES (%s, %s)", (i, note))
        return query(c, "SELECT @@last_gtid")[0][0]


def seq(gtid: str, domain: str = "0") -> int:
    return max(int(g.split("-")[2]) for g in gtid.split(",") if g.split("-")[0] == domain)


def test_resume_by_gtid_skips_what_the_checkpoint_covers_and_applies_the_rest(source, target, unique_db, tmp_path):
    db = unique_db("g")
    tdb, wd, plan = setup(source, target, db, tmp_path)
    copy_start = read_json(wd.copy_position(source.name))["start"]
    last = insert(source, db, range(1, 6))
    first = run_sync(plan, wd, SyncOptions(until_caught_up=True)).sources[source.name]
    assert first.caught_up and first.rows["insert"] == 5
    cp = Checkpoint.model_validate(read_json(wd.sync_checkpoint(source.name)))
    assert cp.position.gtid and seq(cp.position.gtid) >= seq(last)  # the last committed transaction is recorded

    # Row 1 is deleted on the target only, and the checkpoint's file/offset is moved back to the copy's
    # start: a file/offset resume would replay the insert of row 1 and bring it back; a GTID resume
    # starts after the recorded GTID and leaves it deleted.
    with connect(target, "target") as t:
        query(t, f"DELETE FROM {qualified(tdb, 't')} WHERE id = 1")
    raw = read_json(wd.sync_checkpoint(source.name))
    raw["position"].update(file=copy_start["file"], pos=copy_start["pos"])
    atomic_write_json(wd.sync_checkpoint(source.name), raw)
    forget_target_checkpoint(target, wd, source.name)  # the rewound file is the only checkpoint
    last = insert(source, db, range(6, 9))
    second = run_sync(plan, wd, SyncOptions(until_caught_up=True)).sources[source.name]
    assert second.caught_up, "a GTID start must reach the source's head, not stay at the file's offset 4"
    assert rows_of(target, "target", tdb, "t", "id") == [(i,) for i in range(2, 9)]
    assert second.rows["insert"] == 8  # 5 before + exactly the 3 after the recorded GTID
    cp = Checkpoint.model_validate(read_json(wd.sync_checkpoint(source.name)))
    assert seq(cp.position.gtid) >= seq(last)
    assert (cp.position.file, cp.position.pos) > (copy_start["file"], copy_start["pos"])


def test_no_recorded_gtid_falls_back_to_file_offset(source, target, unique_db, tmp_path):
    db = unique_db("f")
    tdb, wd, plan = setup(source, target, db, tmp_path)
    raw = read_json(wd.copy_position(source.name))
    raw["start"]["gtid"] = ""  # a source without GTID
    atomic_write_json(wd.copy_position(source.name), raw)
    insert(source, db, range(1, 4))
    result = run_sync(plan, wd, SyncOptions(until_caught_up=True)).sources[source.name]
    assert result.caught_up and rows_of(target, "target", tdb, "t", "id") == [(1,), (2,), (3,)]
    cp = Checkpoint.model_validate(read_json(wd.sync_checkpoint(source.name)))
    assert cp.position.gtid == ""  # stays on file/offset: a GTID state rebuilt from nothing could miss domains


def test_long_gtid_replay_is_read_to_the_end_in_one_connection(source, target, unique_db, tmp_path):
    """mysql-replication's own MariaDB dump packet made the server reset the connection a few MB into a
    GTID replay, and its silent reconnect restarted from the first GTID, forever."""
    db = unique_db("l")
    tdb, wd, plan = setup(source, target, db, tmp_path)
    start = read_json(wd.copy_position(source.name))["start"]["gtid"]
    insert(source, db, range(1, 301), note="z" * 10_000)  # ~3 MB of binlog
    stream = GtidStreamReader(
        connection_settings={"host": source.host, "port": source.port, "user": source.user,
                             "password": source.password.get_secret_value() if source.password else ""},
        server_id=stream_server_id(wd, "gtid-test"), blocking=False, auto_position=start, is_mariadb=True)
    gtids = []
    try:
        for event in stream:
            if isinstance(event, MariadbGtidEvent):
                gtids.append(event.gtid)
    finally:
        stream.close()
    assert len(gtids) >= 300 and len(gtids) == len(set(gtids)), "events repeated or lost"
    assert seq(gtids[0]) == seq(start) + 1


def test_by_file_position_flag_forces_file_offset(source, target, unique_db, tmp_path):
    """The mirror of the GTID test above: from file/offset the insert of row 1 is replayed."""
    db = unique_db("o")
    tdb, wd, plan = setup(source, target, db, tmp_path)
    copy_start = read_json(wd.copy_position(source.name))["start"]
    insert(source, db, range(1, 3))
    plan_path = write_plan(plan, tmp_path / "plan.yaml")
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up")
    assert res.returncode == 0, res.stderr
    with connect(target, "target") as t:
        query(t, f"DELETE FROM {qualified(tdb, 't')} WHERE id = 1")
    raw = read_json(wd.sync_checkpoint(source.name))
    raw["position"].update(file=copy_start["file"], pos=copy_start["pos"])
    atomic_write_json(wd.sync_checkpoint(source.name), raw)
    forget_target_checkpoint(target, wd, source.name)  # the rewound file is the only checkpoint
    res = run_cli("sync", str(plan_path), "--workdir", str(wd.root), "--until-caught-up", "--by-file-position")
    assert res.returncode == 0, res.stderr
    assert rows_of(target, "target", tdb, "t", "id") == [(1,), (2,)]
