"""Running the wallet: the gRPC server on a Unix socket (0600), health, metrics, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2
from prometheus_client import CollectorRegistry
from stemedb.wallet._config import WalletConfig
from stemedb.wallet._keystore import Keystore
from stemedb.wallet._metrics import WalletMetrics
from stemedb.wallet._service import (
    WALLET_SERVICE_NAME,
    WRITER_SERVICE_NAME,
    WalletServicer,
    WriterProxyServicer,
)
from stemedb.wallet._signer import Signer

from stemedb import validation
from stemedb.runtime import (
    GrpcMetrics,
    GrpcMetricsInterceptor,
    add_health_and_reflection,
    decoding_generic_handler,
    log_event,
    start_metrics_http_server,
)
from stemedb.v1 import wallet_pb2, writer_pb2

__all__ = ["WalletServer", "serve"]

_log = logging.getLogger("stemedb.wallet")
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_SOCKET_MODE = 0o600


class _InflightLimit(grpc.aio.ServerInterceptor):
    """Refuses a request beyond ``inflight_requests_max`` with RESOURCE_EXHAUSTED."""

    def __init__(self, inflight_max: int) -> None:
        self._max = inflight_max
        self._now = 0

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        limit = self

        async def bounded(request: Any, context: Any) -> Any:
            if limit._now >= limit._max:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{limit._now} requests in flight, the bound is {limit._max}: retry",
                )
            limit._now += 1
            try:
                return await inner(request, context)
            finally:
                limit._now -= 1

        return grpc.unary_unary_rpc_method_handler(
            bounded,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _prepare_socket(cfg: WalletConfig) -> None:
    path = cfg.unix_socket
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError(f"{path} exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: a socket left by a process that was killed
        return
    finally:
        probe.close()
    raise OSError(f"{path}: another process serves on this socket")


def _secure_socket(cfg: WalletConfig) -> None:
    path = cfg.unix_socket
    if path is None:
        return
    os.chmod(path, _SOCKET_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != _SOCKET_MODE:
        raise OSError(f"{path}: socket mode is {mode:o}, expected {_SOCKET_MODE:o}")


class WalletServer:
    """One wallet process: serve WalletService and the WriterService proxy, stop cleanly."""

    def __init__(self, cfg: WalletConfig, keystore: Keystore) -> None:
        self.cfg = cfg
        self.keystore = keystore
        self.registry = CollectorRegistry()
        self.metrics = WalletMetrics(self.registry)
        self.metrics.bind_keys(
            lambda: len(keystore.list_keys()),
            lambda: sum(1 for k in keystore.list_keys() if k.retired),
        )
        self._server: grpc.aio.Server | None = None
        self._writer: grpc.aio.Channel | None = None
        self.bound_port = 0

    async def start(self) -> None:
        cfg = self.cfg
        self.metrics_server = start_metrics_http_server(cfg.metrics_listen, self.registry)
        grpc_metrics = GrpcMetrics(self.registry)
        descriptors = [
            wallet_pb2.DESCRIPTOR.services_by_name["WalletService"],
            writer_pb2.DESCRIPTOR.services_by_name["WriterService"],
        ]
        grpc_metrics.initialize(f"/{d.full_name}/{m.name}" for d in descriptors for m in d.methods)
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
        ]
        server = grpc.aio.server(
            interceptors=[
                GrpcMetricsInterceptor(grpc_metrics), _InflightLimit(cfg.inflight_requests_max)
            ],
            options=[*options, ("grpc.so_reuseport", 0)],
        )  # fmt: skip
        names = [WALLET_SERVICE_NAME, WRITER_SERVICE_NAME]
        health = add_health_and_reflection(server, names)
        for name in ("", *names):
            await health.set(name, _NOT_SERVING)
        self._writer = grpc.aio.insecure_channel(cfg.writer, options=options)
        signer = Signer(self.keystore, self.metrics, validation.DEFAULT_LIMITS)
        proxy = WriterProxyServicer(
            signer, self._writer, self.metrics, validation.DEFAULT_LIMITS,
            cfg.forward_timeout_seconds,
        )  # fmt: skip
        server.add_generic_rpc_handlers(
            (
                decoding_generic_handler(descriptors[0], WalletServicer(self.keystore, signer)),
                decoding_generic_handler(descriptors[1], proxy),
            )
        )
        _prepare_socket(cfg)
        # The socket is created by the bind below: a umask that leaves only the owner's
        # read/write bits covers the moment before the explicit chmod.
        old_umask = os.umask(0o177)
        try:
            self.bound_port = server.add_insecure_port(cfg.listen)
            if self.bound_port == 0:
                raise OSError(f"cannot listen on {cfg.listen}")
            await server.start()
        finally:
            os.umask(old_umask)
        _secure_socket(cfg)
        self._server = server
        self._health = health
        for name in ("", *names):
            await health.set(name, _SERVING)
        log_event(
            _log, logging.INFO, "wallet started",
            listen=cfg.listen, writer=cfg.writer, metrics_listen=cfg.metrics_listen,
            keystore=str(cfg.keystore), **self.keystore.describe(),
        )  # fmt: skip

    async def stop(self) -> None:
        if self._server is not None:
            for name in ("", WALLET_SERVICE_NAME, WRITER_SERVICE_NAME):
                await self._health.set(name, _NOT_SERVING)
            await self._server.stop(self.cfg.shutdown_grace_seconds)
        if self._writer is not None:
            await self._writer.close()
        shutdown: Any = getattr(self, "metrics_server", None)
        if shutdown is not None:
            shutdown.shutdown()
        path = self.cfg.unix_socket
        if path is not None:
            path.unlink(missing_ok=True)
        self.keystore.close()
        log_event(_log, logging.INFO, "wallet stopped")


async def serve(cfg: WalletConfig, keystore: Keystore) -> None:
    server = WalletServer(cfg, keystore)
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    await server.start()
    await stop_requested.wait()
    await server.stop()
