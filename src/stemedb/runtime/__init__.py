"""What every service shares: the service shell (gRPC server, health, reflection, TLS, metrics,
the drain on SIGTERM), the config builder (flags and ``STEMEDB_*`` variables from one frozen
dataclass), the error-to-status table, logs (JSON or console) and the service ``main``."""

from __future__ import annotations

from stemedb.runtime._config import (
    EnvArgumentParser,
    ServerSettings,
    bounds_of,
    build_parser,
    check_settings,
    config_from_args,
    derived,
    optional_host_port,
    optional_path,
    parse_host_port,
    setting,
    unix_socket_path,
)
from stemedb.runtime._decoding import (
    ServiceHandlers,
    bytes_generic_handler,
    decode_request,
    decoding_generic_handler,
)
from stemedb.runtime._grpc_metrics import GrpcMetrics, GrpcMetricsInterceptor
from stemedb.runtime._logging import (
    LOG_FORMATS,
    ConsoleFormatter,
    configure_json_logging,
    configure_logging,
    log_event,
)
from stemedb.runtime._main import run_service
from stemedb.runtime._server import start_metrics_http_server
from stemedb.runtime._shell import (
    CONTROL_RPCS_CONCURRENT_MAX,
    HEALTH_SERVICE_NAME,
    UNIX_SOCKET_MODE,
    ConcurrencyLimitInterceptor,
    ServiceShell,
    server_credentials,
    stop_signal,
)
from stemedb.runtime._status import StatusTable

__all__ = [
    "CONTROL_RPCS_CONCURRENT_MAX",
    "HEALTH_SERVICE_NAME",
    "LOG_FORMATS",
    "UNIX_SOCKET_MODE",
    "ConcurrencyLimitInterceptor",
    "ConsoleFormatter",
    "EnvArgumentParser",
    "GrpcMetrics",
    "GrpcMetricsInterceptor",
    "ServerSettings",
    "ServiceHandlers",
    "ServiceShell",
    "StatusTable",
    "bounds_of",
    "build_parser",
    "bytes_generic_handler",
    "check_settings",
    "config_from_args",
    "configure_json_logging",
    "configure_logging",
    "decode_request",
    "decoding_generic_handler",
    "derived",
    "log_event",
    "optional_host_port",
    "optional_path",
    "parse_host_port",
    "run_service",
    "server_credentials",
    "setting",
    "start_metrics_http_server",
    "stop_signal",
    "unix_socket_path",
]
