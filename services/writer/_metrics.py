"""The writer's Prometheus metrics (names fixed by DESIGN section 3 and deploy/)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from stemedb.runtime import log_event

if TYPE_CHECKING:
    from stemedb.writer._admission import AdmissionBudget
    from stemedb.writer._core import Appender
    from stemedb.writer._tree import LogTree

__all__ = ["WriterMetrics"]

_log = logging.getLogger("stemedb.writer")

# fdatasync on an SSD takes 0.2 to 5 ms; network volumes and a loaded disk reach 100 ms and
# more. Fine buckets below 10 ms separate a healthy disk from a struggling one.
_FSYNC_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
    0.512, 1.024, 2.048,
)  # fmt: skip
# Records per group commit: 1 when idle, up to thousands under load (powers of 4 up to the
# 20,000-record group bound).
_GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 20000)


class _VolumeCollector(Collector):
    """Free and total bytes of the filesystem that holds the WAL, read at scrape time."""

    def __init__(self, wal_dir: Path) -> None:
        self._dir = wal_dir

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            st = os.statvfs(self._dir)
        except OSError:
            return
        yield GaugeMetricFamily(
            "stemedb_wal_volume_free_bytes",
            "Bytes available to the writer on the filesystem holding the WAL.",
            value=st.f_bavail * st.f_frsize,
        )
        yield GaugeMetricFamily(
            "stemedb_wal_volume_size_bytes",
            "Total bytes of the filesystem holding the WAL.",
            value=st.f_blocks * st.f_frsize,
        )


class _SignaturesCollector(Collector):
    """Signatures submitted to ed25519 verification, read from the writer at scrape time."""

    def __init__(self, writer: Appender) -> None:
        self._writer = writer

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "stemedb_writer_signatures_verified",
            "Signatures submitted to ed25519 verification (trusted-key refusals verify none).",
            value=self._writer.signatures_verified,
        )


class WriterMetrics:
    """Writer metrics; also the WAL's observer (group commits and fsync latency)."""

    def __init__(self, registry: CollectorRegistry, wal_dir: Path) -> None:
        self.records = Counter(
            "stemedb_writer_records",
            "Records received, by kind and outcome (ok, invalid, denied, error).",
            ["kind", "outcome"],
            registry=registry,
        )
        for kind in ("assertion", "vote", "epoch"):
            for outcome in ("ok", "invalid", "denied", "error"):
                self.records.labels(kind, outcome)
        self.fsync_seconds = Histogram(
            "stemedb_wal_fsync_duration_seconds",
            "Latency of the WAL's fdatasync per group commit.",
            buckets=_FSYNC_BUCKETS,
            registry=registry,
        )
        self.group_records = Histogram(
            "stemedb_wal_group_commit_records",
            "Records made durable by one group commit (one write and one fdatasync).",
            buckets=_GROUP_BUCKETS,
            registry=registry,
        )
        self.bytes_written = Counter(
            "stemedb_wal_bytes_written",
            "Bytes written to WAL segments (frames, headers and padding).",
            registry=registry,
        )
        self.slow_fsyncs = Counter(
            "stemedb_wal_slow_fsyncs",
            "Group commits whose fdatasync took longer than --fsync-warn-seconds.",
            registry=registry,
        )
        self.retention_ignored = Gauge(
            "stemedb_wal_retention_ignored_consumers",
            "Consumers whose stale checkpoint the last retention pass ignored.",
            registry=registry,
        )
        self.last_lsn = Gauge(
            "stemedb_wal_last_lsn", "Highest LSN written to the WAL.", registry=registry
        )
        self.durable_lsn = Gauge(
            "stemedb_wal_durable_lsn",
            "Highest LSN made durable (published in WATERMARK).",
            registry=registry,
        )
        self.inflight = Gauge(
            "stemedb_writer_inflight_requests",
            "Append requests being processed.",
            registry=registry,
        )
        self.inflight_records = Gauge(
            "stemedb_writer_inflight_records",
            "Records of the append requests being processed (bound: --inflight-records-max).",
            registry=registry,
        )
        self.inflight_bytes = Gauge(
            "stemedb_writer_inflight_bytes",
            "Raw bytes of the append requests being processed (bound: --inflight-bytes-max).",
            registry=registry,
        )
        self.refused = Counter(
            "stemedb_writer_admission_refused",
            "Requests refused with RESOURCE_EXHAUSTED by an admission bound, by bound.",
            ["bound"],
            registry=registry,
        )
        for bound in ("inflight_requests_max", "inflight_records_max", "inflight_bytes_max"):
            self.refused.labels(bound)
        self.wal_fatal = Gauge(
            "stemedb_writer_wal_fatal",
            "1 once the WAL is unusable (a failed write or fdatasync): appends fail until the "
            "writer is restarted; the log says why.",
            registry=registry,
        )
        # The meter: per outcome, never per agent (bounded label sets; DESIGN section 12).
        self.meter_requests = Counter(
            "stemedb_writer_meter_requests",
            "Metered append requests by outcome: admitted, over_value (FAILED_PRECONDITION), "
            "over_budget (RESOURCE_EXHAUSTED with RetryInfo), over_burst (can never pass).",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("admitted", "over_value", "over_budget", "over_burst"):
            self.meter_requests.labels(outcome)
        self.meter_units = Counter(
            "stemedb_writer_meter_units",
            "Cost units charged to admitted requests.",
            registry=registry,
        )
        self.meter_agents = Gauge(
            "stemedb_writer_meter_agents",
            "Agents whose token bucket the writer holds now (bound: the config's agents_max).",
            registry=registry,
        )
        self.meter_reloads = Counter(
            "stemedb_writer_meter_reloads",
            "Meter configuration reloads on SIGHUP, by result (ok, or failed: the old one stays).",
            ["result"],
            registry=registry,
        )
        for result in ("ok", "failed"):
            self.meter_reloads.labels(result)
        self.log_tree_size = Gauge(
            "stemedb_log_tree_size",
            "Tree size of the last signed checkpoint (CHECKPOINT in the WAL directory).",
            registry=registry,
        )
        self.log_checkpoint_age = Gauge(
            "stemedb_log_checkpoint_age_seconds",
            "Seconds since the last checkpoint was signed and written (or since start).",
            registry=registry,
        )
        self.log_tree_failed = Gauge(
            "stemedb_log_tree_failed",
            "1 once the log tree stopped (the WAL could not be read back): no more checkpoints "
            "until the writer is restarted; the log says why.",
            registry=registry,
        )
        self._registry = registry
        registry.register(_VolumeCollector(wal_dir))

    def bind_log_tree(self, tree: LogTree) -> None:
        """Read the signed checkpoint's size and age at scrape time."""
        self.log_tree_size.set_function(lambda: float(tree.status.tree_size))
        self.log_checkpoint_age.set_function(
            lambda: max(0.0, time.time() - tree.status.checkpoint_unix_seconds)
        )
        self.log_tree_failed.set_function(lambda: 0.0 if tree.status.failure is None else 1.0)

    def bind_admission(self, budget: AdmissionBudget, writer: Appender) -> None:
        """Read the in-flight figures and the WAL's state from the pipeline at scrape time."""
        self.inflight.set_function(lambda: float(budget.requests))
        self.inflight_records.set_function(lambda: float(budget.records))
        self.inflight_bytes.set_function(lambda: float(budget.bytes))
        self.wal_fatal.set_function(lambda: 0.0 if writer.wal_failure is None else 1.0)
        self._registry.register(_SignaturesCollector(writer))

    def bind_lsns(self, last: Callable[[], int], durable: Callable[[], int]) -> None:
        self.last_lsn.set_function(lambda: float(last()))
        self.durable_lsn.set_function(lambda: float(durable()))

    # WalObserver
    def on_commit(
        self, records: int, bytes_written: int, fsync_seconds: float, durable_lsn: int
    ) -> None:
        self.fsync_seconds.observe(fsync_seconds)
        self.group_records.observe(records)
        self.bytes_written.inc(bytes_written)

    def on_retention_ignored(self, consumers: list[str]) -> None:
        self.retention_ignored.set(len(consumers))

    def on_slow_fsync(self, fsync_seconds: float) -> None:
        self.slow_fsyncs.inc()
        log_event(_log, logging.WARNING, "slow fsync", fsync_seconds=round(fsync_seconds, 6))
