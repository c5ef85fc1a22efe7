"""Sync's checkpoint and lease per source, held in the target itself.

One row per (plan, source) in `migrator_state`.`sync_checkpoint` on the target:

- the checkpoint (the same JSON as the work directory's sync/SRC.json), written by the applier
  INSIDE the transaction of the batch it covers when that batch commits on one connection (the
  foreign-key cascade path, one worker, one part): the target then never holds a batch without
  its checkpoint, nor the reverse, so a restart replays nothing already applied (exactly once
  by construction). Batches spread over parallel connections write it right after all their
  parts committed: a kill between the two replays that batch, which is idempotent (DESIGN.md:
  REPLACE of full after-images, DELETE by key);
- a lease: who syncs the source (owner id, host, pid, work directory) and until when (target
  clock). It is renewed with every checkpoint write and idle poll, and before a batch (or a
  retry of one) when a third of it has passed; another sync takes it over only once it expired
  (or, from the same work directory, whose per-source lock proves the holder gone). Checkpoint
  writes are fenced on it (`... WHERE owner = me`): a process whose lease was taken over cannot
  commit a batch on the one-connection path, and on the parallel path its parts start only
  while the lease has two thirds left and it stops at the batch's checkpoint write. What that
  path does not fence: a single statement of a part hanging for more than two thirds of the
  lease, then committing after a successor took over (a network partition longer than that,
  healed in the middle of a commit).

The row is keyed by the plan's fingerprint and the source's name and remembers the copy's start
position: a checkpoint left by an earlier copy of the source (copy --restart) is not resumed.
Privileges on the target: CREATE (once, for the database and table), SELECT, INSERT, UPDATE on
`migrator_state`.*.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pymysql

from ..db import error_code, qualified, query, quote_ident
from ..errors import StateError, TargetError
from ..positions import BinlogPosition
from .contracts import Checkpoint

log = logging.getLogger(__name__)

STATE_DATABASE = "migrator_state"
CHECKPOINT_TABLE = "sync_checkpoint"
TABLE = qualified(STATE_DATABASE, CHECKPOINT_TABLE)
CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
  `plan_id` VARCHAR(64) NOT NULL,
  `source` VARCHAR(191) NOT NULL,
  `copy_start` VARCHAR(255) NOT NULL,
  `checkpoint` LONGTEXT NULL,
  `seq` BIGINT NOT NULL DEFAULT 0,
  `updated_at` DOUBLE NOT NULL DEFAULT 0,
  `owner` VARCHAR(255) NOT NULL DEFAULT '',
  `owner_note` VARCHAR(1024) NOT NULL DEFAULT '',
  `lease_expires` DOUBLE NOT NULL DEFAULT 0,
  PRIMARY KEY (`plan_id`, `source`)
)"""
SCHEMA_VISIBLE_WITHIN = 30.0  # seconds a just-created state table may take to be seen by every session
NOW = "UNIX_TIMESTAMP(NOW(6))"  # the target's clock: hosts' clocks may disagree, the target's is one


class LeaseHeld(StateError):
    """Another live sync holds this source's lease (for `expires_in` seconds more)."""

    def __init__(self, message: str, expires_in: float = 0.0):
        super().__init__(message)
        self.expires_in = expires_in


class LeaseLost(TargetError):
    """Another sync took this source's lease over: this one must stop writing."""


_identities: dict[int, tuple[Any, str]] = {}  # id(plan) -> (plan, fingerprint): one hash per plan object


def plan_identity(plan: Any) -> str:
    """The key of a plan's rows: its fingerprint (a changed plan starts from the work directory's
    checkpoint file, else from the copy's start). Computed once per plan object (about 1 s for
    30,000 tables), however many sources a process syncs."""
    hit = _identities.get(id(plan))
    if hit is None or hit[0] is not plan:
        if len(_identities) >= 8:
            _identities.pop(next(iter(_identities)))
        hit = _identities[id(plan)] = (plan, plan.fingerprint())
    return hit[1]


def copy_start_key(pos: BinlogPosition | None) -> str:
    """Which copy a checkpoint continues: the server and position the copy started from."""
    return "" if pos is None else f"{pos.server_id}:{pos.file}:{pos.pos}"


@dataclass
class Held:
    """What the target holds for one source."""

    checkpoint: Checkpoint | None
    copy_start: str
    owner: str
    note: dict[str, Any]
    expires_in: float  # seconds from now (target clock); <= 0: expired or released

    def holder(self) -> str:
        n = self.note
        where = f"Dask worker {n['worker']}" if n.get("worker") else f"work directory {n.get('workdir', '?')}"
        return f"{n.get('host', '?')} pid {n.get('pid', '?')} ({where})"


class TargetState:
    """One source's row in the target: claimed once, then written with each checkpoint."""

    def __init__(self, plan_id: str, source: str, workdir: Path, *, lease_seconds: float = 30.0):
        self.plan_id = plan_id
        self.source = source
        self.lease_seconds = lease_seconds
        self.note = {"host": socket.gethostname(), "pid": os.getpid(), "workdir": str(Path(workdir).resolve())}
        self.owner = f"{self.note['host']}/{self.note['pid']}/{uuid.uuid4().hex[:12]}"
        self.renewed_at = 0.0  # monotonic time of the last successful write (the lease runs from just before it)

    def where(self) -> str:
        return f"source {self.source} (plan {self.plan_id})"

    # ------------------------------------------------------------ start

    @staticmethod
    def ensure(conn: pymysql.connections.Connection) -> None:
        """The state database and table, created when missing: CREATE is needed only then (a
        CREATE ... IF NOT EXISTS of an existing table still asks for the privilege)."""
        try:
            query(conn, f"SELECT 1 FROM {TABLE} LIMIT 0")
            return
        except pymysql.err.MySQLError as exc:
            if error_code(exc) not in (1049, 1146):  # unknown database / table: create them
                raise
        query(conn, f"CREATE DATABASE IF NOT EXISTS {quote_ident(STATE_DATABASE)}")
        query(conn, CREATE_TABLE)

    def read(self, conn: pymysql.connections.Connection, *, lock: bool = False) -> Held | None:
        rows = query(conn, f"SELECT `checkpoint`, `copy_start`, `owner`, `owner_note`, `lease_expires` - {NOW} "
                           f"FROM {TABLE} WHERE `plan_id` = %s AND `source` = %s" + (" FOR UPDATE" if lock else ""),
                     (self.plan_id, self.source))
        if not rows:
            return None
        raw, copy_start, owner, note, expires_in = rows[0]
        try:
            cp = Checkpoint.model_validate_json(raw) if raw else None
        except ValueError as exc:
            raise StateError(f"{self.where()}: the checkpoint held in the target ({TABLE}) is not valid ({exc}); "
                             "delete that row to resume from the work directory's checkpoint") from None
        return Held(cp, str(copy_start), str(owner), json.loads(note) if note else {}, float(expires_in or 0))

    def claim(self, conn: pymysql.connections.Connection, copy_start: BinlogPosition | None,
              may_take_over: Callable[[Held], bool] = lambda held: False) -> Checkpoint | None:
        """Take this source's lease (refused while another live sync holds it, unless
        `may_take_over` says that holder is gone) and return the checkpoint the target holds for
        this copy, if any. `conn` must be in autocommit mode; it is used in one transaction."""
        deadline = time.monotonic() + SCHEMA_VISIBLE_WITHIN
        while True:
            self.ensure(conn)
            try:
                return self._claim(conn, copy_start, may_take_over)
            except pymysql.err.MySQLError as exc:
                # seekdb: a session whose CREATE TABLE IF NOT EXISTS raced another session's may not
                # see the new table for a moment (its schema refreshes asynchronously): 1146 then
                if error_code(exc) not in (1049, 1146) or time.monotonic() > deadline:
                    raise
                log.info("%s: %s not visible yet to this session; retrying", self.where(), TABLE)
                time.sleep(0.2)

    def _claim(self, conn: pymysql.connections.Connection, copy_start: BinlogPosition | None,
               may_take_over: Callable[[Held], bool]) -> Checkpoint | None:
        key = copy_start_key(copy_start)
        started = time.monotonic()
        conn.begin()
        try:
            held = self.read(conn, lock=True)
            if held is None:
                query(conn, f"INSERT INTO {TABLE} (`plan_id`, `source`, `copy_start`, `owner`, `owner_note`, "
                            f"`lease_expires`, `updated_at`) VALUES (%s, %s, %s, %s, %s, {NOW} + %s, %s)",
                      (self.plan_id, self.source, key, self.owner, json.dumps(self.note), self.lease_seconds,
                       time.time()))
            else:
                if held.owner and held.owner != self.owner and held.expires_in > 0 and not may_take_over(held):
                    raise self.refusal(held)
                reset = held.copy_start != key
                if reset and held.checkpoint is not None:
                    log.warning("%s: the checkpoint held in the target continues another copy (started at %s, this "
                                "copy at %s): not resumed, replaced", self.where(), held.copy_start, key)
                query(conn, f"UPDATE {TABLE} SET `owner` = %s, `owner_note` = %s, `lease_expires` = {NOW} + %s, "
                            "`copy_start` = %s" + (", `checkpoint` = NULL" if reset else "") +
                            " WHERE `plan_id` = %s AND `source` = %s",
                      (self.owner, json.dumps(self.note), self.lease_seconds, key, self.plan_id, self.source))
                if held.owner and held.owner != self.owner and held.expires_in > 0:
                    log.warning("%s: took over the lease of %s (that process is gone)", self.where(), held.holder())
                elif held.owner and held.owner != self.owner:  # a released lease has no owner
                    log.warning("%s: the lease of %s expired %.0f s ago: taken over", self.where(), held.holder(),
                                -held.expires_in)
                if reset:
                    held = None
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        self.renewed_at = started
        return held.checkpoint if held is not None else None

    def refusal(self, held: Held) -> LeaseHeld:
        until = datetime.fromtimestamp(time.time() + held.expires_in, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return LeaseHeld(
            f"{self.where()}: another sync holds this source's lease: {held.holder()}, until {until} (in "
            f"{held.expires_in:.0f} s unless it renews it). Stop that sync (it releases the lease when it stops), or "
            f"wait for the lease to expire; its checkpoint is in {TABLE} on the target", held.expires_in)

    # ------------------------------------------------------------ writes

    def write(self, conn: pymysql.connections.Connection, dumped: dict[str, Any], *, release: bool = False) -> None:
        """The checkpoint and a renewed lease, in the caller's transaction (not committed here):
        fenced on the lease, so a process that lost it writes nothing (LeaseLost)."""
        started = time.monotonic()
        lease = "`owner` = '', `lease_expires` = 0" if release else f"`lease_expires` = {NOW} + {float(self.lease_seconds)!r}"
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {TABLE} SET `checkpoint` = %s, `seq` = `seq` + 1, `updated_at` = %s, {lease} WHERE `plan_id` = %s AND `source` = %s AND `owner` = %s",
                        (json.dumps(dumped), time.time(), self.plan_id, self.source, self.owner))
            if cur.rowcount != 1:
                raise self.lost(conn)
        self.renewed_at = started

    def lost(self, conn: pymysql.connections.Connection) -> LeaseLost:
        try:
            held = self.read(conn)
        except pymysql.err.MySQLError:
            held = None
        who = held.holder() if held is not None and held.owner else "nobody (the row is gone)"
        return LeaseLost(f"{self.where()}: this sync lost the source's lease (now held by {who}); it stopped without "
                         "writing its last batch. Only one sync per source may run: check where the other one runs")

    def renew(self, conn: pymysql.connections.Connection) -> None:
        """The lease alone, renewed and committed (before writing rows after a long pause)."""
        started = time.monotonic()
        with conn.cursor() as cur:
            cur.execute(f"UPDATE {TABLE} SET `lease_expires` = {NOW} + %s WHERE `plan_id` = %s AND `source` = %s "
                        "AND `owner` = %s", (self.lease_seconds, self.plan_id, self.source, self.owner))
            if cur.rowcount != 1:
                raise self.lost(conn)
        conn.commit()
        self.renewed_at = started

    def guard(self, conn: pymysql.connections.Connection) -> None:
        """Before rows are written: renew the lease when a third of it has passed since the last
        write, so they are written only while it has two thirds left (raises LeaseLost)."""
        if self.stale():
            self.renew(conn)

    def same_workdir(self, held: Held) -> bool:
        """The holder ran from this host and work directory: the caller, holding that directory's
        per-source lock, knows that process is gone (killed before it could release the lease)."""
        return held.note.get("host") == self.note["host"] and held.note.get("workdir") == self.note["workdir"]

    def stale(self) -> bool:
        """Renew before writing rows when a third of the lease has passed since the last write."""
        return time.monotonic() - self.renewed_at >= self.lease_seconds / 3
