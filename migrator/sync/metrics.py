"""Prometheus metrics of a running sync (prometheus_client, its own registry).

    migrator_sync_lag_seconds{source}        age of the oldest change read but not yet on the target (every 2 s)
    migrator_sync_lag_transactions{source}   GTID transactions behind the source (MariaDB)
    migrator_sync_lag_events{source}         events read from the binlog, not yet checkpointed
    migrator_sync_rows_applied_total{source,kind}   insert | update | delete
    migrator_sync_retries_total{source}      transient source/target failures retried
    migrator_sync_errors_total{source}       errors that stopped the source's stream
    migrator_sync_caught_up{source}          1 when the last pass reached the source's head
    migrator_sync_xa_prepared{source}        prepared XA transactions holding the checkpoint back
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ..progress import SyncProgress
from .contracts import gtid_distance, status_line


class SyncMetrics:
    def __init__(self, sources: list[str], registry: CollectorRegistry | None = None):
        # the command's registry (migrator.metrics: one /metrics for every stage), or its own
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.lag_seconds = Gauge("migrator_sync_lag_seconds", "Replication lag in seconds", ["source"], registry=r)
        self.lag_tx = Gauge("migrator_sync_lag_transactions", "GTID transactions behind the source", ["source"], registry=r)
        self.lag_events = Gauge("migrator_sync_lag_events", "Binlog events read, not yet checkpointed", ["source"], registry=r)
        self.rows = Counter("migrator_sync_rows_applied", "Row changes applied", ["source", "kind"], registry=r)
        self.retries = Counter("migrator_sync_retries", "Transient failures retried", ["source"], registry=r)
        self.errors = Counter("migrator_sync_errors", "Errors that stopped a source", ["source"], registry=r)
        self.caught_up = Gauge("migrator_sync_caught_up", "1 when caught up with the source", ["source"], registry=r)
        self.xa_prepared = Gauge("migrator_sync_xa_prepared", "Prepared XA transactions holding the checkpoint",
                                 ["source"], registry=r)
        for s in sources:  # every series exists from the start, at zero
            for kind in ("insert", "update", "delete"):
                self.rows.labels(s, kind)
            self.retries.labels(s)
            self.errors.labels(s)
            self.lag_seconds.labels(s)
        self._server: Any = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def emit(self, event: Any) -> None:
        """A Progress sink (migrator.progress): SyncProgress events move the series."""
        if not isinstance(event, SyncProgress):
            return
        source = event.source
        for kind, n in (event.rows or {}).items():
            self.rows.labels(source, kind).inc(n)
        if event.retry:
            self.retries.labels(source).inc()
        if event.error:
            self.errors.labels(source).inc()
        cp = event.checkpoint
        if cp is not None:
            line = status_line(cp)
            self.lag_seconds.labels(source).set(line["lag_seconds"])
            self.caught_up.labels(source).set(1 if event.caught_up else 0)
            self.lag_events.labels(source).set(event.pending_events or 0)
            self.xa_prepared.labels(source).set(len(cp.xa_prepared))
            dist = gtid_distance(cp.position.gtid, cp.head.gtid if cp.head else "", cp.position.flavor)
            if dist is not None:
                self.lag_tx.labels(source).set(dist)
