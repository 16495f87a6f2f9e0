"""The ASGI app: routes, problem+json errors, metrics, the OpenAPI document, the explorer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stemedb.gateway._backends import Backends
from stemedb.gateway._config import GatewayConfig
from stemedb.gateway._errors import GatewayError, problem_response
from stemedb.gateway._fast import FastRouter
from stemedb.gateway._metrics import GatewayMetrics, MetricsMiddleware, exposition
from stemedb.gateway._openapi import openapi_document, render_docs
from stemedb.gateway._routes import Handlers
from stemedb.runtime import log_event

__all__ = ["build_app"]

_log = logging.getLogger("stemedb.gateway")
Endpoint = Callable[[Request], Awaitable[Response]]
VERSION = "0.1.0"


def _static_dir() -> str:
    return str(files("stemedb.gateway") / "static")


def _refusal(exc: Exception, template: str, path: str, metrics: GatewayMetrics) -> Response:
    """A handler's exception as its answer: a GatewayError as problem+json (counting refused
    bodies), anything else logged and answered 500."""
    if isinstance(exc, GatewayError):
        if exc.status == 413:
            metrics.body_refused.labels("too_large").inc()
        elif exc.status == 408:
            metrics.body_refused.labels("too_slow").inc()
        return problem_response(exc, instance=path)
    _log.error("unhandled error in %s", template, exc_info=exc)
    return problem_response(
        GatewayError(500, "internal error in the gateway; see its log"), instance=path
    )


def _endpoint(template: str, handler: Endpoint, metrics: GatewayMetrics) -> Endpoint:
    """For Starlette's routes: name the request's route for the metrics and render refusals as
    problem+json (the fast path does both itself)."""

    template = template.replace(":path", "")

    async def endpoint(request: Request) -> Response:
        request.scope["stemedb.route"] = template
        try:
            return await handler(request)
        except Exception as exc:
            return _refusal(exc, template, request.url.path, metrics)

    return endpoint


def build_app(config: GatewayConfig, registry: CollectorRegistry | None = None) -> FastRouter:
    """The gateway's ASGI app. gRPC channels open at startup and close at shutdown."""
    registry = registry or CollectorRegistry()
    metrics = GatewayMetrics(registry)
    doc = openapi_document(VERSION)
    docs_html = render_docs(doc)
    state: dict[str, Handlers] = {}

    def handlers() -> Handlers:
        return state["handlers"]

    def bound(name: str) -> Endpoint:
        async def call(request: Request) -> Response:
            fn: Endpoint = getattr(handlers(), name)
            return await fn(request)

        return call

    async def metrics_endpoint(request: Request) -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi_endpoint(request: Request) -> Response:
        return JSONResponse(doc)

    async def docs_endpoint(request: Request) -> Response:
        return HTMLResponse(docs_html)

    async def explorer(request: Request) -> Response:
        return FileResponse(f"{_static_dir()}/index.html", media_type="text/html")

    table: list[tuple[str, str, str]] = [
        ("POST", "/v1/assertions", "append_assertion"),
        ("POST", "/v1/votes", "append_vote"),
        ("POST", "/v1/epochs", "append_epoch"),
        ("POST", "/v1/batch", "append_batch"),
        ("GET", "/v1/query", "query"),
        ("GET", "/v1/subjects/{subject:path}", "subject"),
        ("GET", "/v1/records/{hash}", "record"),
        ("GET", "/v1/assertions/{hash}/tally", "tally"),
        ("GET", "/v1/assertions/{hash}/votes", "votes"),
        ("GET", "/v1/history", "history"),
        ("GET", "/v1/lenses", "lenses"),
        ("GET", "/v1/records/{hash}/lsns", "record_lsns"),
        ("GET", "/v1/checkpoint", "checkpoint"),
        ("GET", "/v1/proofs/inclusion", "inclusion_proof"),
        ("GET", "/v1/proofs/consistency", "consistency_proof"),
        ("POST", "/assert", "append_assertion"),
        ("POST", "/vote", "append_vote"),
        ("GET", "/query", "query"),
        ("GET", "/healthz", "healthz"),
    ]
    routes: list[Route | Mount] = [
        Route(path, _endpoint(path, bound(name), metrics), methods=[method])
        for method, path, name in table
    ]
    plain: list[tuple[str, Endpoint]] = [
        ("/metrics", metrics_endpoint),
        ("/openapi.json", openapi_endpoint),
        ("/docs", docs_endpoint),
        ("/", explorer),
    ]
    routes += [Route(path, _endpoint(path, fn, metrics), methods=["GET"]) for path, fn in plain]
    routes.append(
        Mount(
            "/static", app=StaticFiles(directory=_static_dir(), follow_symlink=True), name="static"
        )
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        if status == 404:
            detail = f"no route {request.url.path}; see /docs"
        elif status == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        response = problem_response(GatewayError(status, str(detail)), request.url.path)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        backends = Backends(config)
        state["handlers"] = Handlers(config, backends, metrics)
        # The fast path calls the handlers' methods directly, bound once here.
        fast.clear()
        for method, path, name in table:
            fast.add(method, path, getattr(state["handlers"], name))
        log_event(
            _log, logging.INFO, "gateway serving", listen=config.listen,
            writer=config.write_target, store=config.store,
        )  # fmt: skip
        try:
            yield
        finally:
            await backends.close()
            log_event(_log, logging.INFO, "gateway stopped")

    exception_handlers: dict[Any, Any] = {HTTPException: http_error}
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=exception_handlers)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    fast = FastRouter(
        app, metrics, lambda exc, template, path: _refusal(exc, template, path, metrics)
    )
    return fast
