"""What the deploy/ tests hold the artifacts to: metric names, env names, tools, PromQL names."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
OPERATIONS_DOC = REPO / "docs" / "operations.md"

# Kubernetes versions the manifests are validated against: the oldest we support
# (persistentVolumeClaimRetentionPolicy is GA from 1.32) and a current one.
K8S_VERSIONS = ("1.32.0", "1.37.0")

# The metrics the services export (DESIGN section 3; the writer and ingestor issues).
METRICS: dict[str, str] = {
    "stemedb_writer_records_total": "counter",
    "stemedb_wal_fsync_duration_seconds": "histogram",
    "stemedb_wal_group_commit_records": "histogram",
    "stemedb_wal_bytes_written_total": "counter",
    "stemedb_wal_last_lsn": "gauge",
    "stemedb_wal_durable_lsn": "gauge",
    "stemedb_wal_volume_free_bytes": "gauge",
    "stemedb_wal_volume_size_bytes": "gauge",
    "stemedb_writer_inflight_requests": "gauge",
    "stemedb_log_tree_size": "gauge",
    "stemedb_log_checkpoint_age_seconds": "gauge",
    "stemedb_log_tree_failed": "gauge",
    "stemedb_ingestor_applied_lsn": "gauge",
    "stemedb_ingestor_watermark_lsn": "gauge",
    "stemedb_ingestor_lag_records": "gauge",
    "stemedb_ingestor_lag_seconds": "gauge",
    "stemedb_ingestor_records_applied_total": "counter",
    "stemedb_ingestor_apply_batch_duration_seconds": "histogram",
    "stemedb_ingestor_halted": "gauge",
    "stemedb_ingestor_halt_info": "gauge",
    "stemedb_ingestor_ready": "gauge",
    "stemedb_ingestor_min_lsn_waiters": "gauge",
    "stemedb_ingestor_db_size_bytes": "gauge",
    "stemedb_ingestor_log_tree_size": "gauge",
    "stemedb_ingestor_log_checkpoint_lag_records": "gauge",
    "stemedb_ingestor_log_checkpoint_mismatch": "gauge",
    # The Lattice, on the ingestor (services/ingestor/_lattice_metrics.py, _rederive.py).
    "stemedb_lattice_slots": "gauge",
    "stemedb_lattice_contested_slots": "gauge",
    "stemedb_lattice_resolution_changes_total": "counter",
    "stemedb_lattice_rederive_progress_ratio": "gauge",
    # The gateway (services/gateway/_metrics.py), job stemedb-gateway.
    "stemedb_gateway_http_requests_total": "counter",
    "stemedb_gateway_http_request_duration_seconds": "histogram",
    "stemedb_gateway_backend_errors_total": "counter",
    "stemedb_gateway_request_bodies_refused_total": "counter",
    "grpc_server_started_total": "counter",
    "grpc_server_handled_total": "counter",
    "grpc_server_handling_seconds": "histogram",
}
JOBS = ("stemedb-writer", "stemedb-ingestor")

# Environment variables the services read, by container.
WRITER_ENV = {
    "STEMEDB_WAL_DIR",
    "STEMEDB_LISTEN",
    "STEMEDB_METRICS_LISTEN",
    "STEMEDB_REQUIRE_SIGNATURES",
    "STEMEDB_TRUSTED_KEYS",
}
INGESTOR_ENV = {
    "STEMEDB_WAL_DIR",
    "STEMEDB_DB_DIR",
    "STEMEDB_LISTEN",
    "STEMEDB_METRICS_LISTEN",
    "STEMEDB_NAME",
}


def metric_series_names() -> set[str]:
    """Every series name a query may use: histograms also as _bucket, _sum and _count."""
    names = set()
    for name, kind in METRICS.items():
        names.add(name)
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return names


def missing(message: str) -> None:
    """Something a test needs is not there: skip locally, fail in CI (CI is set there)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str, hint: str) -> str:
    """The path of a tool; without it, skip locally and fail in CI."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found: {hint}")
        raise AssertionError("unreachable")
    return path


# PromQL words that are not metric names.
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(?![\w:])(\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (not functions, labels, keywords or durations)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = _GROUPING.sub("", text)
    text = re.sub(r"\b\d[\w.]*", "", text)  # numbers and durations such as 5m or 1e9
    names = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names
