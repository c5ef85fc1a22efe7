"""What must hold before a source's binlog is replayed: the copy finished its tables (DESIGN:
the one race), the source logs ROW / FULL images, and the binlog sync needs is still there.
A mixin of SourceSync (stream.py)."""

from __future__ import annotations

import logging
import time

import pymysql

from ..db import query
from ..errors import SourceError, StateError
from ..positions import BinlogPosition
from .contracts import SyncStopped
from .copystate import SourceCopy, source_copy

log = logging.getLogger("migrator.sync.stream")


class SourceChecks:
    """SourceSync's checks of the copy and the source (uses its plan, sp, opts, tables, stop, report)."""

    def copy_state(self) -> SourceCopy:
        """Where copy started and ended for this source, and its unfinished tables."""
        return source_copy(self.workdir, self.plan, self.name)

    def wait_for_copy(self) -> None:
        """A table's events are applied only once all its chunks are copied (DESIGN: the one race)."""
        while True:
            copy = self.copy_state()
            if not copy.incomplete:
                return
            shown = ", ".join(copy.incomplete[:10]) + (f" and {len(copy.incomplete) - 10} more" if len(copy.incomplete) > 10 else "")
            if not self.opts.wait_for_copy:
                raise StateError(f"{self.log_where()}: copy has not finished table(s) {shown}; finish `migrator copy` "
                                 "first, or run sync with --wait-for-copy")
            log.warning("%s: waiting for copy to finish %s", self.log_where(), shown)
            self.report({"state": f"waiting for copy: {shown}"})
            if self.stop():
                raise SyncStopped(f"{self.log_where()}: stopped while waiting for copy")
            time.sleep(2.0)

    def check_source(self, conn: pymysql.connections.Connection) -> None:
        fmt, image = query(conn, "SELECT @@global.binlog_format, @@global.binlog_row_image")[0]
        self.check_binlog_settings(fmt, image)
        if self.sp.flavor != "mariadb":  # MySQL 8 can log JSON updates as partial diffs
            rows = query(conn, "SHOW GLOBAL VARIABLES LIKE 'binlog_row_value_options'")
            if rows and "PARTIAL_JSON" in str(rows[0][1] or "").upper():
                raise SourceError(f"{self.log_where()}: binlog_row_value_options=PARTIAL_JSON logs JSON updates as "
                                  "partial diffs; sync needs full after-images: SET GLOBAL binlog_row_value_options='' "
                                  "(and in the server config)")

    def check_binlog_settings(self, fmt: str, image: str) -> None:
        if str(fmt).upper() != "ROW" or str(image).upper() != "FULL":
            raise SourceError(f"{self.log_where()}: binlog_format={fmt}, binlog_row_image={image}; sync needs ROW and "
                              "FULL: SET GLOBAL binlog_format='ROW', binlog_row_image='FULL' (and in the server config)")

    def check_available(self, conn: pymysql.connections.Connection, pos: BinlogPosition) -> None:
        files = [r[0] for r in query(conn, "SHOW BINARY LOGS")]
        if pos.file not in files:
            raise SourceError(self.purged_message(pos, files[0] if files else "none"))

    def purged_message(self, pos: BinlogPosition, oldest: str = "?") -> str:
        ids = ", ".join(sorted({t.plan.id for t in self.tables.values()})) or "its tables"
        return (f"{self.log_where()}: the binlog sync needs ({pos.file}:{pos.pos}"
                f"{', gtid ' + pos.gtid if pos.gtid else ''}) has been purged (oldest kept: {oldest}); changes since then "
                f"cannot be replayed. Recover: re-copy this source's tables ({ids}): remove "
                f"{self.workdir.sync_checkpoint(self.name)} and this source's copy state, run `migrator copy` again, then "
                "`migrator sync`; keep binlogs longer (expire_logs_days / binlog_expire_logs_seconds)")
