"""GET /v1/query through the gateway against the gRPC Resolve it wraps (issue 13's benchmark).

p50 latency with one request in flight, and requests/s with 16 in flight, both measured from
this process: a grpc.aio client for Resolve, and a minimal keep-alive HTTP/1.1 client on asyncio
streams for the gateway (so the client's own cost stays small next to the server's). Targets:
the gateway adds at most 0.5 ms at p50 and holds at least 50% of the gRPC rate. Run with
``pytest -m bench -s tests/gateway/test_gateway_bench.py``; results go to build/bench/gateway.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
import pytest

from stemedb.client import AgentKey
from stemedb.v1 import query_pb2, query_pb2_grpc
from tests.gateway.gwstack import running_gateway, signed_assertion_json, vote_json
from tests.support import ROOT

SEQUENTIAL = 2000
CONCURRENCY = 16
RATE_SECONDS = 5.0
PATH = "/v1/query?subject=Q1&predicate=name"


class _Http:
    """One keep-alive HTTP/1.1 connection; GET and read a Content-Length body."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Http:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> bytes:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise AssertionError(head)
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        return await self.reader.readexactly(length)


async def _measure(call: Any, clients: list[Any]) -> dict[str, float]:
    for _ in range(200):  # warm up
        await call(clients[0])
    samples = []
    for _ in range(SEQUENTIAL):
        t = time.perf_counter()
        await call(clients[0])
        samples.append(time.perf_counter() - t)
    done = 0
    end = time.monotonic() + RATE_SECONDS

    async def worker(client: Any) -> None:
        nonlocal done
        while time.monotonic() < end:
            await call(client)
            done += 1

    start = time.monotonic()
    await asyncio.gather(*(worker(c) for c in clients))
    return {
        "p50_ms": statistics.median(samples) * 1000,
        "p99_ms": statistics.quantiles(samples, n=100)[98] * 1000,
        "rps_16": done / (time.monotonic() - start),
    }


@pytest.mark.bench
def test_gateway_query_overhead(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw:
        keys = [AgentKey.generate() for _ in range(4)]
        a = httpx.post(
            gw.url + "/v1/assertions", json=signed_assertion_json(keys[0], "Q1", "name", "A")
        ).json()
        httpx.post(
            gw.url + "/v1/assertions", json=signed_assertion_json(keys[1], "Q1", "name", "B")
        )
        last = 0
        for k in keys[2:]:
            r = httpx.post(gw.url + "/v1/votes", json=vote_json(k, a["receipt"]["hash"], 1.0))
            last = r.json()["receipt"]["lsn"]
        httpx.get(gw.url + PATH + f"&min_lsn={last}", timeout=30)
        port = int(gw.url.rsplit(":", 1)[1])

        async def run() -> dict[str, Any]:
            channel = grpc.aio.insecure_channel(gw.stack.ingestor.listen)
            stub = query_pb2_grpc.QueryServiceStub(channel)  # type: ignore[no-untyped-call]
            req = query_pb2.ResolveRequest(subject="Q1", predicate="name")

            async def resolve(_: Any) -> None:
                resp = await stub.Resolve(req, timeout=10)
                assert resp.resolution.status == query_pb2.STATUS_RESOLVED

            grpc_figures = await _measure(resolve, [None] * CONCURRENCY)
            await channel.close()
            conns = [await _Http.open(port) for _ in range(CONCURRENCY)]

            async def query(conn: _Http) -> None:
                body = await conn.get(PATH)
                assert b"STATUS_RESOLVED" in body

            http_figures = await _measure(query, conns)
            for c in conns:
                c.writer.close()
            return {"grpc_resolve": grpc_figures, "gateway_query": http_figures}

        figures = asyncio.run(run())
    g, h = figures["grpc_resolve"], figures["gateway_query"]
    figures["p50_overhead_ms"] = h["p50_ms"] - g["p50_ms"]
    figures["rate_ratio"] = h["rps_16"] / g["rps_16"]
    out = ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "gateway.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    assert g["rps_16"] > 0 and h["rps_16"] > 0
