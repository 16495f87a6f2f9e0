"""Running the ingestor: RocksDB, the apply thread, the gRPC server, health, metrics, signals.

Threads: the gRPC asyncio server and every read run on the main thread's event loop (a read is
a few microseconds of RocksDB work); the apply loop runs in its own thread, because WAL reads
and RocksDB writes block. The apply thread reaches the event loop only through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any

import grpc.aio
from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry
from stemedb.ingestor._config import IngestorConfig
from stemedb.ingestor._db import DbOptions, StoreDb
from stemedb.ingestor._loop import ApplyLoop
from stemedb.ingestor._metrics import IngestorMetrics
from stemedb.ingestor._query import Query, ViewsState
from stemedb.ingestor._query_servicer import QUERY_SERVICE_NAME, QueryServicer
from stemedb.ingestor._rederive import lattice_progress_gauge, rederive_if_needed
from stemedb.ingestor._servicer import SERVICE_NAME, StoreServicer
from stemedb.ingestor._state import ApplyState, HaltInfo
from stemedb.ingestor._store import Store
from stemedb.ingestor._waiter import AppliedLsnWaiter

from stemedb.runtime import (
    GrpcMetrics,
    GrpcMetricsInterceptor,
    add_health_and_reflection,
    decoding_generic_handler,
    log_event,
    start_metrics_http_server,
)
from stemedb.v1 import query_pb2, store_pb2

__all__ = ["INGEST_HEALTH_NAME", "serve"]

INGEST_HEALTH_NAME = "stemedb.ingest"
_APPLY_STOP_SECONDS_MAX = 30.0  # one batch is bounded; this only guards against a stuck disk
_MESSAGE_BYTES_MAX = 64 * 1024 * 1024  # a page of 1,000 entries of up to ~1 MiB records
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
        block_cache_bytes=cfg.block_cache_bytes, write_buffer_bytes=cfg.write_buffer_bytes
    )


async def serve(cfg: IngestorConfig) -> int:
    """Run until SIGTERM/SIGINT; return the process exit code."""
    loop = asyncio.get_running_loop()
    db = await loop.run_in_executor(None, StoreDb, cfg.db_dir, _db_options(cfg))
    checkpoint = db.read_checkpoint()
    state = ApplyState(checkpoint.lsn, checkpoint.checksum)
    registry = CollectorRegistry()
    metrics = IngestorMetrics(registry, state)
    metrics.progress(state)
    grpc_metrics = GrpcMetrics(registry)
    metrics_rederive = lattice_progress_gauge(registry)
    methods = store_pb2.DESCRIPTOR.services_by_name["StoreService"].methods
    grpc_metrics.initialize(f"/{SERVICE_NAME}/{m.name}" for m in methods)

    server = grpc.aio.server(
        interceptors=[GrpcMetricsInterceptor(grpc_metrics)],
        maximum_concurrent_rpcs=cfg.rpcs_concurrent_max,
        options=[
            ("grpc.so_reuseport", 0),  # a second process on the same port must fail, not share
            ("grpc.max_send_message_length", _MESSAGE_BYTES_MAX),
        ],
    )
    waiter = AppliedLsnWaiter(checkpoint.lsn, cfg.min_lsn_waiters_max, cfg.min_lsn_wait_seconds_max)
    servicer = StoreServicer(Store(db, state), waiter)
    server.add_generic_rpc_handlers(
        (decoding_generic_handler(store_pb2.DESCRIPTOR.services_by_name["StoreService"], servicer),)
    )
    views = ViewsState(ready=False, message="starting")  # the Lattice (docs/lattice.md)
    query_servicer = QueryServicer(Query(db, state, cfg.policy, views), waiter)
    server.add_generic_rpc_handlers((decoding_generic_handler(QUERY_SERVICE, query_servicer),))
    grpc_metrics.initialize(f"/{QUERY_SERVICE_NAME}/{m.name}" for m in QUERY_SERVICE.methods)
    health_servicer = add_health_and_reflection(server, [SERVICE_NAME, QUERY_SERVICE_NAME])
    await health_servicer.set(INGEST_HEALTH_NAME, _NOT_SERVING)
    if server.add_insecure_port(cfg.listen) == 0:
        raise OSError(f"cannot listen on {cfg.listen}")
    start_metrics_http_server(cfg.metrics_listen, registry)
    await server.start()
    for name in ("", SERVICE_NAME, QUERY_SERVICE_NAME):
        await health_servicer.set(name, _SERVING)
    await loop.run_in_executor(None, rederive_if_needed, db, cfg.policy, views, metrics_rederive)

    bridge = _LoopBridge(loop, waiter, health_servicer, state)
    apply_loop = ApplyLoop(cfg, db, state, metrics, bridge)
    apply_loop.start()
    log_event(
        _log,
        logging.INFO,
        "ingestor started",
        applied_lsn=checkpoint.lsn,
        config={k: str(v) for k, v in asdict(cfg).items()},
    )

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()

    started = time.monotonic()
    log_event(_log, logging.INFO, "ingestor stopping", applied_lsn=state.applied_lsn)
    bridge.stopping = True
    await health_servicer.enter_graceful_shutdown()
    waiter.close()
    apply_loop.stop()
    await server.stop(cfg.shutdown_grace_seconds)
    joined = await loop.run_in_executor(None, apply_loop.join, _APPLY_STOP_SECONDS_MAX)
    if not joined:
        # Closing RocksDB under a running write is unsafe; RocksDB's log recovers on restart.
        log_event(_log, logging.ERROR, "apply loop did not stop; exiting without closing the DB")
        return 1
    db.close()
    log_event(
        _log,
        logging.INFO,
        "ingestor stopped",
        applied_lsn=state.applied_lsn,
        seconds=round(time.monotonic() - started, 3),
    )
    return 0
