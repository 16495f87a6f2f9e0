"""The API's fast path (services/gateway/_fast.py): what it matches itself, what it leaves to the
Starlette app, and that it counts each request under its route template."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from stemedb.gateway._fast import FastRouter
from stemedb.gateway._metrics import GatewayMetrics


def _router() -> tuple[FastRouter, GatewayMetrics]:
    def named(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return JSONResponse({"route": name, "params": dict(request.path_params)})

        return endpoint

    async def fallback(request: Request) -> Response:
        return PlainTextResponse("fallback " + request.method, status_code=299)

    starlette = Starlette(routes=[Route("/{rest:path}", fallback, methods=["GET", "POST"])])
    metrics = GatewayMetrics(CollectorRegistry())
    router = FastRouter(starlette, metrics)
    for method, template in (
        ("GET", "/v1/query"),
        ("POST", "/v1/assertions"),
        ("GET", "/v1/records/{hash}"),
        ("GET", "/v1/records/{hash}/lsns"),
        ("GET", "/v1/assertions/{hash}/votes"),
        ("GET", "/v1/subjects/{subject:path}"),
    ):
        router.add(method, template, named(f"{method} {template}"))
    return router, metrics


def test_fast_router_matches_routes_and_leaves_the_rest_to_starlette() -> None:
    router, metrics = _router()

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [
                await client.get("/v1/query?subject=a"),
                await client.post("/v1/assertions", json={}),
                await client.get("/v1/records/ab12"),
                await client.get("/v1/records/ab12/lsns"),
                await client.get("/v1/assertions/cd/votes"),
                await client.get("/v1/subjects/New%20York/and/more"),
                await client.post("/v1/query"),  # another method: the fallback (405 there)
                await client.post("/v1/records/ab12"),
                await client.get("/v1/records/ab12/other"),  # no such route
                await client.get("/v1/records/"),  # an empty segment is no hash
                await client.get("/static/explorer.js"),
            ]

    answers = asyncio.run(run())
    bodies = [r.json() if r.status_code == 200 else r.text for r in answers]
    assert bodies[:6] == [
        {"route": "GET /v1/query", "params": {}},
        {"route": "POST /v1/assertions", "params": {}},
        {"route": "GET /v1/records/{hash}", "params": {"hash": "ab12"}},
        {"route": "GET /v1/records/{hash}/lsns", "params": {"hash": "ab12"}},
        {"route": "GET /v1/assertions/{hash}/votes", "params": {"hash": "cd"}},
        {"route": "GET /v1/subjects/{subject:path}", "params": {"subject": "New York/and/more"}},
    ]
    assert bodies[6:] == ["fallback POST", "fallback POST"] + ["fallback GET"] * 3
    assert answers[0].headers["content-type"] == "application/json"
    assert int(answers[0].headers["content-length"]) == len(answers[0].content)

    registry = metrics.registry
    count = registry.get_sample_value(
        "stemedb_gateway_http_requests_total",
        {"route": "/v1/records/{hash}", "method": "GET", "code": "200"},
    )
    assert count == 1
    timed = registry.get_sample_value(
        "stemedb_gateway_http_request_duration_seconds_count",
        {"route": "/v1/subjects/{subject}", "method": "GET"},
    )
    assert timed == 1


def test_json_body_is_starlettes_json_response_but_for_float_spelling() -> None:
    """The handlers' JSONBody (orjson): the same status and raw headers as JSONResponse, and the
    same body bytes except where a float is spelled differently (``1e-7`` for ``1e-07``), where
    it is the same JSON value; a non-finite float, which JSONResponse refuses, is null."""
    import json

    from stemedb.gateway._fast import JSONBody

    same: list[Any] = [
        {},
        [],
        {"status": "STATUS_RESOLVED", "lsn": 2**64 - 1, "weight": 0.1, "ok": True, "none": None},
        {"subject": "Québec ✓ \U0001d518", "nested": [{"a": [1, 2, {"b": '\n"\\'}]}], "n": -0.0},
        {"control": "\x00\x1f\x7f\u2028", "min": -(2**63), "f": [0.30000000000000004, 1e16]},
    ]
    for content in same:
        for status in (200, 201):
            ours, theirs = JSONBody(content, status), JSONResponse(content, status_code=status)
            assert ours.status_code == theirs.status_code == status
            assert ours.body == theirs.body, content
            assert ours.raw_headers == theirs.raw_headers, content
    spelled = {"small": [1e-7, 1e-5, 5e-324], "big": 1.5e300}
    ours, theirs = JSONBody(spelled), JSONResponse(spelled)
    assert ours.body != theirs.body  # the case this test is about: 1e-7 against 1e-07
    assert json.loads(ours.body) == json.loads(theirs.body) == spelled
    assert ours.raw_headers[0] == (b"content-length", str(len(ours.body)).encode())
    for bad in (float("nan"), float("inf"), float("-inf")):
        try:
            JSONResponse({"x": bad})
        except ValueError:
            pass
        else:
            raise AssertionError("JSONResponse accepted a non-finite number")
        assert JSONBody({"x": bad}).body == b'{"x":null}'

    async def endpoint(request: Request) -> Response:
        return JSONBody({"route": "é"}, 201)

    starlette = Starlette(routes=[Route("/plain", endpoint)])
    router = FastRouter(starlette, GatewayMetrics(CollectorRegistry()))
    router.add("GET", "/v1/query", endpoint)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return [await client.get("/v1/query"), await client.get("/plain")]

    for resp in asyncio.run(go()):
        assert resp.status_code == 201
        assert resp.content == '{"route":"é"}'.encode()
        assert resp.headers["content-type"] == "application/json"
        assert resp.headers["content-length"] == str(len(resp.content))


def test_a_path_parameter_may_hold_a_newline() -> None:
    """Found by make fuzz's schemathesis run: /v1/subjects/{subject} with a newline in the
    subject fell through to Starlette, whose path pattern stops at a newline, and was a 404."""
    router, _ = _router()

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=router)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.get("/v1/subjects/line%0Aand%0Dmore/x")

    r = asyncio.run(run())
    assert r.status_code == 200, r.text
    assert r.json() == {
        "route": "GET /v1/subjects/{subject:path}",
        "params": {"subject": "line\nand\rmore/x"},
    }
