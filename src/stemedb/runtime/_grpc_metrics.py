"""gRPC server metrics in the shape of go-grpc-prometheus, so existing dashboards work.

Families: ``grpc_server_started_total``, ``grpc_server_handled_total`` (with ``grpc_code``
spelled as gRPC names it: ``OK``, ``InvalidArgument``, ...) and ``grpc_server_handling_seconds``,
labelled ``grpc_type``, ``grpc_service``, ``grpc_method``. Only unary methods are served here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias

import grpc
import grpc.aio
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["Continuation", "GrpcMetrics", "GrpcMetricsInterceptor", "Handler", "code_name"]

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
# What a grpc.aio server interceptor is given: the next step, which finds the method's handler.
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"

# grpc.StatusCode.INVALID_ARGUMENT -> "InvalidArgument", as Go's codes.Code.String() spells it.
_SPECIAL = {grpc.StatusCode.OK: "OK"}


def code_name(code: grpc.StatusCode) -> str:
    if code in _SPECIAL:
        return _SPECIAL[code]
    return "".join(part.capitalize() for part in code.name.split("_"))


# Buckets from go-grpc-prometheus' defaults (prometheus.DefBuckets), extended below 5 ms because
# a StemeDB read is often well under a millisecond and a durable append about one fsync.
_HANDLING_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip


class GrpcMetrics:
    """The three metric families, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["grpc_type", "grpc_service", "grpc_method"]
        self.started = Counter(
            "grpc_server_started_total",
            "Total number of RPCs started on the server.",
            labels,
            registry=registry,
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            [*labels, "grpc_code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level "
            "handled by the server.",
            labels,
            buckets=_HANDLING_BUCKETS,
            registry=registry,
        )

    def initialize(self, full_method_names: Iterable[str]) -> None:
        """Create the series of every method at zero, as go-grpc-prometheus' InitializeMetrics."""
        for full in full_method_names:
            service, method = _split(full)
            self.started.labels("unary", service, method)
            self.handled.labels("unary", service, method, "OK")
            self.seconds.labels("unary", service, method)


def _split(full_method: str) -> tuple[str, str]:
    # "/package.Service/Method"
    _, service, method = full_method.split("/", 2)
    return service, method


class GrpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts and times every unary RPC of an asyncio server."""

    def __init__(self, metrics: GrpcMetrics) -> None:
        self._m = metrics

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        service, method = _split(handler_call_details.method)
        inner: Any = handler.unary_unary  # an async function on an asyncio server
        m = self._m

        async def wrapped(request: Any, context: Any) -> Any:
            m.started.labels("unary", service, method).inc()
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                response = await inner(request, context)
                explicit = context.code()
                if explicit is not None:
                    code = _as_status(explicit)
                return response
            except grpc.aio.AbortError:
                code = _as_status(context.code()) if context.code() is not None else code
                raise
            except BaseException:
                code = grpc.StatusCode.UNKNOWN
                raise
            finally:
                m.handled.labels("unary", service, method, code_name(code)).inc()
                m.seconds.labels("unary", service, method).observe(time.perf_counter() - start)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _as_status(value: Any) -> grpc.StatusCode:
    if isinstance(value, grpc.StatusCode):
        return value
    for code in grpc.StatusCode:
        if code.value[0] == value:
            return code
    return grpc.StatusCode.UNKNOWN
