"""What both services share: flags from the command line or the environment, JSON logs,
go-grpc-prometheus style gRPC metrics, health and reflection, the metrics HTTP endpoint."""

from __future__ import annotations

from stemedb.runtime._config import EnvArgumentParser, parse_host_port
from stemedb.runtime._decoding import (
    bytes_generic_handler,
    decode_request,
    decoding_generic_handler,
)
from stemedb.runtime._grpc_metrics import GrpcMetrics, GrpcMetricsInterceptor
from stemedb.runtime._logging import configure_json_logging, log_event
from stemedb.runtime._server import (
    add_health_and_reflection,
    start_metrics_http_server,
)

__all__ = [
    "EnvArgumentParser",
    "GrpcMetrics",
    "GrpcMetricsInterceptor",
    "add_health_and_reflection",
    "bytes_generic_handler",
    "configure_json_logging",
    "decode_request",
    "decoding_generic_handler",
    "log_event",
    "parse_host_port",
    "start_metrics_http_server",
]
