"""The ingestor's Prometheus metrics (``stemedb_ingestor_*``), in a private registry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.ingestor._db import ReadCache
from stemedb.ingestor._state import ApplyState, HaltInfo

__all__ = ["KINDS", "IngestorMetrics"]

KINDS = ("assertion", "vote", "epoch")

# One batch is 1 to a few thousand records at a few microseconds each: from ~100 us (a lone
# record) to tens of milliseconds (a full 4,096-record batch); seconds mean the disk stalls.
_BATCH_BUCKETS_SECONDS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class IngestorMetrics:
    def __init__(self, registry: CollectorRegistry, state: ApplyState) -> None:
        self._state = state
        self._registry = registry
        self.applied_lsn = Gauge(
            "stemedb_ingestor_applied_lsn",
            "Highest WAL LSN applied to RocksDB.",
            registry=registry,
        )
        self.watermark_lsn = Gauge(
            "stemedb_ingestor_watermark_lsn",
            "Durable WAL LSN (WATERMARK) last seen by the apply loop.",
            registry=registry,
        )
        self.lag_records = Gauge(
            "stemedb_ingestor_lag_records",
            "Durable WAL records not yet applied (watermark minus applied LSN).",
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "stemedb_ingestor_lag_seconds",
            "Age of the oldest durable record not yet applied, from WAL timestamps; 0 when "
            "caught up.",
            registry=registry,
        )
        self.lag_seconds.set_function(self._lag_seconds)
        self.records_applied = Counter(
            "stemedb_ingestor_records_applied_total",
            "WAL records applied, by record kind (re-appended records included).",
            ["kind"],
            registry=registry,
        )
        for kind in KINDS:
            self.records_applied.labels(kind)
        self.batch_seconds = Histogram(
            "stemedb_ingestor_apply_batch_duration_seconds",
            "Time to decode, build and write one RocksDB WriteBatch.",
            buckets=_BATCH_BUCKETS_SECONDS,
            registry=registry,
        )
        self.halted = Gauge(
            "stemedb_ingestor_halted",
            "1 when the apply loop stopped on corruption, an undecodable record or a diverged "
            "log; reads are still served.",
            registry=registry,
        )
        self.halt_info = Gauge(
            "stemedb_ingestor_halt_info",
            "1 for the cause of the halt (see the log line for the full reason).",
            ["cause"],
            registry=registry,
        )
        self.ready = Gauge(
            "stemedb_ingestor_ready",
            "1 while health stemedb.ready is SERVING: applying, not halted, and the lag within "
            "--ready-lag-records-max.",
            registry=registry,
        )
        self.min_lsn_waiters = Gauge(
            "stemedb_ingestor_min_lsn_waiters",
            "Reads parked waiting for their min_lsn to be applied (bounded by "
            "--min-lsn-waiters-max).",
            registry=registry,
        )
        self.db_size_bytes = Gauge(
            "stemedb_ingestor_db_size_bytes",
            "Bytes of the RocksDB directory, refreshed periodically.",
            registry=registry,
        )

    def watch_waiters(self, waiting: Callable[[], int]) -> None:
        """Export ``waiting()`` (the waiter's count, read at scrape time) as a gauge."""
        self.min_lsn_waiters.set_function(waiting)

    def watch_read_cache(self, cache: ReadCache | None) -> None:
        """Export the read cache's hits, misses and bytes (read at scrape time; all 0 when
        ``--read-cache-bytes-max`` is 0)."""
        self._registry.register(_ReadCacheCollector(cache))

    def _lag_seconds(self) -> float:
        oldest = self._state.oldest_unapplied_ns
        if oldest is None:
            return 0.0
        return max(0.0, (time.time_ns() - oldest) / 1e9)

    def progress(self, state: ApplyState) -> None:
        self.applied_lsn.set(state.applied_lsn)
        self.watermark_lsn.set(state.watermark_lsn)
        self.lag_records.set(max(0, state.watermark_lsn - state.applied_lsn))

    def halt(self, info: HaltInfo) -> None:
        self.halted.set(1)
        self.halt_info.labels(info.cause).set(1)


class _ReadCacheCollector(Collector):
    def __init__(self, cache: ReadCache | None) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self._cache
        yield CounterMetricFamily(
            "stemedb_ingestor_read_cache_hits",
            "Point reads of a record key answered from the read cache.",
            value=cache.hits if cache else 0,
        )
        yield CounterMetricFamily(
            "stemedb_ingestor_read_cache_misses",
            "Point reads of a record key that went to RocksDB (the cache on).",
            value=cache.misses if cache else 0,
        )
        yield GaugeMetricFamily(
            "stemedb_ingestor_read_cache_bytes",
            "Bytes held by the read cache (bounded by --read-cache-bytes-max).",
            value=cache.bytes if cache else 0,
        )
