"""The gateway's Prometheus metrics (``stemedb_gateway_*``), served at /metrics.

Label sets are bounded: ``route`` is the route's template (``/v1/records/{hash}``), never the
path a client sent, and ``other`` for paths that match no route.

With ``--workers N`` (N > 1) every worker writes its values to files in a directory named by
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode, chosen when the library is
first imported; the supervisor sets the variable before it spawns the workers), and /metrics, in
whichever worker answers it, sums them over all the workers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MULTIPROCESS_DIR_ENV", "GatewayMetrics", "MetricsMiddleware", "exposition"]

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Requests are answered in well under a millisecond of gateway time plus one or two gRPC calls
# (sub-millisecond reads); min_lsn waits and deadlines reach seconds.
_HTTP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class GatewayMetrics:
    """The metric families, registered in one registry per gateway."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "stemedb_gateway_http_requests_total",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "stemedb_gateway_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route", "method"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.backend_errors = Counter(
            "stemedb_gateway_backend_errors_total",
            "gRPC calls to a backend that ended in an error, by backend and gRPC code.",
            ["backend", "grpc_code"],
            registry=registry,
        )
        self.body_refused = Counter(
            "stemedb_gateway_request_bodies_refused_total",
            "Request bodies refused before any backend call, by reason (too_large, too_slow).",
            ["reason"],
            registry=registry,
        )


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition of /metrics: this process's registry, or, in multiprocess mode (see
    the module), the sum over every worker's files."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


class MetricsMiddleware:
    """Counts every HTTP request and times it under its route template."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = scope.get("stemedb.route", "other")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(route, method, str(status["code"])).inc()
            self.metrics.duration.labels(route, method).observe(time.perf_counter() - start)


_METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
