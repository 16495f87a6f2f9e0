"""``stemedb-gateway``: serve the HTTP/JSON API and the explorer with uvicorn.

SIGTERM (or Ctrl-C) stops accepting connections, lets requests in flight finish (bounded by
``shutdown_seconds``), closes the gRPC channels and exits 0. With ``--workers N`` (N > 1) this
process binds the socket and supervises N worker processes (uvicorn's ``Multiprocess``: spawned,
restarted when one dies); each worker builds its own app and channels from the same
:class:`GatewayConfig`, and SIGTERM reaches every worker through the supervisor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from stemedb.gateway._app import build_app
from stemedb.gateway._config import GatewayConfig, config_from_args
from stemedb.gateway._metrics import MULTIPROCESS_DIR_ENV
from stemedb.runtime import configure_logging, parse_host_port

__all__ = ["main", "serve"]


class _Server(uvicorn.Server):
    """uvicorn's server, except that a graceful stop on SIGTERM/SIGINT exits 0.

    uvicorn re-raises the signal after its graceful shutdown (so the process dies by it); a
    service that drained cleanly should say so with exit code 0, as the writer and the ingestor do.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Config(uvicorn.Config):
    """uvicorn's config carrying the gateway's: the app is built from it where it is loaded, in
    this process or in a spawned worker (the config is pickled to it), and a worker logs as the
    gateway does."""

    def __init__(self, gateway: GatewayConfig, **kwargs: Any) -> None:
        self.gateway = gateway
        super().__init__("stemedb.gateway._app:build_app", **kwargs)

    def load_app(self) -> Any:
        return build_app(self.gateway)

    def configure_logging(self) -> None:
        super().configure_logging()
        configure_logging(self.gateway.log_level.upper(), self.gateway.log_format, "gateway")


def uvicorn_config(config: GatewayConfig) -> uvicorn.Config:
    host, port = parse_host_port(config.listen)
    return _Config(
        config,
        host=host,
        port=port,
        lifespan="on",
        # uvloop and httptools (C parsers), both dependencies: named, not "auto", so that a
        # broken install fails at start instead of silently serving on asyncio and h11.
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_keep_alive=int(max(1, config.keep_alive_seconds)),
        timeout_graceful_shutdown=int(max(1, config.shutdown_seconds)),
        limit_concurrency=config.connections_max,
        server_header=False,
        proxy_headers=False,
        workers=config.workers,
    )


def serve(config: GatewayConfig) -> None:
    uv = uvicorn_config(config)
    if config.workers == 1:
        _Server(uv).run()
        return
    # The workers' metrics are summed through files (see _metrics); a directory of our own unless
    # the operator named one. Set before the workers are spawned: they inherit it.
    own = MULTIPROCESS_DIR_ENV not in os.environ
    if own:
        os.environ[MULTIPROCESS_DIR_ENV] = tempfile.mkdtemp(prefix="stemedb-gateway-metrics-")
    socket = uv.bind_socket()
    try:
        Multiprocess(uv, sockets=[socket]).run()
    finally:
        socket.close()
        if own:
            shutil.rmtree(os.environ.pop(MULTIPROCESS_DIR_ENV), ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(argv)
    configure_logging(config.log_level.upper(), config.log_format, "gateway")
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
