"""Prometheus scrape configs and alert rules: promtool-checked and unit-tested."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_catalog import (
    JOBS,
    OPERATIONS_DOC,
    PROMETHEUS,
    metric_series_names,
    promql_metric_names,
    require_tool,
)

ALERTS = {
    "StemedbWriterDown",
    "StemedbIngestorDown",
    "StemedbFsyncLatencyHigh",
    "StemedbIngestLagGrowing",
    "StemedbIngestorHalted",
    "StemedbWalDiskFilling",
    "StemedbGrpcErrorsHigh",
    "StemedbLogCheckpointStale",
    "StemedbLogCheckpointMismatch",
    "StemedbLatticeViewsNotReady",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "apt-get install prometheus (the Makefile does it in CI)")


def run_promtool(promtool: str, *args: str, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_config(promtool: str) -> None:
    out = run_promtool(promtool, "check", "config", "prometheus.yml")
    assert "SUCCESS" in out


def test_promtool_check_rules(promtool: str) -> None:
    out = run_promtool(promtool, "check", "rules", "alerts.yml")
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_promtool_test_rules(promtool: str) -> None:
    out = run_promtool(promtool, "test", "rules", "alerts_test.yml")
    assert "SUCCESS" in out


def test_local_scrape_config_targets_the_default_metrics_ports() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {"stemedb-writer": ["127.0.0.1:9101"], "stemedb-ingestor": ["127.0.0.1:9102"]}
    assert config["rule_files"] == ["alerts.yml"]


def test_kubernetes_scrape_config(promtool: str, tmp_path: Path) -> None:
    """Debian's promtool is built without Kubernetes discovery, so it checks everything else:
    the same file with each kubernetes_sd_configs swapped for an empty static_configs."""
    config = yaml.safe_load((PROMETHEUS / "prometheus-kubernetes.yml").read_text())
    port_names = {}
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        job["static_configs"] = [{"targets": []}]
        keep = {
            tuple(r["source_labels"]): r["regex"]
            for r in job["relabel_configs"]
            if r.get("action") == "keep"
        }
        port_names[job["job_name"]] = keep[("__meta_kubernetes_pod_container_port_name",)]
        assert keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == "stemedb"
    # The container port names in deploy/base and the replicas overlay.
    assert port_names == {"stemedb-writer": "metrics-writer", "stemedb-ingestor": "metrics-ingest"}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    run_promtool(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)


def test_alerts_are_the_documented_set_with_labels_and_annotations() -> None:
    names = set()
    for rule in rules():
        names.add(rule["alert"])
        assert rule["labels"]["severity"] in {"critical", "warning"}
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}
        assert annotations["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
    assert names == ALERTS


def test_alerts_use_only_exported_metrics() -> None:
    known = metric_series_names() | {"up"}  # `up` is Prometheus' own, per target
    for rule in rules():
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: unknown {used - known}"
        jobs = set(re.findall(r'job=~?"([^"]*)"', rule["expr"]))
        assert all(set(j.split("|")) <= set(JOBS) for j in jobs), rule["alert"]


def test_every_alert_is_tested_firing_and_silent() -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for test in doc["tests"]:
        for case in test["alert_rule_test"]:
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    assert fires == ALERTS
    assert silent == ALERTS
    severities = {
        (case["alertname"], alert["exp_labels"]["severity"])
        for test in doc["tests"]
        for case in test["alert_rule_test"]
        for alert in case.get("exp_alerts") or []
    }
    assert severities == {(r["alert"], r["labels"]["severity"]) for r in rules()}


def test_every_alert_has_a_runbook_section() -> None:
    text = OPERATIONS_DOC.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.*)$", text, flags=re.M)
    }
    for alert in ALERTS:
        assert alert.lower() in headings, f"docs/operations.md has no section {alert}"


def test_operations_doc_lists_every_metric() -> None:
    text = OPERATIONS_DOC.read_text()
    for name in metric_series_names():
        if name.endswith(("_bucket", "_sum", "_count")):
            continue
        assert f"`{name}`" in text, f"docs/operations.md does not list {name}"
