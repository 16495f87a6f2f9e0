"""The API routes' fast path: one precompiled dispatch from (method, path) to the endpoint.

Starlette's router walks every route's regular expression and wraps each request in three
middleware layers (errors, exceptions, metrics), each with its own ``send`` wrapper. On the API's
routes none of that is needed: the endpoints render their own refusals as problem+json
(``_app._endpoint``). :class:`FastRouter` matches an exact path with one dict lookup and a
templated one (``/v1/records/{hash}``) with one combined expression, calls the endpoint, sends
its response straight to the server and counts it. Everything else (another method, HEAD, the
explorer's files, /docs, unknown paths, the lifespan) goes to the Starlette app unchanged, which
answers 404 and 405 as problem+json.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from stemedb.gateway._metrics import GatewayMetrics

__all__ = ["FastRouter", "JSONBody"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]
# What an endpoint's exception becomes: (exception, route template, request path) -> response.
Refuse = Callable[[Exception, str, str], Response]

_JSON_TYPE = (b"content-type", b"application/json")


class JSONBody(Response):
    """Starlette's ``JSONResponse`` (the same headers; the same compact UTF-8 body, except that
    a float may be spelled differently, ``1e-7`` for ``1e-07``, and a non-finite one is
    ``null``), encoded by orjson in about a tenth of the time of the json module, its raw
    headers written directly rather than through Starlette's header machinery."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200) -> None:
        body = orjson.dumps(content)
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]


# A path parameter is one segment, as Starlette's default; {name:path} may hold "/".
_PARAM = re.compile(r"\{([a-z_]+)(:path)?\}")


class FastRouter:
    """An ASGI app: the API routes here, everything else to ``fallback`` (see the module)."""

    def __init__(
        self, fallback: ASGIApp, metrics: GatewayMetrics, refuse: Refuse | None = None
    ) -> None:
        self.fallback = fallback
        self.metrics = metrics
        self.refuse = refuse
        self._exact: dict[tuple[str, str], tuple[str, Endpoint]] = {}
        self._templated: list[tuple[str, str, Endpoint]] = []
        self._alternatives: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self._observers: dict[tuple[str, str, int], Callable[[float], None]] = {}

    def clear(self) -> None:
        """Forget every route (the app routes its handlers anew each time it starts)."""
        self._exact.clear()
        self._templated.clear()
        self._alternatives.clear()
        self._pattern = None

    def add(self, method: str, path: str, endpoint: Endpoint) -> None:
        """Route ``method path`` (Starlette's syntax: ``/v1/records/{hash}``,
        ``/v1/subjects/{subject:path}``) to ``endpoint``; metrics name it by its template."""
        template = path.replace(":path", "")
        if _PARAM.search(path) is None:
            self._exact[(method, path)] = (template, endpoint)
            return
        i = len(self._templated)

        def group(m: re.Match[str]) -> str:
            # A {name:path} parameter is any characters, newlines too (a subject may hold one).
            return f"(?P<{m.group(1)}_{i}>{'(?s:.*)' if m.group(2) else '[^/]+'})"

        literal = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
        self._templated.append((method, template, endpoint))
        self._alternatives.append(f"(?P<r{i}>{_PARAM.sub(group, literal)})")
        self._pattern = re.compile("^(?:" + "|".join(self._alternatives) + ")$")

    def _match(self, method: str, path: str) -> tuple[str, Endpoint, dict[str, str]] | None:
        hit = self._exact.get((method, path))
        if hit is not None:
            return hit[0], hit[1], {}
        m = self._pattern.match(path) if self._pattern is not None else None
        if m is None:
            return None
        # Route i's group is "r<i>", its parameters "<name>_<i>".
        for i, (route_method, template, endpoint) in enumerate(self._templated):
            if m.group(f"r{i}") is None:
                continue
            if route_method != method:
                return None  # the same path under another method: Starlette answers 405
            suffix = f"_{i}"
            params = {
                k.removesuffix(suffix): v
                for k, v in m.groupdict().items()
                if k.endswith(suffix) and not k.startswith("r") and v is not None
            }
            return template, endpoint, params
        return None

    def _observer(self, template: str, method: str, status: int) -> Callable[[float], None]:
        """The counter's and the histogram's children for this label set, bound once."""
        key = (template, method, status)
        observe = self._observers.get(key)
        if observe is None:
            count = self.metrics.requests.labels(template, method, str(status)).inc
            record = self.metrics.duration.labels(template, method).observe

            def observe(seconds: float) -> None:
                count()
                record(seconds)

            self._observers[key] = observe
        return observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.fallback(scope, receive, send)
            return
        method = scope["method"]
        hit = self._match(method, scope["path"])
        if hit is None:
            await self.fallback(scope, receive, send)
            return
        template, endpoint, params = hit
        start = time.perf_counter()
        scope["path_params"] = params
        status = 500
        try:
            try:
                response = await endpoint(Request(scope, receive))
            except Exception as exc:
                if self.refuse is None:
                    raise
                response = self.refuse(exc, template, scope["path"])
            status = response.status_code
            await send(
                {"type": "http.response.start", "status": status, "headers": response.raw_headers}
            )
            await send({"type": "http.response.body", "body": response.body})
        finally:
            self._observer(template, method, status)(time.perf_counter() - start)
