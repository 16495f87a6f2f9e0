"""The Prometheus endpoint of a service (the rest of the server lives in ``_shell.py``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server

from stemedb.runtime._config import parse_host_port

__all__ = ["start_metrics_http_server"]


def start_metrics_http_server(listen: str, registry: CollectorRegistry) -> object:
    """Serve ``registry`` at http://listen/metrics from a daemon thread; returns the server."""
    host, port = parse_host_port(listen)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
