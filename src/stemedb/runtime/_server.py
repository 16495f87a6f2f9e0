"""Health, reflection and the Prometheus endpoint, set up the same way for both services."""

from __future__ import annotations

from collections.abc import Iterable

import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, start_http_server

from stemedb.runtime._config import parse_host_port

__all__ = ["add_health_and_reflection", "start_metrics_http_server"]


def add_health_and_reflection(
    server: grpc.aio.Server, service_names: Iterable[str]
) -> health.aio.HealthServicer:
    """Serve grpc.health.v1 (every name starts NOT_SERVING) and v1alpha reflection."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME],
        server,
    )  # fmt: skip
    return servicer


def start_metrics_http_server(listen: str, registry: CollectorRegistry) -> object:
    """Serve ``registry`` at http://listen/metrics from a daemon thread; returns the server."""
    host, port = parse_host_port(listen)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
