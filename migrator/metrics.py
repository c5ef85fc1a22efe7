"""Prometheus metrics of every long-running command on one registry (`--metrics-port`).

copy:     migrator_copy_rows_total{source}, migrator_copy_bytes_total{source},
          migrator_copy_rows_estimated{source}
verify:   migrator_verify_chunks_done, migrator_verify_chunks_total, migrator_verify_rows_checked,
          migrator_verify_differences
cutover:  migrator_cutover_step{step} (1 while that step runs), migrator_cutover_write_downtime_seconds
all:      migrator_stage_running{stage}, migrator_stage_started_timestamp_seconds{stage},
          migrator_throttled{stage,kind} (kind: source_load, target_stall, pause, replica_lag, other),
          migrator_paused{stage}
sync:     migrator_sync_* (migrator/sync/metrics.py), registered on the same registry.

`examples/grafana-dashboard.json` queries only these names (tests/test_metrics.py checks it
against a real run's /metrics).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from .errors import ConfigError

THROTTLE_KINDS = ("source_load", "target_stall", "pause", "replica_lag", "other")
_current: Metrics | None = None


def throttle_kind(reason: str) -> str:
    r = reason.lower()
    if r.startswith("paused") or " paused: " in r:
        return "pause"
    if "replica" in r:
        return "replica_lag"
    if "target write stall" in r:
        return "target_stall"
    if "busy" in r or "threads_running" in r:
        return "source_load"
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.copy_rows = Counter("migrator_copy_rows", "Rows copied (this run)", ["source"], registry=r)
        self.copy_bytes = Counter("migrator_copy_bytes", "Bytes copied (this run)", ["source"], registry=r)
        self.copy_rows_estimated = Gauge("migrator_copy_rows_estimated", "Rows to copy (estimate, incl. earlier runs)",
                                         ["source"], registry=r)
        # Gauges without labels are exported from the moment they are registered: registered only
        # when their stage starts (stage()), so a copy or sync process does not export a verify's
        # progress as 0 beside the verify's own (max() over processes would read 0 once it ended).
        self.verify_chunks_done = Gauge("migrator_verify_chunks_done", "Chunks verified", registry=None)
        self.verify_chunks_total = Gauge("migrator_verify_chunks_total", "Chunks to verify", registry=None)
        self.verify_rows = Gauge("migrator_verify_rows_checked", "Rows checksummed on the source", registry=None)
        self.verify_differences = Gauge("migrator_verify_differences", "Differences found by the last verify",
                                        registry=None)
        self.cutover_step = Gauge("migrator_cutover_step", "1 while this cutover step runs", ["step"], registry=r)
        self.cutover_downtime = Gauge("migrator_cutover_write_downtime_seconds", "Write downtime of the cutover",
                                      registry=None)
        self._own: dict[str, list[Gauge]] = {
            "verify": [self.verify_chunks_done, self.verify_chunks_total, self.verify_rows, self.verify_differences],
            "cutover": [self.cutover_downtime]}
        self.stage_running = Gauge("migrator_stage_running", "1 while this stage runs", ["stage"], registry=r)
        self.stage_started = Gauge("migrator_stage_started_timestamp_seconds", "When this stage started (unix time)",
                                   ["stage"], registry=r)
        self.throttled = Gauge("migrator_throttled", "1 while this stage is throttled for this kind of reason",
                               ["stage", "kind"], registry=r)
        self.paused = Gauge("migrator_paused", "1 while the pause file holds this stage", ["stage"], registry=r)
        self._server: Any = None
        self._cutover_step: str | None = None

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        try:
            self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise ConfigError(f"--metrics-port {port}: cannot serve metrics on {addr}:{port} ({exc.strerror}): "
                              "pick a free port") from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def stage(self, stage: str, running: bool) -> None:
        self.stage_running.labels(stage).set(1 if running else 0)
        if running:
            for gauge in self._own.pop(stage, []):
                self.registry.register(gauge)
            self.stage_started.labels(stage).set(time.time())
            for kind in THROTTLE_KINDS:
                self.throttled.labels(stage, kind).set(0)
            self.paused.labels(stage).set(0)

    def set_throttled(self, stage: str, reason: str | None) -> None:
        """`reason`: every current reason joined by "; " (as Throttle.notify passes them), or None."""
        kinds = {throttle_kind(part) for part in reason.split("; ")} if reason else set()
        for kind in THROTTLE_KINDS:
            self.throttled.labels(stage, kind).set(1 if kind in kinds else 0)
        self.paused.labels(stage).set(1 if "pause" in kinds else 0)

    def cutover(self, step: str | None) -> None:
        if self._cutover_step is not None:
            self.cutover_step.labels(self._cutover_step).set(0)
        self._cutover_step = step
        if step is not None:
            self.cutover_step.labels(step).set(1)


def start_metrics(port: int | None, addr: str = "127.0.0.1") -> Metrics:
    """The registry of this command (served on `port` when given); sync registers on it too."""
    global _current
    m = Metrics()
    if port is not None:
        m.serve(port, addr)
    _current = m
    return m


def current() -> Metrics | None:
    return _current


def stop_metrics() -> None:
    global _current
    if _current is not None:
        _current.stop()
    _current = None
