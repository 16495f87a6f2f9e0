"""One service shell: what every StemeDB gRPC server does around its own servicers.

:class:`ServiceShell` owns the asyncio gRPC server and everything that is the same for each
service: the go-grpc-prometheus interceptor, the data-path concurrency limit (which health and
reflection are exempt from), ``grpc.health.v1`` and reflection, TLS or mutual TLS, the optional
plaintext health port, the Prometheus HTTP endpoint, and the drain on SIGTERM/SIGINT. A service
adds its servicers with one call each::

    shell = ServiceShell(cfg, registry, "stemedb.ingestor", data_rpcs_concurrent_max=1000)
    shell.add_service(store_pb2.DESCRIPTOR.services_by_name["StoreService"], handler)
    stop = stop_signal()
    await shell.start()
    await stop.wait()
    await shell.drain()

Health: ``""`` and every added service name start NOT_SERVING and become SERVING when
:meth:`ServiceShell.start` has bound the port; extra names (``stemedb.ingest``) are the
service's own to set. On the drain, Watch and reflection streams end (status OK) once the
NOT_SERVING has been sent, so they never hold a shutdown for ``--shutdown-grace-seconds``.

``listen`` may be ``unix:PATH`` for a service whose settings allow it (the wallet): the socket
is created mode 0600 (under a umask, then checked), a stale socket left by a killed process is
replaced, a path that is not a socket or a socket another process serves on is refused
(``OSError``), and the drain removes the socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from stemedb.runtime._config import ServerSettings, unix_socket_path
from stemedb.runtime._decoding import ServiceHandlers
from stemedb.runtime._grpc_metrics import Continuation, GrpcMetrics, GrpcMetricsInterceptor, Handler
from stemedb.runtime._logging import log_event
from stemedb.runtime._server import start_metrics_http_server

__all__ = [
    "CONTROL_RPCS_CONCURRENT_MAX",
    "HEALTH_SERVICE_NAME",
    "UNIX_SOCKET_MODE",
    "ConcurrencyLimitInterceptor",
    "DrainingHealthServicer",
    "ServiceShell",
    "server_credentials",
    "stop_signal",
]

HEALTH_SERVICE_NAME: str = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# Health checks, health watches and reflection streams are never counted against the data-path
# limit; the server as a whole admits this many of them on top of it, so that a flood of
# reflection streams is bounded too.
CONTROL_RPCS_CONCURRENT_MAX = 100
_EXEMPT_SERVICES = frozenset({HEALTH_SERVICE_NAME, reflection.SERVICE_NAME})
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
UNIX_SOCKET_MODE = 0o600


def _clear_stale_socket(path: Path) -> None:
    """Make room for a Unix socket at ``path``: nothing there, or a socket nobody serves on
    (left by a killed process), which is removed. Anything else is refused."""
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


def _check_socket_mode(path: Path) -> None:
    os.chmod(path, UNIX_SOCKET_MODE)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode != UNIX_SOCKET_MODE:
        raise OSError(f"{path}: socket mode is {mode:o}, expected {UNIX_SOCKET_MODE:o}")


def server_credentials(cfg: ServerSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from ``--tls-cert``/``--tls-key`` (and ``--tls-client-ca`` for mutual
    TLS), or None for plaintext."""
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    client_ca = cfg.tls_client_ca.read_bytes() if cfg.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _service_of(full_method: str) -> str:
    # "/package.Service/Method"
    return full_method.split("/", 2)[1] if full_method.count("/") >= 2 else ""


class DrainingHealthServicer(health.aio.HealthServicer):
    """``grpc.health.v1`` whose ``Watch`` streams end once the drain has begun.

    gRPC's own servicer keeps a Watch open for as long as the client wants, so a SIGTERM with
    one open (a load balancer, a sidecar, ``grpc-health-probe -watch``) held the process for
    the whole ``--shutdown-grace-seconds``. Here, after :meth:`enter_graceful_shutdown`, each
    Watch sends the status it has not sent yet (NOT_SERVING, or SERVICE_UNKNOWN for a name
    never set) and then ends with status OK; a Watch that starts during the drain gets the
    one status and ends too. ``Check`` and ``set`` are gRPC's."""

    # gRPC's servicer state (grpcio-health-checking's aio servicer), used as its Watch does.
    _server_status: dict[str, int]
    _server_watchers: defaultdict[str, asyncio.Condition]
    _watcher_count_by_service: defaultdict[str, int]
    _gracefully_shutting_down: bool

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        name = request.service
        condition = self._server_watchers[name]
        self._watcher_count_by_service[name] += 1
        sent: int | None = None
        try:
            async with condition:
                while True:
                    status = self._server_status.get(name, _SERVICE_UNKNOWN)
                    if status != sent:
                        await context.write(health_pb2.HealthCheckResponse(status=status))
                        sent = status
                    if self._gracefully_shutting_down:
                        return  # the drain's status is written: end the stream
                    await condition.wait()
        finally:
            # The same bookkeeping as gRPC's own Watch, which ``set`` relies on.
            self._watcher_count_by_service[name] -= 1
            if self._watcher_count_by_service[name] == 0:
                del self._server_watchers[name]
                del self._watcher_count_by_service[name]


class DrainingReflectionServicer(reflection_aio.ReflectionServicer):
    """Server reflection whose streams end (status OK) once ``draining`` is set.

    A reflection stream lasts as long as its client keeps it open (a UI or a shell left
    connected); without this, one such stream held a SIGTERM for the whole grace period. A
    request being answered when the drain begins is answered first."""

    def __init__(self, service_names: Sequence[str], draining: asyncio.Event) -> None:
        super().__init__(service_names)
        self._draining = draining

    # gRPC's annotation says a coroutine; the method is an async generator, as is this one.
    async def ServerReflectionInfo(  # type: ignore[override]
        self,
        request_iterator: AsyncIterable[reflection_pb2.ServerReflectionRequest],
        unused_context: Any,
    ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        requests = _until_set(request_iterator, self._draining)
        responses = cast(
            "AsyncIterator[reflection_pb2.ServerReflectionResponse]",
            super().ServerReflectionInfo(requests, unused_context),
        )
        async for response in responses:
            yield response


async def _until_set(items: AsyncIterable[Any], stop: asyncio.Event) -> AsyncIterator[Any]:
    """``items`` until they end or ``stop`` is set, whichever comes first."""
    source = aiter(items)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while True:
            item = asyncio.ensure_future(anext(source))
            await asyncio.wait((item, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not item.done():
                item.cancel()
                return
            try:
                value = item.result()
            except StopAsyncIteration:
                return
            yield value
    finally:
        stopped.cancel()


class ConcurrencyLimitInterceptor(grpc.aio.ServerInterceptor):
    """At most ``rpcs_max`` data-path unary RPCs at a time; more get RESOURCE_EXHAUSTED at once.

    Health and reflection are exempt, so a probe answers while the data path is saturated (for
    example by a thousand reads waiting for a ``min_lsn``).
    """

    def __init__(self, rpcs_max: int, flag: str) -> None:
        if rpcs_max < 1:
            raise ValueError(f"{flag} must be >= 1, got {rpcs_max}")
        self.rpcs_max = rpcs_max
        self._flag = flag
        self.in_flight = 0

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or _service_of(handler_call_details.method) in _EXEMPT_SERVICES
        ):
            return handler
        inner: Any = handler.unary_unary

        async def limited(request: Any, context: Any) -> Any:
            if self.in_flight >= self.rpcs_max:
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"{self.in_flight} calls in flight, the bound is {self.rpcs_max} "
                    f"({self._flag}): retry later",
                )
            self.in_flight += 1
            try:
                return await inner(request, context)
            finally:
                self.in_flight -= 1

        return grpc.unary_unary_rpc_method_handler(
            limited,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _new_server(
    interceptors: list[grpc.aio.ServerInterceptor],
    rpcs_max: int | None,
    options: Sequence[tuple[str, Any]],
    reuse_port: bool = False,
) -> grpc.aio.Server:
    return grpc.aio.server(
        interceptors=interceptors,
        maximum_concurrent_rpcs=rpcs_max,
        # A second process on the same port must fail, not share it (unless the service's
        # processes share it on purpose: the writer's front ends).
        options=[("grpc.so_reuseport", 1 if reuse_port else 0), *options],
    )


class ServiceShell:
    """One gRPC server process's shell; see the module docstring."""

    def __init__(
        self,
        cfg: ServerSettings,
        registry: CollectorRegistry,
        logger: logging.Logger,
        *,
        options: Sequence[tuple[str, Any]] = (),
        data_rpcs_concurrent_max: int | None = None,
        data_rpcs_flag: str = "--rpcs-concurrent-max",
        reuse_port: bool = False,
        serve_metrics: bool = True,
    ) -> None:
        self.cfg = cfg
        self._reuse_port = reuse_port  # SO_REUSEPORT: sibling processes share the ports
        self._serve_metrics = serve_metrics  # False: another process serves this registry
        self.registry = registry
        self._log = logger
        self._grpc_metrics = GrpcMetrics(registry)
        interceptors: list[grpc.aio.ServerInterceptor] = [
            GrpcMetricsInterceptor(self._grpc_metrics)
        ]
        core_max = None
        self.limiter: ConcurrencyLimitInterceptor | None = None
        if data_rpcs_concurrent_max is not None:
            self.limiter = ConcurrencyLimitInterceptor(data_rpcs_concurrent_max, data_rpcs_flag)
            interceptors.append(self.limiter)
            core_max = data_rpcs_concurrent_max + CONTROL_RPCS_CONCURRENT_MAX
        self.server = _new_server(interceptors, core_max, options, reuse_port)
        self.health = DrainingHealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._health_server: grpc.aio.Server | None = None
        self._service_names: list[str] = []
        self._metrics_http: Any = None
        self._started = False
        self._drained = False
        self._draining = asyncio.Event()  # set by the drain: long-lived streams end
        self._unix_socket: Path | None = None  # once this shell has bound it
        self.bound_port = 0
        self.health_port = 0

    @property
    def service_names(self) -> list[str]:
        return list(self._service_names)

    def add_service(self, descriptor: ServiceDescriptor, handler: grpc.GenericRpcHandler) -> None:
        """Serve ``handler`` for ``descriptor``'s service, with its health name, its reflection
        entry and its gRPC metrics series. Call before :meth:`start`."""
        if self._started:
            raise RuntimeError("add_service after start: the server is already serving")
        name = descriptor.full_name
        if isinstance(handler, ServiceHandlers) and handler.service_name == name:
            self.server.add_registered_method_handlers(name, handler.method_handlers)
        else:
            self.server.add_generic_rpc_handlers((handler,))
        self._service_names.append(name)
        self._grpc_metrics.initialize(f"/{name}/{m.name}" for m in descriptor.methods)

    async def set_health(self, name: str, serving: bool) -> None:
        await self.health.set(name, _SERVING if serving else _NOT_SERVING)

    async def set_all_health(self, serving: bool, extra: Iterable[str] = ()) -> None:
        """Set ``""``, every added service and ``extra`` names."""
        for name in ("", *self._service_names, *extra):
            await self.set_health(name, serving)

    async def start(self) -> None:
        """Start the metrics endpoint, bind the port(s) and serve; health becomes SERVING."""
        cfg = self.cfg
        self._started = True
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
            DrainingReflectionServicer(
                [*self._service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME],
                self._draining,
            ),
            self.server,
        )
        if self._serve_metrics:
            self._metrics_http = start_metrics_http_server(cfg.metrics_listen, self.registry)
        creds = server_credentials(cfg)
        path = unix_socket_path(cfg.listen)
        if path is not None:
            _clear_stale_socket(path)
        # A socket is created by the bind: a umask leaving only the owner's read and write bits
        # covers the moment before the explicit chmod (a TCP bind creates no file).
        old_umask = os.umask(0o177) if path is not None else None
        try:
            if creds is None:
                self.bound_port = self.server.add_insecure_port(cfg.listen)
            else:
                self.bound_port = self.server.add_secure_port(cfg.listen, creds)
            if self.bound_port == 0:
                raise OSError(f"cannot listen on {cfg.listen}")
            self._unix_socket = path
            if cfg.health_listen:
                await self._start_health_server(cfg.health_listen)
            await self.server.start()
        finally:
            if old_umask is not None:
                os.umask(old_umask)
        if path is not None:
            _check_socket_mode(path)
        await self.set_all_health(True)

    async def _start_health_server(self, listen: str) -> None:
        # Health only, in plaintext, for probes that cannot speak TLS (Kubernetes grpc probes).
        server = grpc.aio.server(
            maximum_concurrent_rpcs=CONTROL_RPCS_CONCURRENT_MAX,
            options=[("grpc.so_reuseport", 1 if self._reuse_port else 0)],
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        self.health_port = server.add_insecure_port(listen)
        if self.health_port == 0:
            raise OSError(f"cannot listen on {listen} (--health-listen)")
        await server.start()
        self._health_server = server

    @property
    def tls(self) -> bool:
        return self.cfg.tls_cert is not None

    @property
    def mtls(self) -> bool:
        return self.cfg.tls_client_ca is not None

    async def drain(self, before_stop: Callable[[], object] | None = None) -> None:
        """Health NOT_SERVING for every name (each open Watch stream is sent it and then ends,
        status OK; open reflection streams end too), then let in-flight RPCs finish for up to
        the grace period, then stop the metrics endpoint. ``before_stop`` runs between the two
        (e.g. to fail parked waits at once rather than at the end of the grace), so that only
        calls doing work hold the grace."""
        if self._drained:
            return
        self._drained = True
        if self._started:
            await self.health.enter_graceful_shutdown()  # Watch streams send it, then end
            self._draining.set()
        if before_stop is not None:
            before_stop()
        if self._started:
            await self.server.stop(self.cfg.shutdown_grace_seconds)
            if self._health_server is not None:
                await self._health_server.stop(0)
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        if self._unix_socket is not None:
            self._unix_socket.unlink(missing_ok=True)
        log_event(self._log, logging.DEBUG, "server stopped")


def stop_signal() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT; install it before a slow start, so that a
    signal during the start still drains instead of killing the process."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop
