"""Running the ingestor: RocksDB, the apply thread, and StoreService in the service shell.

Threads: the gRPC asyncio server, the min_lsn waits and point reads run on the main thread's
event loop; paged reads run in the servicer's bounded pool (``--read-threads``), so a large page
is never built on the loop; the apply loop runs in its own thread, because WAL reads and RocksDB
writes block. The apply thread reaches the event loop only through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any

from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry

from stemedb.ingestor._config import IngestorConfig
from stemedb.ingestor._db import DbOptions, StoreDb
from stemedb.ingestor._lattice_metrics import LatticeCollector
from stemedb.ingestor._log_service import LOG_SERVICE_DESCRIPTOR, LogServicer
from stemedb.ingestor._loop import ApplyLoop
from stemedb.ingestor._metrics import IngestorMetrics
from stemedb.ingestor._query import Query, ViewsState
from stemedb.ingestor._query_servicer import QueryServicer
from stemedb.ingestor._rederive import lattice_progress_gauge, rederive_if_needed
from stemedb.ingestor._servicer import StoreServicer
from stemedb.ingestor._state import ApplyState, HaltInfo
from stemedb.ingestor._store import Store
from stemedb.ingestor._usage import UsageReader, UsageServicer
from stemedb.ingestor._waiter import AppliedLsnWaiter, ReadRunner
from stemedb.runtime import ServiceShell, decoding_generic_handler, log_event, stop_signal
from stemedb.v1 import meter_pb2, query_pb2, store_pb2

__all__ = ["INGEST_HEALTH_NAME", "READY_HEALTH_NAME", "IngestorServer", "serve"]

INGEST_HEALTH_NAME = "stemedb.ingest"
READY_HEALTH_NAME = "stemedb.ready"  # applying and the lag within --ready-lag-records-max
_APPLY_STOP_SECONDS_MAX = 30.0  # one batch is bounded; this only guards against a stuck disk
_MESSAGE_BYTES_MAX = 64 * 1024 * 1024  # a page of 1,000 entries of up to ~1 MiB records
_DESCRIPTOR = store_pb2.DESCRIPTOR.services_by_name["StoreService"]
_USAGE = meter_pb2.DESCRIPTOR.services_by_name["UsageService"]
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_log = logging.getLogger("stemedb.ingestor")
QUERY_SERVICE = query_pb2.DESCRIPTOR.services_by_name["QueryService"]


class _LoopBridge:
    """The ApplyListener: forwards apply-thread news onto the event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        waiter: AppliedLsnWaiter,
        health_servicer: health.aio.HealthServicer,
        state: ApplyState,
    ) -> None:
        self._loop = loop
        self._waiter = waiter
        self._health = health_servicer
        self._state = state
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    def on_applied(self, lsn: int) -> None:
        self._loop.call_soon_threadsafe(self._waiter.advance, lsn)

    def on_halt(self, info: HaltInfo) -> None:
        self._loop.call_soon_threadsafe(self._halt_in_loop, info)

    def on_ingesting(self, ingesting: bool) -> None:
        self._loop.call_soon_threadsafe(self._ingest_health_in_loop)

    def on_ready(self, ready: bool) -> None:
        self._loop.call_soon_threadsafe(self._ready_health_in_loop, ready)

    def _ready_health_in_loop(self, ready: bool) -> None:
        if not self.stopping:
            self._spawn(self._health.set(READY_HEALTH_NAME, _SERVING if ready else _NOT_SERVING))

    def _halt_in_loop(self, info: HaltInfo) -> None:
        self._waiter.halt(info)
        self._ingest_health_in_loop()

    def _ingest_health_in_loop(self) -> None:
        if self.stopping:
            return
        serving = self._state.ingesting and self._state.halt is None
        self._spawn(self._health.set(INGEST_HEALTH_NAME, _SERVING if serving else _NOT_SERVING))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _db_options(cfg: IngestorConfig) -> DbOptions:
    return DbOptions(
        block_cache_bytes=cfg.block_cache_bytes,
        write_buffer_bytes=cfg.write_buffer_bytes,
        read_cache_bytes_max=cfg.read_cache_bytes_max,
    )


class IngestorServer:
    """One ingestor process over an open database: the apply thread, and StoreService served
    through the service shell (health, reflection, TLS, metrics, the drain)."""

    def __init__(self, cfg: IngestorConfig, db: StoreDb) -> None:
        self.cfg = cfg
        self.db = db
        checkpoint = db.read_checkpoint()
        self.state = ApplyState(checkpoint.lsn, checkpoint.checksum)
        self.registry = CollectorRegistry()
        self.metrics = IngestorMetrics(self.registry, self.state)
        self.metrics.progress(self.state)
        self.shell = ServiceShell(
            cfg, self.registry, _log,
            options=[("grpc.max_send_message_length", _MESSAGE_BYTES_MAX)],
            data_rpcs_concurrent_max=cfg.rpcs_concurrent_max,
        )  # fmt: skip
        self.waiter = AppliedLsnWaiter(
            checkpoint.lsn, cfg.min_lsn_waiters_max, cfg.min_lsn_wait_seconds_max
        )
        self.metrics.watch_waiters(lambda: self.waiter.waiting)
        self.metrics.watch_read_cache(db.cache)
        # One read wrapper (the min_lsn wait, the read pool, the error mapping) for all four.
        self._reads = ReadRunner(self.waiter, cfg.read_threads)
        store = StoreServicer(Store(db, self.state, cfg.read_page_bytes_max), self._reads)
        self.shell.add_service(_DESCRIPTOR, decoding_generic_handler(_DESCRIPTOR, store))
        usage = UsageServicer(UsageReader(db, self.state), self._reads)
        self.shell.add_service(_USAGE, decoding_generic_handler(_USAGE, usage))
        # The Lattice (docs/lattice.md): QueryService answers UNAVAILABLE until views are ready.
        self.rederive_progress = lattice_progress_gauge(self.registry)
        self.registry.register(LatticeCollector(db))
        self.views = ViewsState(ready=False, message="starting")
        query = QueryServicer(Query(db, self.state, cfg.policy, self.views), self._reads)
        self.shell.add_service(QUERY_SERVICE, decoding_generic_handler(QUERY_SERVICE, query))
        log_servicer = LogServicer(db, self.state, self._reads, cfg.wal_dir)
        self.registry.register(log_servicer.metrics_collector())
        self.shell.add_service(
            LOG_SERVICE_DESCRIPTOR, decoding_generic_handler(LOG_SERVICE_DESCRIPTOR, log_servicer)
        )
        self._bridge: _LoopBridge | None = None
        self._apply: ApplyLoop | None = None

    async def start(self) -> None:
        """Serve reads (SERVING), then start applying (``stemedb.ingest`` follows the loop)."""
        await self.shell.set_health(INGEST_HEALTH_NAME, False)
        await self.shell.set_health(READY_HEALTH_NAME, False)
        await self.shell.start()
        loop = asyncio.get_running_loop()
        # Views of another policy are re-derived from stored records before applying goes on.
        await loop.run_in_executor(
            None, rederive_if_needed, self.db, self.cfg.policy, self.views, self.rederive_progress
        )
        self._bridge = _LoopBridge(loop, self.waiter, self.shell.health, self.state)
        self._apply = ApplyLoop(self.cfg, self.db, self.state, self.metrics, self._bridge)
        self._apply.start()
        log_event(
            _log, logging.INFO, "ingestor started",
            applied_lsn=self.state.applied_lsn, tls=self.shell.tls, mtls=self.shell.mtls,
            config={k: str(v) for k, v in asdict(self.cfg).items()},
        )  # fmt: skip

    def _stop_applying(self) -> None:
        # Fail parked min_lsn waits now rather than at the end of the grace period.
        self.waiter.close()
        if self._apply is not None:
            self._apply.stop()

    async def stop(self) -> int:
        """Drain and close; return the process exit code (1 if the apply thread is stuck)."""
        started = time.monotonic()
        log_event(_log, logging.INFO, "ingestor stopping", applied_lsn=self.state.applied_lsn)
        if self._bridge is not None:
            self._bridge.stopping = True
        await self.shell.drain(before_stop=self._stop_applying)
        self._reads.close()
        if self._apply is not None:
            loop = asyncio.get_running_loop()
            joined = await loop.run_in_executor(None, self._apply.join, _APPLY_STOP_SECONDS_MAX)
            if not joined:
                # Closing RocksDB under a running write is unsafe; its log recovers on restart.
                log_event(
                    _log, logging.ERROR, "apply loop did not stop; exiting without closing the DB"
                )
                return 1
        self.db.close()
        log_event(
            _log, logging.INFO, "ingestor stopped",
            applied_lsn=self.state.applied_lsn, seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip
        return 0


async def serve(cfg: IngestorConfig) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    stop = stop_signal()
    loop = asyncio.get_running_loop()
    db = await loop.run_in_executor(None, StoreDb, cfg.db_dir, _db_options(cfg))
    server = IngestorServer(cfg, db)
    await server.start()
    await stop.wait()
    return await server.stop()
