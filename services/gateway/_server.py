"""Serving the app: uvicorn's server and config as the gateway needs them, and its workers.

SIGTERM (or Ctrl-C) stops accepting connections, lets requests in flight finish (bounded by
``shutdown_seconds``), closes the gRPC channels and exits 0. With ``--workers N`` (N > 1) this
process binds the socket and supervises N worker processes (uvicorn's ``Multiprocess``: spawned,
restarted when one dies); each worker builds its own app and channels from the same
:class:`GatewayConfig`, and SIGTERM reaches every worker through the supervisor.

A request's head (request line and headers) must arrive within ``head_read_seconds``: counted
from the connection for its first request and from the head's first byte after that (an idle
keep-alive connection is uvicorn's ``keep_alive_seconds``). Beyond it the connection is answered
408 and closed, or just closed when nothing of a request came; without this bound a client that
opens connections and never finishes a head holds them forever, up to ``connections_max``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from stemedb.gateway._app import build_app
from stemedb.gateway._config import GatewayConfig
from stemedb.gateway._errors import PROBLEM_JSON, GatewayError
from stemedb.gateway._metrics import MULTIPROCESS_DIR_ENV
from stemedb.runtime import configure_logging, parse_host_port

__all__ = ["HEAD_TIMEOUT_RESPONSE", "serve", "uvicorn_config"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HEAD_TIMEOUT_BODY = json.dumps(
    GatewayError(408, "the request's line and headers did not arrive in time").body()
).encode()
HEAD_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: %s\r\n" % (
    PROBLEM_JSON.encode()
) + b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (
    len(_HEAD_TIMEOUT_BODY),
    _HEAD_TIMEOUT_BODY,
)


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


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head (see the module)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        gateway = getattr(config, "gateway", None)
        self._head_seconds = (gateway or GatewayConfig()).head_read_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_started = False

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_started:
            self.transport.write(HEAD_TIMEOUT_RESPONSE)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._head_started = False
        super().on_headers_complete()


def uvicorn_config(config: GatewayConfig) -> uvicorn.Config:
    host, port = parse_host_port(config.listen)
    return _Config(
        config,
        host=host,
        port=port,
        lifespan="on",
        # uvloop and httptools (C parsers), both dependencies, named rather than "auto" (the
        # protocol is httptools'), so that a broken install fails at start instead of silently
        # serving on asyncio and h11.
        loop="uvloop",
        http=HeadTimeoutProtocol,
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
