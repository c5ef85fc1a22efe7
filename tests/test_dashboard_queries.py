"""The PromQL subset scripts/dashboard_picture.py draws the dashboard with (scripts/promql.py):
every query of examples/grafana-dashboard.json parses, and the operators give Prometheus' answers
on hand-made scrapes (pure logic; the dashboard's metric names are checked against a real run in
tests/test_metrics.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scripts.promql import History, PromQLError, evaluate, legend, metric_names, parse

DASHBOARD = Path(__file__).resolve().parents[1] / "examples" / "grafana-dashboard.json"


def history() -> History:
    h = History()
    for t, a, b in ((0, 0, 0), (10, 100, 50), (20, 300, 50)):
        h.add(t, [("migrator_copy_rows_total", {"source": "a", "job": "copy"}, float(a)),
                  ("migrator_copy_rows_total", {"source": "b", "job": "copy"}, float(b)),
                  ("migrator_sync_lag_seconds", {"source": "a"}, 1.0),
                  ("migrator_sync_lag_seconds", {"source": "b"}, 3.0),
                  ("migrator_sync_lag_seconds", {"source": "c"}, 8.0)])
    return h


def one(vec) -> float:
    assert len(vec) == 1, vec
    return next(iter(vec.values()))


def test_every_dashboard_query_parses():
    doc = json.loads(DASHBOARD.read_text())
    for panel in doc["panels"]:
        for target in panel["targets"]:
            assert metric_names(target["expr"]), target["expr"]
            assert evaluate(target["expr"], History(), 0.0, rate_interval=5) == {}  # no scrape, no series


def test_rate_sum_by_and_binary_operators():
    h = history()
    by_source = evaluate("sum by (source) (rate(migrator_copy_rows_total[15s]))", h, 20)
    assert by_source == {frozenset({("source", "a")}): 20.0, frozenset({("source", "b")}): 0.0}
    assert one(evaluate("sum(rate(migrator_copy_rows_total[$__rate_interval]))", h, 20, rate_interval=30)) == 17.5
    assert one(evaluate("sum(increase(migrator_copy_rows_total[1m]))", h, 20)) == 350.0
    assert one(evaluate("sum(migrator_copy_rows_total) / clamp_min(sum(migrator_copy_rows_total), 1) * 100", h,
                        20)) == 100.0
    assert one(evaluate("sum(migrator_copy_rows_total) / clamp_min(count(migrator_copy_rows_total), 1)", h, 0)) == 0.0
    assert evaluate('migrator_copy_rows_total{source="b"}', h, 15) == {
        frozenset({("source", "b"), ("job", "copy")}): 50.0}  # the scrape at or before t


def test_quantile_topk_and_max_over_sources():
    h = history()
    assert one(evaluate("quantile(0.5, migrator_sync_lag_seconds)", h, 20)) == 3.0
    assert one(evaluate("quantile(0.95, migrator_sync_lag_seconds)", h, 20)) == pytest.approx(7.5)
    assert one(evaluate("max(migrator_sync_lag_seconds)", h, 20)) == 8.0
    top = evaluate("topk(2, migrator_sync_lag_seconds)", h, 20)
    assert sorted(dict(k)["source"] for k in top) == ["b", "c"]
    assert one(evaluate("sum(migrator_sync_lag_seconds) / 0", h, 20)) == math.inf  # as Prometheus: +Inf


def test_legend_and_errors():
    assert legend("{{stage}} {{kind}}", frozenset({("stage", "copy"), ("kind", "pause")}), "A") == "copy pause"
    assert legend(None, frozenset(), "A") == "A"
    with pytest.raises(PromQLError):
        parse("histogram_quantile(0.9, rate(x_bucket[1m]))")
    with pytest.raises(PromQLError):
        parse('x{a=~"b"}')
