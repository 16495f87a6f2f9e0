"""GET /v1/query through the gateway against the gRPC Resolve it wraps (issue 13's benchmark).

p50 latency with one request in flight, and requests/s with 16 in flight, both measured from
this process: a grpc.aio client for Resolve, and a minimal keep-alive HTTP/1.1 client on asyncio
streams for the gateway (so the client's own cost stays small next to the server's). For the
p50s the calls to the three (Resolve, each gateway) alternate one by one; the rates are measured
one after the other; REPETITIONS times, on the same stack. The figures are medians with min and
max, and the ratios and differences are taken within each repetition. Targets: the gateway adds
at most 0.5 ms at p50 and holds at least 50% of the gRPC rate. A second gateway with
``--workers 2`` on the same stack is measured in the same repetitions (its A/B against the
one-process gateway, alternating which of the two goes first for the rates). ``make bench``
runs it; results go to build/bench/gateway.json, rendered by tools/bench_report.py
(``_gateway``).
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
from tests.bench.harness import save, tree_cpu_seconds
from tests.gateway.gwstack import Gateway, running_gateway, signed_assertion_json, vote_json

REPETITIONS = 3
SEQUENTIAL = 1000
CONCURRENCY = 16
WORKERS = 2
RATE_SECONDS = 4.0
PATH = "/v1/query?subject=Q1&predicate=name"
TARGET_P50_OVERHEAD_MS = 0.5
TARGET_RATE_RATIO = 0.5


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


async def _p50s(calls: dict[str, tuple[Any, Any]]) -> dict[str, dict[str, float]]:
    """p50 and p99 of each ``name: (call, client)`` at one request in flight, the calls
    interleaved one by one (the first of each turn rotating), so that the machine's drift and
    bursts of noise fall on all of them alike and the differences of their p50s are the servers'
    own; measuring them in blocks one after the other made those differences swing by 1 ms
    between repetitions on this machine."""
    names = list(calls)
    for name in names:
        call, client = calls[name]
        for _ in range(200):  # warm up
            await call(client)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(SEQUENTIAL):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            call, client = calls[name]
            t = time.perf_counter()
            await call(client)
            samples[name].append(time.perf_counter() - t)
    return {
        name: {
            "p50_ms": statistics.median(s) * 1000,
            "p99_ms": statistics.quantiles(s, n=100)[98] * 1000,
        }
        for name, s in samples.items()
    }


async def _rate(call: Any, clients: list[Any], pid: int) -> dict[str, float]:
    """Requests/s at len(clients) in flight for RATE_SECONDS, and the CPU that process ``pid``
    (the server called: the gateway, or the ingestor for Resolve) spent per request."""
    done = 0
    end = time.monotonic() + RATE_SECONDS

    async def worker(client: Any) -> None:
        nonlocal done
        while time.monotonic() < end:
            await call(client)
            done += 1

    start, cpu = time.monotonic(), tree_cpu_seconds(pid)
    await asyncio.gather(*(worker(c) for c in clients))
    return {
        "rps_16": done / (time.monotonic() - start),
        "server_cpu_us_per_request": (tree_cpu_seconds(pid) - cpu) / max(1, done) * 1e6,
    }


def _summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"repetitions": len(runs)}
    for key in ("p50_ms", "p99_ms", "rps_16", "server_cpu_us_per_request"):
        values = [r[key] for r in runs]
        out[key] = statistics.median(values)
        out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return out


async def _run(
    ingestor: Any, targets: dict[str, tuple[int, int]]
) -> tuple[list[dict[str, float]], dict[str, list[dict[str, float]]]]:
    """REPETITIONS rounds of: gRPC Resolve, then each gateway (port, pid) in ``targets``, the
    gateways' order alternating between rounds."""
    channel = grpc.aio.insecure_channel(ingestor.listen)
    stub = query_pb2_grpc.QueryServiceStub(channel)  # type: ignore[no-untyped-call]
    req = query_pb2.ResolveRequest(subject="Q1", predicate="name")

    async def resolve(_: Any) -> None:
        resp = await stub.Resolve(req, timeout=10)
        assert resp.resolution.status == query_pb2.STATUS_RESOLVED

    async def query(conn: _Http) -> None:
        body = await conn.get(PATH)
        assert b"STATUS_RESOLVED" in body

    grpc_runs: list[dict[str, float]] = []
    http_runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for i in range(REPETITIONS):  # interleaved: the noise of the machine hits all of them
        # Fresh connections each time: the gateway closes idle ones after --keep-alive-seconds.
        conns = {name: await _Http.open(port) for name, (port, _) in targets.items()}
        p50s = await _p50s({"grpc": (resolve, None)} | {n: (query, c) for n, c in conns.items()})
        for c in conns.values():
            c.writer.close()
        grpc_runs.append(
            p50s["grpc"] | await _rate(resolve, [None] * CONCURRENCY, ingestor.proc.pid)
        )
        names = list(targets) if i % 2 == 0 else list(reversed(targets))
        for name in names:
            port, pid = targets[name]
            pool = [await _Http.open(port) for _ in range(CONCURRENCY)]
            http_runs[name].append(p50s[name] | await _rate(query, pool, pid))
            for c in pool:
                c.writer.close()
    await channel.close()
    return grpc_runs, http_runs


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
        flags = ["--writer", gw.stack.writer.listen, "--store", gw.stack.ingestor.listen]
        multi = Gateway(tmp_path / "gateway-workers.log", *flags, "--workers", str(WORKERS))
        try:
            multi.wait_listening()
            for url in (gw.url, multi.url):
                httpx.get(url + PATH + f"&min_lsn={last}", timeout=30)
            targets = {
                "one": (int(gw.url.rsplit(":", 1)[1]), gw.gateway.proc.pid),
                "workers": (multi.port, multi.proc.pid),
            }
            grpc_runs, http_runs = asyncio.run(_run(gw.stack.ingestor, targets))
        finally:
            multi.kill()
    one, workers = http_runs["one"], http_runs["workers"]
    overheads = [h["p50_ms"] - g["p50_ms"] for g, h in zip(grpc_runs, one, strict=True)]
    ratios = [h["rps_16"] / g["rps_16"] for g, h in zip(grpc_runs, one, strict=True)]
    w_ratios = [w["rps_16"] / h["rps_16"] for h, w in zip(one, workers, strict=True)]
    w_grpc = [w["rps_16"] / g["rps_16"] for g, w in zip(grpc_runs, workers, strict=True)]
    w_p50 = [w["p50_ms"] - h["p50_ms"] for h, w in zip(one, workers, strict=True)]
    figures = {
        "grpc_resolve": _summary(grpc_runs),
        "gateway_query": _summary(one),
        "p50_overhead_ms": statistics.median(overheads),
        "p50_overhead_ms_min": min(overheads),
        "p50_overhead_ms_max": max(overheads),
        "rate_ratio": statistics.median(ratios),
        "rate_ratio_min": min(ratios),
        "rate_ratio_max": max(ratios),
        "target_p50_overhead_ms": TARGET_P50_OVERHEAD_MS,
        "target_rate_ratio": TARGET_RATE_RATIO,
        "concurrency": CONCURRENCY,
        # The A/B of --workers: the same requests to a second gateway of WORKERS processes.
        "workers": WORKERS,
        "gateway_query_workers": _summary(workers),
        "workers_rate_ratio": statistics.median(w_ratios),
        "workers_rate_ratio_min": min(w_ratios),
        "workers_rate_ratio_max": max(w_ratios),
        "workers_rate_ratios": w_ratios,
        "workers_rate_ratio_of_grpc": statistics.median(w_grpc),
        "workers_p50_delta_ms": statistics.median(w_p50),
        "workers_p50_delta_ms_min": min(w_p50),
        "workers_p50_delta_ms_max": max(w_p50),
    }
    save("gateway", figures)
    print(json.dumps(figures, indent=2))
    assert all(r["rps_16"] > 0 for r in grpc_runs + one + workers)


# -- The gateway's gRPC call against the alternatives tried (issue 13's per-request cost) -------

CALL_ROUNDS = 6
CALL_SEQUENTIAL = 300
CALL_PER_WORKER = 40
CALL_POOL_THREADS = 4
# Channel options beyond the client's (which already turn gRPC's transparent retries off).
EXTRA_OPTIONS = [
    ("grpc.enable_http_proxy", 0),
    ("grpc.http2.bdp_probe", 0),
    ("grpc.keepalive_time_ms", 2**31 - 1),
]


async def _call_variants(target: str) -> dict[str, list[dict[str, float]]]:
    """Per round and variant (order alternating): CALL_SEQUENTIAL calls at 1 in flight (p50 and
    this process's CPU per call), then CONCURRENCY workers of CALL_PER_WORKER calls each."""
    import functools
    from concurrent.futures import ThreadPoolExecutor

    from stemedb.client._channel import _options
    from tests.bench.harness import _pb_bytes

    loop = asyncio.get_running_loop()
    plain = grpc.aio.insecure_channel(target, options=_options(None))
    tuned = grpc.aio.insecure_channel(target, options=_options(None) + EXTRA_OPTIONS)
    sync = grpc.insecure_channel(target, options=_options(None))
    pool = ThreadPoolExecutor(CALL_POOL_THREADS)
    stub = query_pb2_grpc.QueryServiceStub(plain)  # type: ignore[no-untyped-call]
    tuned_stub = query_pb2_grpc.QueryServiceStub(tuned)  # type: ignore[no-untyped-call]
    sync_stub = query_pb2_grpc.QueryServiceStub(sync)  # type: ignore[no-untyped-call]
    raw = plain.unary_unary("/stemedb.v1.QueryService/Resolve")

    def request() -> query_pb2.ResolveRequest:
        return query_pb2.ResolveRequest(subject="Q1", predicate="name")

    def raw_request() -> bytes:  # ResolveRequest{subject=1, predicate=2}, encoded by hand
        return _pb_bytes(1, b"Q1") + _pb_bytes(2, b"name")

    assert raw_request() == request().SerializeToString()

    async def aio() -> Any:
        return await stub.Resolve(request(), timeout=10)

    async def aio_options() -> Any:
        return await tuned_stub.Resolve(request(), timeout=10)

    async def aio_raw_bytes() -> Any:
        return query_pb2.ResolveResponse.FromString(await raw(raw_request(), timeout=10))

    async def sync_in_pool() -> Any:
        call = functools.partial(sync_stub.Resolve, request(), timeout=10)
        return await loop.run_in_executor(pool, call)

    variants = {f.__name__: f for f in (aio, aio_options, aio_raw_bytes, sync_in_pool)}
    expected = await aio()
    assert expected.resolution.status == query_pb2.STATUS_RESOLVED
    for fn in variants.values():
        for _ in range(200):  # warm up, and every variant answers the same
            assert await fn() == expected
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for i in range(CALL_ROUNDS):
        names = list(variants) if i % 2 == 0 else list(reversed(variants))
        for name in names:
            fn = variants[name]
            cpu, samples = time.process_time(), []
            for _ in range(CALL_SEQUENTIAL):
                t = time.perf_counter()
                await fn()
                samples.append(time.perf_counter() - t)
            cpu_1 = (time.process_time() - cpu) / CALL_SEQUENTIAL

            async def worker(fn: Any = fn) -> None:
                for _ in range(CALL_PER_WORKER):
                    await fn()

            cpu, start = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            calls = CONCURRENCY * CALL_PER_WORKER
            runs[name].append({
                "p50_ms": statistics.median(samples) * 1000,
                "client_cpu_us_per_call_1": cpu_1 * 1e6,
                "rps_16": calls / (time.perf_counter() - start),
                "client_cpu_us_per_call_16": (time.process_time() - cpu) / calls * 1e6,
            })  # fmt: skip
    pool.shutdown()
    sync.close()
    await plain.close()
    await tuned.close()
    return runs


@pytest.mark.bench
def test_gateway_grpc_call_variants(tmp_path: Path) -> None:
    """The gateway's Resolve call (a grpc.aio stub on uvloop) against the alternatives tried for
    its per-request cost, in this process against a real ingestor: a sync stub through
    run_in_executor on a small pool, more channel options, a raw-bytes multicallable with the
    request encoded by hand. Kept only if cheaper in every round."""
    import uvloop

    with running_gateway(tmp_path) as gw:
        keys = [AgentKey.generate() for _ in range(2)]
        w = httpx.post(
            gw.url + "/v1/assertions", json=signed_assertion_json(keys[0], "Q1", "name", "A")
        ).json()
        httpx.get(gw.url + PATH + f"&min_lsn={w['receipt']['lsn']}", timeout=30)
        runs = uvloop.run(_call_variants(gw.stack.ingestor.listen))
    base = runs["aio"]
    figures: dict[str, Any] = {
        "rounds": CALL_ROUNDS,
        "sequential": CALL_SEQUENTIAL,
        "concurrency": CONCURRENCY,
        "pool_threads": CALL_POOL_THREADS,
        "extra_options": [name for name, _ in EXTRA_OPTIONS],
    }
    for name, rs in runs.items():
        out: dict[str, Any] = {}
        for key in rs[0]:
            values = [r[key] for r in rs]
            out[key] = statistics.median(values)
            out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
        for key in ("client_cpu_us_per_call_1", "client_cpu_us_per_call_16", "p50_ms"):
            ratios = [r[key] / b[key] for r, b in zip(rs, base, strict=True)]
            out[f"{key}_ratio"] = statistics.median(ratios)
            out[f"{key}_ratio_min"], out[f"{key}_ratio_max"] = min(ratios), max(ratios)
        figures[name] = out
    save("gateway_grpc_call", figures)
    print(json.dumps(figures, indent=2))
    assert all(r["rps_16"] > 0 for rs in runs.values() for r in rs)
