"""The Grafana dashboard: structure, datasource templating, and every query checked."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_catalog import DEPLOY, METRICS, metric_series_names, promql_metric_names, require_tool

DASHBOARD = DEPLOY / "grafana" / "stemedb-dashboard.json"
REQUIRED_PANELS = {
    "Write rate",
    "WAL fsync latency",
    "Group-commit size",
    "Ingest lag (records)",
    "Ingest lag (seconds)",
    "Applied LSN vs durable LSN",
    "gRPC errors by code",
    "WAL volume free",
    "Verifiable log: tree size and checkpoint age",
    "Lattice: resolution changes by lens",
    "Lattice: contested slots",
    "Lattice: re-derivation progress",
    "Gateway: request rate by route and status",
    "Gateway: latency p50 and p99",
    "Gateway: backend errors and refused bodies",
}
# Each row and the metrics its panels must show (beside the catalog-wide check below).
ROW_METRICS = {
    "Lattice": {
        "stemedb_lattice_resolution_changes_total",
        "stemedb_lattice_contested_slots",
        "stemedb_lattice_rederive_progress_ratio",
    },
    "Gateway": {
        "stemedb_gateway_http_requests_total",
        "stemedb_gateway_http_request_duration_seconds_bucket",
        "stemedb_gateway_backend_errors_total",
    },
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Grafana's interval variables, given the values a panel would use.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return value


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def expand(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unexpanded variable in {expr}"
    return expr


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    titles = [p["title"] for p in panels(dashboard)]
    assert set(titles) >= REQUIRED_PANELS
    assert len(titles) == len(set(titles))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    # No data source is pinned anywhere by uid.
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', DASHBOARD.read_text()))
    assert uids <= {"${datasource}", "-- Grafana --", dashboard["uid"]}


def test_queries_use_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    known = metric_series_names()
    used: set[str] = set()
    for title, expr in exprs(dashboard):
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= known, f"{title}: unknown {names - known}"
        used |= names
    # Every stemedb_ metric is on the dashboard somewhere.
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert {n for n in METRICS if n.startswith("stemedb_")} <= bases


def test_metric_name_extraction() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, grpc_code) (rate(grpc_server_handling_seconds_bucket"
        '{job=~"a|b", grpc_method!="Get"}[5m]))) / on (instance) group_left stemedb_wal_last_lsn'
        " > 1e9 and ignoring (kind) up offset 5m unless absent(stemedb_ingestor_halted)"
    )
    assert promql_metric_names(expr) == {
        "grpc_server_handling_seconds_bucket",
        "stemedb_wal_last_lsn",
        "up",
        "stemedb_ingestor_halted",
    }


def test_queries_are_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus (the Makefile does it in CI)")
    records = [
        {"record": f"dashboard:query_{i}", "expr": expand(expr)}
        for i, (_, expr) in enumerate(exprs(dashboard))
    ]
    rules = tmp_path / "dashboard_rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout


def rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The panels under each row, in the dashboard's order (rows are not collapsed)."""
    out: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
            out[current] = []
        else:
            out.setdefault(current, []).append(panel)
    return out


def test_lattice_and_gateway_rows(dashboard: dict[str, Any]) -> None:
    by_row = rows(dashboard)
    for row, wanted in ROW_METRICS.items():
        assert row in by_row, f"no {row} row"
        queries = [t["expr"] for p in by_row[row] for t in p["targets"]]
        used = {n for q in queries for n in promql_metric_names(q)}
        assert wanted <= used, f"{row} row lacks {wanted - used}"
    gateway = [t["expr"] for p in by_row["Gateway"] for t in p["targets"]]
    assert all('job="stemedb-gateway"' in e for e in gateway), "gateway panels select its job"
    # Request rate by route and status; latency at p50 and p99.
    assert any("by (route, code)" in e for e in gateway)
    assert any(e.startswith("histogram_quantile(0.5,") for e in gateway)
    assert any(e.startswith("histogram_quantile(0.99,") for e in gateway)


def test_catalog_names_are_what_the_lattice_and_the_gateway_export(tmp_path: Path) -> None:
    """The catalog (and so the dashboard) uses the names the real collectors register."""
    from prometheus_client import CollectorRegistry, generate_latest

    from stemedb.gateway._metrics import GatewayMetrics
    from stemedb.ingestor._db import StoreDb
    from stemedb.ingestor._lattice_metrics import LatticeCollector
    from stemedb.ingestor._rederive import lattice_progress_gauge

    registry = CollectorRegistry()
    GatewayMetrics(registry)
    lattice_progress_gauge(registry)
    db = StoreDb(tmp_path / "db")
    try:
        registry.register(LatticeCollector(db))
        text = generate_latest(registry).decode()
    finally:
        db.close()
    exported = set(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M))
    kinds = {name: kind for name, kind in exported}
    for name, kind in METRICS.items():
        if not name.startswith(("stemedb_lattice_", "stemedb_gateway_")):
            continue
        assert kinds.get(name) == kind, f"{name}: exported as {kinds.get(name)}"
    prefixed = {n for n in kinds if n.startswith(("stemedb_lattice_", "stemedb_gateway_"))}
    assert prefixed <= set(METRICS), f"exported but not in the catalog: {prefixed - set(METRICS)}"
