"""Prometheus metrics of the Lattice, read from ``LS:stats`` at scrape time.

The counts live in the database, written in the apply batches (``_lattice.LatticeStats``), so
they survive restarts and are the same on every replica; a scrape costs one key read.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._lattice import STATS_KEY, LatticeStats
from stemedb.ingestor._policy import LENS_NAMES

__all__ = ["LatticeCollector"]


class LatticeCollector(Collector):
    def __init__(self, db: StoreDb) -> None:
        self._db = db

    def collect(self) -> Iterator[Metric]:
        raw = self._db.get(STATS_KEY)
        stats = LatticeStats() if raw is None else LatticeStats.decode(raw)
        yield GaugeMetricFamily(
            "stemedb_lattice_slots", "Slots (subject, predicate) with a view", value=stats.slots
        )
        yield GaugeMetricFamily(
            "stemedb_lattice_contested_slots",
            "Slots whose consensus resolution is CONTESTED",
            value=stats.contested,
        )
        changes = CounterMetricFamily(
            "stemedb_lattice_resolution_changes",
            "Changes of a slot's winner or status, per lens (entries ListHistory shows)",
            labels=["lens"],
        )
        for lens in LENS_NAMES:
            changes.add_metric([lens], stats.changes[lens])
        yield changes
