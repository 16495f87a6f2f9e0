"""Running the writer: WAL, gRPC server, health, metrics, signals and the drain on shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry

from stemedb import validation
from stemedb.runtime import (
    GrpcMetrics,
    GrpcMetricsInterceptor,
    add_health_and_reflection,
    log_event,
    start_metrics_http_server,
)
from stemedb.v1 import writer_pb2
from stemedb.wal import SyncMode, Wal, WalConfig
from stemedb.writer._config import WriterConfig
from stemedb.writer._core import Writer
from stemedb.writer._metrics import WriterMetrics
from stemedb.writer._service import SERVICE_NAME, WriterServicer
from stemedb.writer._verify import SignatureVerifier

__all__ = ["WriterServer", "serve"]

_log = logging.getLogger("stemedb.writer")
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _server_credentials(cfg: WriterConfig) -> grpc.ServerCredentials | None:
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    client_ca = cfg.tls_client_ca.read_bytes() if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class WriterServer:
    """One writer process: open the WAL, serve gRPC and metrics, drain on stop."""

    def __init__(self, cfg: WriterConfig) -> None:
        self.cfg = cfg
        self.registry = CollectorRegistry()
        self.metrics = WriterMetrics(self.registry, cfg.wal_dir)
        self._draining = False
        self._stopped = asyncio.Event()
        self._wal: Wal | None = None
        self._verifier: SignatureVerifier | None = None
        self._server: grpc.aio.Server | None = None
        self.bound_port = 0

    async def start(self) -> None:
        cfg = self.cfg
        self.metrics_server = start_metrics_http_server(cfg.metrics_listen, self.registry)
        grpc_metrics = GrpcMetrics(self.registry)
        service_names = [SERVICE_NAME]
        desc = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]
        grpc_metrics.initialize(f"/{SERVICE_NAME}/{m.name}" for m in desc.methods)
        server = grpc.aio.server(
            interceptors=[GrpcMetricsInterceptor(grpc_metrics)],
            options=[
                ("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.max_send_message_length", cfg.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        health = add_health_and_reflection(server, service_names)
        for name in ("", SERVICE_NAME):
            await health.set(name, _NOT_SERVING)
        # Open (and recover) the WAL before serving appends; health reports NOT_SERVING until
        # then, while the health service itself already answers.
        self._verifier = SignatureVerifier(cfg.verify_workers, cfg.inline_signatures_max)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._verifier.warm_up)
        started = time.monotonic()
        wal = await loop.run_in_executor(
            None,
            Wal.open,
            WalConfig(
                dir=cfg.wal_dir,
                segment_size_bytes=cfg.segment_size_bytes,
                sync_mode=SyncMode(cfg.sync_mode),
                retention=cfg.retention,
                fsync_warn_seconds=cfg.fsync_warn_seconds,
                observer=self.metrics,
            ),
        )
        self._wal = wal
        self.metrics.bind_lsns(lambda: wal.last_lsn, lambda: wal.durable_lsn)
        writer = Writer(
            wal,
            self._verifier,
            require_signatures=cfg.require_signatures,
            trusted_keys=cfg.trusted_keys,
            inflight_records_max=cfg.inflight_records_max,
        )
        servicer = WriterServicer(
            writer, self.metrics, validation.DEFAULT_LIMITS, cfg.inflight_requests_max,
            lambda: self._draining,
        )  # fmt: skip
        server.add_generic_rpc_handlers((servicer.generic_handler(),))
        creds = _server_credentials(cfg)
        if creds is None:
            self.bound_port = server.add_insecure_port(cfg.listen)
        else:
            self.bound_port = server.add_secure_port(cfg.listen, creds)
        if self.bound_port == 0:
            raise OSError(f"cannot listen on {cfg.listen}")
        await server.start()
        self._server = server
        self._health = health
        for name in ("", SERVICE_NAME):
            await health.set(name, _SERVING)
        log_event(
            _log, logging.INFO, "writer started",
            listen=cfg.listen, metrics_listen=cfg.metrics_listen, wal_dir=str(cfg.wal_dir),
            tls=creds is not None, mtls=cfg.tls_client_ca is not None,
            require_signatures=cfg.require_signatures,
            trusted_keys=len(cfg.trusted_keys) if cfg.trusted_keys is not None else None,
            sync=cfg.sync_mode, durable_lsn=wal.durable_lsn,
            recovery_seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip

    async def stop(self) -> None:
        """Drain: refuse new appends, let in-flight commits finish, close the WAL."""
        if self._draining:
            await self._stopped.wait()
            return
        self._draining = True
        log_event(_log, logging.INFO, "writer draining")
        if self._server is not None:
            for name in ("", SERVICE_NAME):
                await self._health.set(name, _NOT_SERVING)
            await self._server.stop(self.cfg.shutdown_grace_seconds)
        loop = asyncio.get_running_loop()
        if self._wal is not None:
            await loop.run_in_executor(None, self._wal.close)
        if self._verifier is not None:
            await loop.run_in_executor(None, self._verifier.close)
        shutdown: Any = getattr(self, "metrics_server", None)
        if shutdown is not None:
            shutdown.shutdown()
        durable = self._wal.durable_lsn if self._wal is not None else 0
        log_event(_log, logging.INFO, "writer stopped", durable_lsn=durable)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(cfg: WriterConfig) -> None:
    server = WriterServer(cfg)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await server.start()
    await stop_requested.wait()
    await server.stop()
