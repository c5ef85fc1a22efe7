"""Where a source's sync stands: its checkpoint (held in the target, committed with the batch it
covers where that batch commits on one connection; the work directory's file is a view of it for
`status`). A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pymysql

from ..db import describe_error
from ..errors import StateError, TargetError
from ..positions import BinlogPosition
from ..state import atomic_write_json, read_json
from .contracts import Checkpoint

log = logging.getLogger("migrator.sync.stream")


class Checkpointing:
    """SourceSync's checkpoint: read at start, moved after each committed batch, written."""

    def start_checkpoint(self) -> Checkpoint:
        """The furthest of the checkpoint held in the target and the work directory's file (of
        the same server's binlog), else the copy's start position when sync never ran. Takes
        this source's lease in the target first (refused while another sync holds it)."""
        saved = self.file_checkpoint()
        copy = self.copy_state()
        with self._target_session() as tgt:
            try:
                # a holder from this work directory is gone: the runner holds the directory's source lock
                held = self.held.claim(tgt, copy.start, may_take_over=self.held.same_workdir)
            except pymysql.err.MySQLError as exc:
                raise TargetError(f"{describe_error(self.target, 'target', exc)} while reading {self.log_where()}'s "
                                  "sync checkpoint in migrator_state.sync_checkpoint: the target user needs CREATE "
                                  "there once, then SELECT, INSERT, UPDATE") from None
        cp = self.furthest(saved, held)
        if cp is not None:
            return cp
        if copy.start is None:
            raise StateError(f"{self.log_where()}: copy has not recorded a start position: run `migrator copy` first")
        return Checkpoint(source=self.name, position=copy.start)

    def file_checkpoint(self) -> Checkpoint | None:
        saved = read_json(self.workdir.sync_checkpoint(self.name))
        if not saved:
            return None
        try:
            return Checkpoint.model_validate(saved)
        except ValueError as exc:
            raise StateError(f"sync checkpoint {str(self.workdir.sync_checkpoint(self.name))!r} is not valid ({exc}); "
                             "move it aside to replay from the copy's start position") from None

    def furthest(self, saved: Checkpoint | None, held: Checkpoint | None) -> Checkpoint | None:
        """Of the work directory's checkpoint and the target's, the one further on (the target's
        is ahead after a kill between a batch's commit and the file's write, or when this work
        directory is not the one sync last ran from)."""
        if saved is None or held is None:
            if held is not None:
                log.info("%s: resuming from the checkpoint held in the target (%s:%s)", self.log_where(),
                         held.position.file, held.position.pos)
            return saved or held
        ids = (saved.position.server_id, held.position.server_id)
        if None not in ids and ids[0] != ids[1]:
            raise StateError(
                f"{self.log_where()}: the sync checkpoint in {str(self.workdir.sync_checkpoint(self.name))!r} is for "
                f"server_id {ids[0]}, the one held in the target for server_id {ids[1]}: they are not the same "
                "binlog. Check which server this source's URL points to; move the wrong one aside (the file, or the "
                f"target's row in {self.held.where()} of migrator_state.sync_checkpoint)")
        if held.position.key() > saved.position.key():
            log.warning("%s: the checkpoint held in the target (%s:%s) is ahead of the work directory's (%s:%s): "
                        "resuming from the target's", self.log_where(), held.position.file, held.position.pos,
                        saved.position.file, saved.position.pos)
            return held
        return saved

    def _advance(self, pos: BinlogPosition, counts: dict[str, int], held: bool = False) -> None:
        """The checkpoint moves to `pos`; held: the batch's own transaction wrote it in the target."""
        for k, n in counts.items():
            self.cp.rows[k] = self.cp.rows.get(k, 0) + n
        self.cp.position = pos
        self.cp.event_time = pos.at or self.cp.event_time
        self.save_checkpoint(in_target=False if held else None)
        if counts:
            self.report({"rows": counts})

    def mark(self, pos: BinlogPosition, counts: dict[str, int]) -> Callable[[Any], None]:
        """What the applier writes in the target with the batch: the checkpoint as it will be
        once the batch committed (the same JSON _advance then writes to the work directory)."""
        dumped = self.cp.model_dump(mode="json")
        dumped["rows"] = {k: dumped["rows"].get(k, 0) + counts.get(k, 0) for k in {*dumped["rows"], *counts}}
        dumped["position"] = pos.model_dump(mode="json")
        dumped["event_time"] = pos.at or self.cp.event_time
        dumped["xa_prepared"] = dict(self.cp.xa_prepared)  # hold_for_xa set it for `pos`
        dumped["updated_at"] = time.time()
        return lambda conn: self.held.write(conn, dumped)

    def save_checkpoint(self, in_target: bool | None = None, release: bool = False) -> None:
        """The work directory's checkpoint, and the target's: in_target None writes it there when
        a third of the lease has passed since the last write (an idle source renews its lease)."""
        if self.window is not None and self.window.due(self.cp.position):
            self.run_window_sweep()  # never a checkpoint at or past the copy's end before the sweep
        self.cp.updated_at = time.time()
        self._saved_at = time.monotonic()
        # what is held now (an XA COMMIT read since the position last moved is no longer held)
        self.cp.xa_prepared = {xid: f"{p.start.file}:{p.start.pos}" for xid, p in self.prepared.items()}
        dumped = self.cp.model_dump(mode="json")
        if in_target or (in_target is None and self.held.stale()):
            self.applier.on_connection(lambda conn: self.held.write(conn, dumped, release=release),
                                       what="writing the sync checkpoint")
        atomic_write_json(self.workdir.sync_checkpoint(self.name), dumped)
        self.report_checkpoint(dumped)

    def report_checkpoint(self, dumped: dict) -> None:
        """Tell the coordinator where this source stands (progress, metrics, caught up)."""
        self._reported_caught_up = self.caught_up
        self.report({"checkpoint": dumped, "caught_up": self.caught_up, "pending_events": self.pending_events})
