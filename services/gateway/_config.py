"""The gateway's configuration: one frozen dataclass built from flags and STEMEDB_* variables."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig
from stemedb.runtime import EnvArgumentParser, parse_host_port

__all__ = ["DEFAULT_LISTEN", "WORKERS_MAX", "GatewayConfig", "build_parser", "config_from_args"]

DEFAULT_LISTEN = "127.0.0.1:8080"
WORKERS_MAX = 64


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs; it keeps no state of its own beyond this.

    ``wallet`` routes every write through a wallet (a WriterService signing proxy) instead of
    the writer. Bounds: ``body_bytes_max`` per request body (413 beyond), ``body_read_seconds`` to
    receive a body (408 beyond), ``head_read_seconds`` to receive a request's head (408 and the
    connection closed beyond), ``request_timeout_seconds`` is the default deadline of the gRPC
    calls a request makes (a client may ask for less with ``X-Stemedb-Timeout``), and
    ``connections_max`` bounds concurrent connections per worker (503 beyond). ``workers``
    serving processes share the listening socket (uvicorn's workers), each with its own channels."""

    listen: str = DEFAULT_LISTEN
    writer: str = DEFAULT_WRITER
    store: str = DEFAULT_STORE
    wallet: str | None = None
    tls: TlsConfig | None = None
    request_timeout_seconds: float = 10.0
    body_bytes_max: int = 16 * 1024 * 1024
    body_read_seconds: float = 30.0
    head_read_seconds: float = 10.0
    keep_alive_seconds: float = 5.0
    connections_max: int = 1024
    shutdown_seconds: float = 20.0
    workers: int = 1
    log_level: str = "info"
    log_format: str = "auto"  # json, console, or auto (console on a terminal), as every service

    @property
    def write_target(self) -> str:
        return self.wallet or self.writer


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{text!r} is not a positive number")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{text!r} is not a positive integer")
    return value


def _host_port(text: str) -> str:
    parse_host_port(text)
    return text


def build_parser() -> argparse.ArgumentParser:
    p = EnvArgumentParser(
        prog="stemedb-gateway",
        description="StemeDB's HTTP/JSON gateway and explorer over the writer and the ingestor "
        "(docs/gateway.md).",
    )
    d = GatewayConfig()
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        type=_host_port,
        default=d.listen,
        help=f"HTTP address (default {d.listen}); /metrics and /healthz are on it",
    )
    p.add_argument(
        "--writer",
        metavar="HOST:PORT",
        default=d.writer,
        help=f"writer gRPC address (default {d.writer})",
    )
    p.add_argument(
        "--store",
        metavar="HOST:PORT",
        default=d.store,
        help=f"ingestor gRPC address: StoreService and QueryService (default {d.store})",
    )
    p.add_argument(
        "--query",
        metavar="HOST:PORT",
        default=None,
        help="QueryService address when it is not the --store address",
    )
    p.add_argument(
        "--wallet",
        metavar="ADDRESS",
        default=None,
        help="send writes through this wallet (unix:PATH or HOST:PORT); the "
        "X-Stemedb-Key header names the signing key",
    )
    p.add_argument(
        "--tls",
        action="store_true",
        default=False,
        help="TLS to the writer and the ingestor, trusting the system's roots",
    )
    p.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=None,
        help="PEM CA bundle to trust for the backends; enables TLS",
    )
    p.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=None,
        help="client certificate for mutual TLS to the backends",
    )
    p.add_argument("--tls-key", metavar="PEM", default=None, help="private key of --tls-cert")
    p.add_argument(
        "--tls-server-name",
        metavar="NAME",
        default=None,
        help="check the backends' certificates against NAME",
    )
    p.add_argument(
        "--request-timeout",
        metavar="SECONDS",
        type=_positive,
        default=d.request_timeout_seconds,
        help="deadline of a request's gRPC calls (default 10)",
    )
    p.add_argument(
        "--body-bytes-max",
        metavar="BYTES",
        type=_positive_int,
        default=d.body_bytes_max,
        help="largest request body (default 16 MiB)",
    )
    p.add_argument(
        "--body-read-seconds",
        metavar="SECONDS",
        type=_positive,
        default=d.body_read_seconds,
        help="time to receive a request body (default 30)",
    )
    p.add_argument(
        "--head-read-seconds",
        metavar="SECONDS",
        type=_positive,
        default=d.head_read_seconds,
        help="time to receive a request's line and headers, from the connection or from their "
        "first byte (default 10)",
    )
    p.add_argument(
        "--keep-alive-seconds",
        metavar="SECONDS",
        type=_positive,
        default=d.keep_alive_seconds,
        help="idle keep-alive timeout (default 5)",
    )
    p.add_argument(
        "--connections-max",
        metavar="N",
        type=_positive_int,
        default=d.connections_max,
        help="concurrent connections (default 1024)",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=_positive_int,
        default=d.workers,
        help=f"serving processes on the one --listen socket (default 1, at most {WORKERS_MAX}); "
        "each keeps its own channels and metrics: /metrics answers for the worker that took "
        "the scrape",
    )
    p.add_argument(
        "--log-level",
        default=d.log_level,
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    p.add_argument(
        "--log-format",
        default=d.log_format,
        choices=["json", "console", "auto"],
        help="json, console (readable, coloured on a terminal) or auto: console on a terminal, "
        "else json (default auto)",
    )
    return p  # fmt: skip


def _tls(args: argparse.Namespace) -> TlsConfig | None:
    """TLS to both backends from the CLI's flag names; None (plaintext) when none asks for it."""
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together (mutual TLS needs both)")
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    return TlsConfig(
        root_ca=Path(args.tls_ca) if args.tls_ca else None,
        client_cert=Path(args.tls_cert) if args.tls_cert else None,
        client_key=Path(args.tls_key) if args.tls_key else None,
        server_name=args.tls_server_name,
    )


def config_from_args(argv: Sequence[str] | None = None) -> GatewayConfig:
    """Parse flags (and STEMEDB_* variables); a bad value exits 2 naming the flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tls = _tls(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.workers > WORKERS_MAX:
        parser.error(f"--workers: {args.workers} is more than the limit of {WORKERS_MAX}")
    return GatewayConfig(
        listen=args.listen,
        writer=args.writer,
        store=args.store,
        wallet=args.wallet,
        tls=tls,
        request_timeout_seconds=args.request_timeout,
        body_bytes_max=args.body_bytes_max,
        body_read_seconds=args.body_read_seconds,
        head_read_seconds=args.head_read_seconds,
        keep_alive_seconds=args.keep_alive_seconds,
        connections_max=args.connections_max,
        workers=args.workers,
        log_level=args.log_level,
        log_format=args.log_format,
    )
