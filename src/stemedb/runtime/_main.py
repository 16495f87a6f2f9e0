"""The ``main`` of every service: logs (JSON or console), run the server, say plainly why it
cannot start."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import disable_created_metrics

from stemedb.runtime._logging import configure_logging, log_event

__all__ = ["run_service"]


def _loop_factory(event_loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if event_loop == "asyncio":
        return None
    if event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    raise ValueError(f"--event-loop: unknown loop {event_loop!r}")


def run_service(
    prog: str,
    logger: logging.Logger,
    log_level: str,
    serve: Callable[[], Coroutine[Any, Any, int | None]],
    startup_errors: tuple[type[BaseException], ...],
    *,
    other_errors: tuple[type[BaseException], ...] = (),
    log_format: str = "auto",
    event_loop: str = "asyncio",
) -> int:
    """Run ``serve()`` to its end and return the exit code: its own, or 2 when it raises one of
    ``startup_errors`` (corruption, a second writer, a port in use: "cannot start") or of
    ``other_errors`` ("failed"), logged and printed on stderr with ``prog`` in front. Logs go
    to stderr in ``log_format`` (``--log-format``: json, console or auto); ``event_loop``
    (``--event-loop``) is asyncio's own loop or uvloop."""
    service = prog.removeprefix("stemedb-")
    configure_logging(log_level, log_format, service)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        with asyncio.Runner(loop_factory=_loop_factory(event_loop)) as runner:
            return runner.run(serve()) or 0
    except startup_errors as exc:
        log_event(logger, logging.CRITICAL, f"{service} cannot start", error=str(exc))
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except other_errors as exc:
        log_event(logger, logging.CRITICAL, f"{service} failed", error=repr(exc))
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
