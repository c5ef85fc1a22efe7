"""build_plan: read every source (in parallel, one connection each), the target's capabilities,
and turn them into a Plan: tables with keys, chunks and rewritten DDL, routes and findings.

An unreachable source does not stop the fleet's plan: it becomes a blocking finding, so a DBA
sees every problem of a 300-instance fleet in one run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pymysql

from .. import __version__
from ..db import connect, describe_error, qualified, query, scalar, session
from ..endpoint import Endpoint
from ..errors import ConfigError, MigratorError
from ..keys import column_list, compare_sql, in_sql, order_sql
from ..schema.rewrite import rewrite_create_table
from ..schema.targets import TargetCaps, probe_target_caps
from ..sync.cascade import source_foreign_keys
from . import preflight
from .chunking import DEFAULT_CHUNK_ROWS, choose_key, compute_chunks, key_bounds, unchunkable_columns, unique_keys
from .foreign_keys import foreign_key_findings, foreign_key_graph, retarget_references
from .introspect import SourceCatalog, TableInfo, matches, read_catalog
from .keycollation import (
    KEY_COLLATIONS,
    forced_collations_with_references,
    key_collation_findings,
    merge_collation_findings,
)
from .model import Change, Column, Finding, Plan, Route, SourcePlan, TablePlan, TargetPlan
from .routes import KeyRange, add_source_column, align_auto_increment, collision_findings, merge_groups, parse_route, route_target, \
    shape_findings, source_column_length

log = logging.getLogger(__name__)
DEFAULT_PARALLEL = 8


@dataclass
class PlanOptions:
    includes: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    source_column: str | None = None
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    parallel: int = DEFAULT_PARALLEL
    copy_only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    key_collation: str = "rewrite"  # "bin": unique keys' text columns whose collation changes -> <charset>_bin


@dataclass
class SourceResult:
    endpoint: Endpoint
    catalog: SourceCatalog | None = None
    tables: list[TablePlan] = field(default_factory=list)
    infos: dict[str, TableInfo] = field(default_factory=dict)  # TablePlan.id -> catalog entry
    error: str | None = None
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)  # probed while the source's connection was open


@dataclass
class TargetInfo:
    engine: str
    version: str
    caps: TargetCaps


def build_plan(
    sources: Sequence[Endpoint],
    target: Endpoint,
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    routes: Sequence[str | Route] = (),
    source_column: str | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    parallel: int = DEFAULT_PARALLEL,
    copy_only: Sequence[str] = (),
    skip: Sequence[str] = (),
    key_collation: str = "rewrite",
    name: str = "",
    on_source_done: Callable[[str, float], None] | None = None,
) -> Plan:
    """The plan of moving `sources` into `target`. Raises ConfigError on bad options and
    TargetError when the target cannot be read; source problems become findings."""
    if chunk_rows < 1:
        raise ConfigError("--chunk-rows must be at least 1")
    if parallel < 1:
        raise ConfigError("--parallel must be at least 1")
    if key_collation not in KEY_COLLATIONS:
        raise ConfigError(f"--key-collation must be one of {', '.join(KEY_COLLATIONS)}")
    if source_column is not None and not source_column.strip():
        raise ConfigError("--with-source-column needs a column name, e.g. __source")
    opts = PlanOptions(
        includes=list(includes), excludes=list(excludes),
        routes=[r if isinstance(r, Route) else parse_route(r, source_column) for r in routes],
        source_column=source_column, chunk_rows=chunk_rows, parallel=parallel,
        copy_only=list(copy_only), skip=list(skip), key_collation=key_collation,
    )
    tgt = read_target(target)

    def one(ep: Endpoint) -> SourceResult:
        result = plan_source(ep, tgt, opts)
        if on_source_done:
            on_source_done(ep.name or ep.label, result.seconds)
        return result

    with ThreadPoolExecutor(max_workers=min(parallel, max(1, len(sources)))) as pool:
        results = list(pool.map(one, sources))

    tables = [tp for r in results for tp in r.tables]
    infos = {k: v for r in results for k, v in r.infos.items()}
    findings: list[Finding] = []
    findings += apply_merges(tables, infos, opts, {r.endpoint.name or r.endpoint.label: r.endpoint for r in results},
                             tgt.caps)
    fks = foreign_key_graph(tables, infos)
    retarget_references(tables, fks, tgt.engine)
    findings += foreign_key_findings(tables, fks)
    fed = Counter(t.target_name for t in tables if t.mode != "skip")
    merged = {name for name, n in fed.items() if n > 1}
    for r in results:
        findings += source_findings(r, tgt, opts)
        instance = r.endpoint.name or r.endpoint.label
        findings += preflight.cascade_findings(instance, source_foreign_keys(fks, tables, instance), r.tables, merged)
    return Plan(
        name=name,
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        migrator_version=__version__,
        target=TargetPlan(url=target.safe_url(), engine=tgt.engine, version=tgt.version),  # type: ignore[arg-type]
        sources=[source_plan(r) for r in results],
        includes=opts.includes,
        excludes=opts.excludes,
        routes=opts.routes,
        tables=tables,
        findings=findings,
        foreign_keys=fks,
    )


# ---------------------------------------------------------------- target


def read_target(target: Endpoint) -> TargetInfo:
    engine = target.engine if target.engine != "mariadb" else "mysql"
    with session(target, "target") as conn:
        version = str(scalar(conn, "SELECT VERSION()"))
        caps = probe_target_caps(conn, engine)
    return TargetInfo(engine=engine, version=version, caps=caps)


# ---------------------------------------------------------------- one source


def plan_source(ep: Endpoint, tgt: TargetInfo, opts: PlanOptions) -> SourceResult:
    """Everything read from one source, over one connection."""
    t0 = time.monotonic()
    result = SourceResult(endpoint=ep)
    try:
        conn = connect(ep, "source", attempts=3)
    except MigratorError as exc:
        result.error = str(exc)
        return result
    try:
        catalog = read_catalog(conn, ep, opts.includes, opts.excludes)
        result.catalog = catalog
        forced = (forced_collations_with_references(catalog.tables, tgt.caps) if opts.key_collation == "bin"
                  else {})
        for info in catalog.tables:
            tp = table_plan(conn, ep.name or ep.label, catalog.facts.flavor, info, tgt, opts,
                            forced.get((info.database, info.name), {}))
            result.tables.append(tp)
            result.infos[tp.id] = info
            if tp.mode != "skip":
                result.findings += key_collation_findings(conn, ep, ep.name or ep.label, info, tgt.caps,
                                                          opts.key_collation)
    except pymysql.err.MySQLError as exc:
        result.error = describe_error(ep, "source", exc)
    finally:
        conn.close()
    result.seconds = time.monotonic() - t0
    return result


def table_mode(opts: PlanOptions, database: str, table: str) -> str:
    if any(matches(p, database, table) for p in opts.skip):
        return "skip"
    if any(matches(p, database, table) for p in opts.copy_only):
        return "copy-only"
    return "copy+sync"


def table_plan(conn: pymysql.connections.Connection, source: str, flavor: str, info: TableInfo, tgt: TargetInfo,
               opts: PlanOptions, forced: dict[str, str] | None = None) -> TablePlan:
    """forced: column collations --key-collation bin gives the target (forced_collations_with_references)."""
    key, kind = choose_key(info)
    mode = table_mode(opts, info.database, info.name)
    tdb, ttable, _ = route_target(opts.routes, info.database, info.name)
    rows, chunks = info.rows, []
    if mode != "skip":
        chunks, rows, _method = compute_chunks(conn, info, key, opts.chunk_rows)
    target_ddl, changes = rewrite(info, tgt, flavor, tdb, ttable, forced or {})
    return TablePlan(
        source=source, database=info.database, table=info.name, target_database=tdb, target_table=ttable,
        columns=info.columns, key=key, key_kind=kind, mode=mode, estimated_rows=rows,  # type: ignore[arg-type]
        estimated_bytes=info.bytes, chunks=chunks, source_ddl=info.ddl, target_ddl=target_ddl, changes=changes,
        shape_fingerprint=shape_fingerprint(info.columns, key),
    )


def rewrite(info: TableInfo, tgt: TargetInfo, flavor: str, tdb: str, ttable: str,
            column_collations: dict[str, str] | None = None) -> tuple[str, list[Change]]:
    if info.ddl_error:
        return "", [Change(rule="source.show-create", severity="blocking",
                           reason=f"SHOW CREATE TABLE failed: {info.ddl_error}")]
    try:
        result = rewrite_create_table(info.ddl, tgt.engine, flavor, tgt.caps, column_collations)
    except MigratorError as exc:
        return "", [Change(rule="rewrite.failed", severity="blocking", reason=str(exc))]
    ddl, changes = result.target_ddl, list(result.changes)
    if ttable != info.name:
        ddl, change = rename_table(ddl, ttable)
        changes.append(change)
    return ddl, changes


def rename_table(ddl: str, new_name: str) -> tuple[str, Change]:
    """Route to another table name: rename in the CREATE TABLE (parsed with sqlglot)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(ddl, read="mysql")
    except ParseError:
        tree = None
    table = tree.find(exp.Table) if isinstance(tree, exp.Create) else None
    if table is None:
        return ddl, Change(rule="route.rename", severity="blocking",
                           reason=f"cannot rename the table to {new_name} in its DDL: edit the target DDL by hand")
    table.set("this", exp.to_identifier(new_name, quoted=True))
    return tree.sql(dialect="mysql", pretty=True), Change(rule="route.rename", severity="rewrite",
                                                          reason=f"routed: created as {new_name}", after=new_name)


def shape_fingerprint(columns: Sequence[Column], key: Sequence[str]) -> str:
    """Hash of the source shape copy/sync rely on: column names, types, nullability, key."""
    body = [[c.name, c.column_type.lower(), c.nullable, c.generated] for c in columns] + [list(key)]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]


def source_plan(r: SourceResult) -> SourcePlan:
    ep = r.endpoint
    facts = r.catalog.facts if r.catalog else None
    return SourcePlan(
        name=ep.name or ep.label, url=ep.safe_url(), host=ep.host, port=ep.port,
        version=facts.version if facts else "",
        flavor=(facts.flavor if facts else ("mariadb" if ep.engine == "mariadb" else "mysql")),  # type: ignore[arg-type]
        server_id=facts.server_id if facts else None,
        gtid_mode=facts.gtid_enabled if facts else False,
    )


# ---------------------------------------------------------------- findings


def source_findings(r: SourceResult, tgt: TargetInfo, opts: PlanOptions) -> list[Finding]:
    name = r.endpoint.name or r.endpoint.label
    if r.error or r.catalog is None:
        return [Finding(check="source.unreachable", severity="blocking", instance=name,
                        message=r.error or "not read",
                        fix="make the instance reachable with the given user, or leave it out of the fleet")]
    cat = r.catalog
    active = [tp for tp in r.tables if tp.mode != "skip"]
    needs_sync = any(tp.mode == "copy+sync" for tp in active)
    out: list[Finding] = []
    if not cat.tables:
        out.append(Finding(check="source.no-tables", severity="warning", instance=name,
                           message="no table of this instance matches the include/exclude patterns",
                           fix="check --include / --exclude"))
    out += preflight.binlog_findings(name, cat.facts, needs_sync)
    out += preflight.privilege_findings(name, cat.facts, [r.infos[tp.id] for tp in active], needs_sync)
    for tp in r.tables:
        info = r.infos[tp.id]
        if tp.mode == "skip":
            out.append(Finding(check="table.skipped", severity="info", instance=name, database=tp.database,
                               table=tp.table, message="skipped as asked (--skip): not created, copied or synced"))
            continue
        finding = preflight.key_finding(tp)
        if finding:
            out.append(finding)
        odd = unchunkable_columns(info, tp.key)
        if odd:
            out.append(Finding(
                check="chunk.whole-table", severity="info", instance=name, database=tp.database, table=tp.table,
                message=f"key column(s) {', '.join(odd)} cannot bound chunks exactly (ENUM/SET/float/BIT order): "
                        "the table is read as one chunk", fix="fine for small tables; for a big one add an integer key"))
        finding = preflight.charset_finding(name, info, tp.key, set(tgt.caps.collations))
        if finding:
            out.append(finding)
        out += preflight.index_findings(name, info, tgt.engine, tgt.caps.fulltext, tgt.caps.spatial)
    out += r.findings
    out += preflight.object_findings(name, cat.objects)
    return out


# ---------------------------------------------------------------- shard merges


def apply_merges(tables: list[TablePlan], infos: dict[str, TableInfo], opts: PlanOptions,
                 endpoints: dict[str, Endpoint], caps: TargetCaps | None = None) -> list[Finding]:
    """Shape checks, key-collision checks (with real probes) and the source column."""
    findings: list[Finding] = []
    groups = merge_groups(tables)
    for target_name, members in groups.items():
        findings += shape_findings(target_name, members)
        if not any(route_target(opts.routes, tp.database, tp.table)[2] for tp in members):
            findings.append(Finding(
                check="route.implicit-merge", severity="warning", database=members[0].target_database,
                table=members[0].target_table,
                message=f"{len(members)} source tables ({members[0].id}, {members[1].id}, ...) have the same name "
                        f"and all land in {target_name} without a --route",
                fix="intended? say so with --route (and --with-source-column); else --route them to different "
                    "target databases"))
        if opts.source_column:
            length = source_column_length(members)
            for tp in members:
                tp.source_column = opts.source_column
                tp.target_ddl, change = add_source_column(tp.target_ddl, opts.source_column, length)
                tp.changes.append(change)
        align_auto_increment(members)
    probes = ProbeConnections(endpoints)
    try:
        for target_name, members in groups.items():
            ranges = {} if opts.source_column else probes.key_ranges(members, infos)
            findings += collision_findings(target_name, members, ranges, probes.probe)
            if caps is not None:
                findings += merge_collation_findings(target_name, members, infos, caps)
    finally:
        probes.close()
    return findings


class ProbeConnections:
    """Lazily opened source connections for the cross-shard probes (phase 2 of planning)."""

    def __init__(self, endpoints: dict[str, Endpoint]):
        self.endpoints = endpoints
        self.conns: dict[str, Any] = {}

    def conn(self, source: str):
        if source not in self.conns:
            self.conns[source] = connect(self.endpoints[source], "source", attempts=3)
        return self.conns[source]

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()

    def key_ranges(self, members: list[TablePlan], infos: dict[str, TableInfo]) -> dict[str, list[KeyRange]]:
        out: dict[str, list[KeyRange]] = {}
        for tp in members:
            for idx in unique_keys(infos[tp.id]):
                bounds = key_bounds(self.conn(tp.source), tp.database, tp.table, idx.columns)
                if bounds is not None:
                    out.setdefault(tp.id, []).append(KeyRange(tp.id, idx.name, list(idx.columns), *bounds))
        return out

    def probe(self, a: TablePlan, b: TablePlan, cols: list[str], low: tuple, high: tuple) -> tuple[int, Any]:
        """Keys of `a` within [low, high] (a sample) that also exist in `b`."""
        cl = column_list(cols)
        above, above_params = compare_sql(cols, ">=", low)
        below, below_params = compare_sql(cols, "<=", high)
        sample = query(
            self.conn(a.source),
            f"SELECT {cl} FROM {qualified(a.database, a.table)} WHERE {above} AND {below} "
            f"ORDER BY {order_sql(cols)} LIMIT 1000",
            above_params + below_params,
        )
        if not sample:
            return 0, None
        found = query(
            self.conn(b.source),
            f"SELECT {cl} FROM {qualified(b.database, b.table)} WHERE {in_sql(cols, sample)}",
            [v for key in sample for v in key],
        )
        example = found[0] if found else None
        if example is not None and len(cols) == 1:
            example = example[0]
        return len(found), example
