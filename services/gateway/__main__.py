"""``stemedb-gateway``: serve the HTTP/JSON API and the explorer with uvicorn.

SIGTERM (or Ctrl-C) stops accepting connections, lets requests in flight finish (bounded by
``shutdown_seconds``), closes the gRPC channels and exits 0.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence

import uvicorn

from stemedb.gateway._app import build_app
from stemedb.gateway._config import GatewayConfig, config_from_args
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


def serve(config: GatewayConfig) -> None:
    host, port = parse_host_port(config.listen)
    server = _Server(
        uvicorn.Config(
            build_app(config),
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
        )
    )
    server.run()


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(argv)
    configure_logging(config.log_level.upper(), config.log_format, "gateway")
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
