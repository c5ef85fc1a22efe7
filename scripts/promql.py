"""The small PromQL subset examples/grafana-dashboard.json uses, evaluated over scraped /metrics.

Used by scripts/dashboard_picture.py to draw the dashboard's panels from a real run without a
Prometheus or Grafana (and by tests/test_dashboard_queries.py: every dashboard query parses).

Supported: metric selectors with `{label="value", ...}` matchers (= and != only); `rate(m[d])`
and `increase(m[d])` (simplified: the first and last sample inside the window, no
extrapolation, no counter-reset handling); `clamp_min(e, n)`; the aggregations sum, min, max,
avg, count, `topk(k, e)` and `quantile(q, e)` with `by (labels)` before or after the
parentheses; numbers; `+ - * /` between a vector and a number or between two vectors with the
same label sets; parentheses. Durations: s, m, h, and Grafana's `$__rate_interval` (given to
`evaluate`; Grafana makes it 4 scrape intervals or more).

A `History` is a list of scrapes (time in seconds, samples); a sample is (metric name, labels,
value). `evaluate(expr, history, t)` returns an instant vector {labels: value} at time t, where
the scrape at t is the latest one at or before t (a series absent from it is absent: a process
that ended has no series, as with Prometheus' stale markers).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

Labels = frozenset  # frozenset of (name, value) pairs
Sample = tuple[str, dict[str, str], float]
Vector = dict[frozenset, float]

AGGREGATIONS = {"sum", "min", "max", "avg", "count", "topk", "quantile"}
RANGE_FUNCTIONS = {"rate", "increase"}
TOKEN = re.compile(r"""\s*(?:
    (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<duration>\[\d+[smh]\])
  | (?P<name>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<op>!=|[-+*/(),{}=])
)""", re.VERBOSE)


class PromQLError(ValueError):
    pass


@dataclass
class Scrape:
    t: float
    samples: list[Sample]


@dataclass
class History:
    scrapes: list[Scrape] = field(default_factory=list)

    def add(self, t: float, samples: list[Sample]) -> None:
        self.scrapes.append(Scrape(t, samples))

    def at(self, t: float) -> Scrape | None:
        last = None
        for s in self.scrapes:
            if s.t > t:
                break
            last = s
        return last

    def window(self, t: float, seconds: float) -> list[Scrape]:
        return [s for s in self.scrapes if t - seconds < s.t <= t]


# ---- parsing: expressions become small tuples
def tokenize(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} in {expr!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Parser:
    def __init__(self, expr: str):
        self.expr = expr
        self.tokens = tokenize(expr)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str] | None:
        return self.tokens[self.i + k] if self.i + k < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            raise PromQLError(f"expected {value or kind} at token {self.i} of {self.expr!r}, found {tok}")
        self.i += 1
        return tok[1]

    def parse(self):
        node = self.additive()
        if self.peek() is not None:
            raise PromQLError(f"unexpected {self.peek()} in {self.expr!r}")
        return node

    def additive(self):
        node = self.multiplicative()
        while self.peek() and self.peek()[1] in "+-":
            op = self.take()
            node = ("binop", op, node, self.multiplicative())
        return node

    def multiplicative(self):
        node = self.primary()
        while self.peek() and self.peek()[1] in "*/":
            op = self.take()
            node = ("binop", op, node, self.primary())
        return node

    def labels_list(self) -> list[str]:
        self.take("(")
        names = []
        while self.peek()[1] != ")":
            names.append(self.take(kind="name"))
            if self.peek()[1] == ",":
                self.take(",")
        self.take(")")
        return names

    def primary(self):
        tok = self.peek()
        if tok is None:
            raise PromQLError(f"{self.expr!r} ends too early")
        kind, value = tok
        if kind == "number":
            self.take()
            return ("number", float(value))
        if value == "(":
            self.take("(")
            node = self.additive()
            self.take(")")
            return node
        if kind != "name":
            raise PromQLError(f"unexpected {value!r} in {self.expr!r}")
        self.take()
        if value in AGGREGATIONS and self.peek() and self.peek()[1] in ("(", "by"):
            by = None
            if self.peek()[1] == "by":
                self.take("by")
                by = self.labels_list()
            self.take("(")
            param = None
            if value in ("topk", "quantile"):
                param = float(self.take(kind="number"))
                self.take(",")
            inner = self.additive()
            self.take(")")
            if self.peek() and self.peek()[1] == "by":
                self.take("by")
                by = self.labels_list()
            return ("agg", value, by, param, inner)
        if value in RANGE_FUNCTIONS:
            self.take("(")
            sel = self.selector(self.take(kind="name"))
            seconds = duration(self.take(kind="duration"))
            self.take(")")
            return ("range", value, sel, seconds)
        if value == "clamp_min":
            self.take("(")
            inner = self.additive()
            self.take(",")
            floor = float(self.take(kind="number"))
            self.take(")")
            return ("clamp_min", inner, floor)
        return self.selector(value)

    def selector(self, name: str):
        matchers = []
        if self.peek() and self.peek()[1] == "{":
            self.take("{")
            while self.peek()[1] != "}":
                label = self.take(kind="name")
                op = self.take()
                if op not in ("=", "!="):
                    raise PromQLError(f"matcher {op!r} is not supported ({self.expr!r})")
                matchers.append((label, op, self.take(kind="string")[1:-1]))
                if self.peek()[1] == ",":
                    self.take(",")
            self.take("}")
        return ("selector", name, tuple(matchers))


def duration(token: str) -> float:
    n, unit = int(token[1:-2]), token[-2]
    return n * {"s": 1, "m": 60, "h": 3600}[unit]


def parse(expr: str, rate_interval: float = 60.0):
    return Parser(expr.replace("$__rate_interval", f"{max(1, round(rate_interval))}s")).parse()


def metric_names(expr: str) -> set[str]:
    """Every metric a query reads."""
    names: set[str] = set()

    def walk(node) -> None:
        if node[0] == "selector":
            names.add(node[1])
        for child in node[1:]:
            if isinstance(child, tuple) and child and isinstance(child[0], str):
                walk(child)

    walk(parse(expr))
    return names


# ---- evaluation
def _matches(sample: Sample, sel) -> bool:
    _, name, matchers = sel
    if sample[0] != name:
        return False
    for label, op, value in matchers:
        if (sample[1].get(label, "") == value) != (op == "="):
            return False
    return True


def _select(scrape: Scrape | None, sel) -> Vector:
    if scrape is None:
        return {}
    return {frozenset(s[1].items()): s[2] for s in scrape.samples if _matches(s, sel)}


def _range(history: History, t: float, sel, seconds: float, fn: str) -> Vector:
    points: dict[frozenset, list[tuple[float, float]]] = {}
    for scrape in history.window(t, seconds):
        for labels, value in _select(scrape, sel).items():
            points.setdefault(labels, []).append((scrape.t, value))
    out: Vector = {}
    for labels, pts in points.items():
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            continue
        delta = max(0.0, pts[-1][1] - pts[0][1])
        out[labels] = delta / (pts[-1][0] - pts[0][0]) if fn == "rate" else delta
    return out


def _group(labels: frozenset, by: list[str] | None) -> frozenset:
    if not by:
        return frozenset()
    return frozenset((k, v) for k, v in labels if k in by)


def _quantile(q: float, values: list[float]) -> float:
    values = sorted(values)
    if not values:
        return math.nan
    rank = q * (len(values) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return values[lo] + (values[hi] - values[lo]) * (rank - lo)


def _aggregate(op: str, by: list[str] | None, param: float | None, vec: Vector) -> Vector:
    groups: dict[frozenset, list[tuple[frozenset, float]]] = {}
    for labels, value in vec.items():
        groups.setdefault(_group(labels, by), []).append((labels, value))
    out: Vector = {}
    for key, members in groups.items():
        values = [v for _, v in members]
        if op == "topk":
            for labels, value in sorted(members, key=lambda m: -m[1])[:int(param or 0)]:
                out[labels] = value  # topk keeps the series' own labels
            continue
        out[key] = {"sum": sum, "min": min, "max": max, "count": len,
                    "avg": lambda v: sum(v) / len(v),
                    "quantile": lambda v: _quantile(param or 0.0, v)}[op](values)
    return out


def _binop(op: str, left, right):
    def apply(a: float, b: float) -> float:
        if op == "/":
            return a / b if b else (math.nan if a == 0 else math.copysign(math.inf, a))
        return {"+": a + b, "-": a - b, "*": a * b}[op]

    if isinstance(left, float) and isinstance(right, float):
        return apply(left, right)
    if isinstance(left, float):
        return {k: apply(left, v) for k, v in right.items()}
    if isinstance(right, float):
        return {k: apply(v, right) for k, v in left.items()}
    return {k: apply(v, right[k]) for k, v in left.items() if k in right}


def evaluate_node(node, history: History, t: float):
    kind = node[0]
    if kind == "number":
        return node[1]
    if kind == "selector":
        return _select(history.at(t), node)
    if kind == "range":
        _, fn, sel, seconds = node
        return _range(history, t, sel, seconds, fn)
    if kind == "clamp_min":
        inner = evaluate_node(node[1], history, t)
        if isinstance(inner, float):
            return max(inner, node[2])
        return {k: max(v, node[2]) for k, v in inner.items()}
    if kind == "agg":
        _, op, by, param, inner = node
        vec = evaluate_node(inner, history, t)
        if isinstance(vec, float):
            raise PromQLError(f"{op}() of a number")
        return _aggregate(op, by, param, vec)
    if kind == "binop":
        _, op, left, right = node
        return _binop(op, evaluate_node(left, history, t), evaluate_node(right, history, t))
    raise PromQLError(f"unknown node {kind}")


def evaluate(expr: str, history: History, t: float, rate_interval: float = 60.0) -> Vector:
    """The instant vector of `expr` at time t (a number becomes one series without labels)."""
    value = evaluate_node(parse(expr, rate_interval), history, t)
    return {frozenset(): value} if isinstance(value, float) else value


def legend(fmt: str | None, labels: frozenset, fallback: str) -> str:
    """Grafana's legendFormat: {{label}} replaced by the series' label values."""
    if not fmt:
        return ", ".join(f"{k}={v}" for k, v in sorted(labels)) or fallback
    values = dict(labels)
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: values.get(m.group(1), ""), fmt)
