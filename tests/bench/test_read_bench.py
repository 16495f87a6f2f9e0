"""Read-path benchmark, one run, rounds interleaved (same load generator, separate processes):
Get at 16 in flight with the read cache on (the default) and off (a second ingestor over the
same WAL with ``--read-cache-bytes-max 0``) beside etcd's Range of the same value size; Get and
Resolve at 1 in flight; BatchGet of 16 keys against 16 Gets (keys/s at 4 calls in flight); and
the time from a writer's ack to visibility in the ingestor at 1,000 records/s. Run with
``make bench``; results in build/bench/reads.json."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from stemedb.v1 import query_pb2 as qpb
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import writer_pb2 as wpb
from tests.bench import harness
from tests.bench.test_writer_bench import _assertion
from tests.support import start_ingestor, start_writer

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("STEMEDB_BENCH_SECONDS", "3"))
REPS = int(os.environ.get("STEMEDB_BENCH_REPS", "3"))
KEYS = 10_000
BATCH_KEYS = 16
GET = "/stemedb.v1.StoreService/Get"


def _populate(writer_target: str) -> tuple[list[bytes], int]:
    hashes: list[bytes] = []
    lsn = 0
    with grpc.insecure_channel(writer_target) as ch:
        stub = writer_pb2_grpc.WriterServiceStub(ch)
        for start in range(0, KEYS, 1000):
            recs = [pb.Record(assertion=_assertion(i, False)) for i in range(start, start + 1000)]
            resp = stub.AppendBatch(wpb.AppendBatchRequest(records=recs), timeout=60)
            hashes.extend(r.hash for r in resp.receipts)
            lsn = resp.receipts[-1].lsn
    return hashes, lsn


async def _ack_to_visible(writer: str, store: str, rate: float, seconds: float) -> list[float]:
    """Append at ``rate`` records/s; for each ack, time until Get(min_lsn) sees it."""
    delays: list[float] = []
    async with grpc.aio.insecure_channel(writer) as wch, grpc.aio.insecure_channel(store) as sch:
        wstub = writer_pb2_grpc.WriterServiceStub(wch)
        sstub = store_pb2_grpc.StoreServiceStub(sch)

        async def one(i: int) -> None:
            a = _assertion(10_000_000 + i, False)
            r = (await wstub.AppendAssertion(wpb.AppendAssertionRequest(assertion=a))).receipt
            acked = time.perf_counter()
            key = b"H:" + r.hash.hex().encode()
            got = await sstub.Get(spb.GetRequest(key=key, min_lsn=r.lsn), timeout=10)
            assert got.found
            delays.append(time.perf_counter() - acked)

        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            target = start + i / rate
            now = time.perf_counter()
            if target > now:
                await asyncio.sleep(target - now)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return delays


def test_reads_against_etcd(tmp_path: Path) -> None:
    etcd = harness.Etcd()
    writer = start_writer(tmp_path / "wal")
    ingestor = start_ingestor(tmp_path / "wal", tmp_path / "db")
    uncached = start_ingestor(
        tmp_path / "wal", tmp_path / "db0", "--name", "nocache", "--read-cache-bytes-max", "0"
    )
    results: dict[str, dict[str, float]] = {}
    try:
        writer.wait_ready()
        ingestor.wait_ready()
        uncached.wait_ready()
        hashes, last_lsn = _populate(writer.listen)
        for ing in (ingestor, uncached):
            with grpc.insecure_channel(ing.listen) as ch:
                first = store_pb2_grpc.StoreServiceStub(ch).Get(
                    spb.GetRequest(key=b"H:" + hashes[0].hex().encode(), min_lsn=last_lsn),
                    timeout=60,
                )
        value_bytes = len(first.value)
        keys = [b"H:" + h.hex().encode() for h in hashes]
        gets = [spb.GetRequest(key=k).SerializeToString() for k in keys]
        batches = [
            spb.BatchGetRequest(keys=keys[i : i + BATCH_KEYS]).SerializeToString()
            for i in range(0, KEYS - BATCH_KEYS + 1, BATCH_KEYS)
        ]
        resolves = [
            qpb.ResolveRequest(subject=f"urn:bench:{i}", predicate="observed").SerializeToString()
            for i in range(KEYS)
        ]
        with grpc.insecure_channel(etcd.target) as ch:
            put = ch.unary_unary(harness.ETCD_PUT)
            for i in range(KEYS):
                put(harness.etcd_put(f"r/{i:06d}".encode(), b"v" * value_bytes), timeout=10)
        ranges = [harness.etcd_range(f"r/{i:06d}".encode()) for i in range(KEYS)]
        sp, up, ep = ingestor.proc.pid, uncached.proc.pid, etcd.proc.pid
        work = [
            ("stemedb Get c=16", ingestor.listen, GET, gets, 16, sp),
            ("stemedb Get c=16 no cache", uncached.listen, GET, gets, 16, up),
            ("etcd Range c=16", etcd.target, harness.ETCD_RANGE, ranges, 16, ep),
            ("stemedb Get c=1", ingestor.listen, GET, gets, 1, sp),
            ("stemedb Resolve c=1", ingestor.listen, "/stemedb.v1.QueryService/Resolve",
             resolves, 1, sp),
            ("stemedb Get c=4", ingestor.listen, GET, gets, 4, sp),
            (f"stemedb BatchGet {BATCH_KEYS} c=4", ingestor.listen,
             "/stemedb.v1.StoreService/BatchGet", batches, 4, sp),
        ]  # fmt: skip
        runs: dict[str, list[harness.Run]] = {w[0]: [] for w in work}
        replicas = [(ingestor.listen, sp), (uncached.listen, up)]
        runs["stemedb Get c=16 over 2 replicas"] = []
        for _ in range(REPS):  # interleaved: each round runs every workload once
            for name, tgt, method, reqs, concurrency, pid in work:
                runs[name].append(harness.load(tgt, method, reqs, concurrency, SECONDS, pid))
            runs["stemedb Get c=16 over 2 replicas"].append(_over_replicas(replicas, gets, 16))
        for name, measured in runs.items():
            per_call = BATCH_KEYS if name.startswith("stemedb BatchGet") else 1
            results[name] = _summary(measured, per_call)
        results["value bytes"] = {"records_per_s_median": float(value_bytes)}
        harness.save("reads", results)  # the read figures stand even if the next part fails
        visible = [
            asyncio.run(_ack_to_visible(writer.listen, ingestor.listen, 1000.0, SECONDS))
            for _ in range(REPS)
        ]
        results["ack to visible at 1000/s"] = {
            "p50_ms": statistics.median(harness.pct(v, 0.5) * 1e3 for v in visible),
            "p99_ms": statistics.median(harness.pct(v, 0.99) * 1e3 for v in visible),
            "max_ms": max(max(v) for v in visible) * 1e3,
            "records_per_s_median": 1000.0,
        }
    finally:
        writer.terminate()
        ingestor.terminate()
        uncached.terminate()
        etcd.stop()
    harness.save("reads", results)
    for name, r in results.items():
        if "calls_per_s_median" in r:
            print(
                f"\n{name}: {r['calls_per_s_median']:,.0f}/s [{r['records_per_s_min']:,.0f}-"
                f"{r['records_per_s_max']:,.0f} keys/s] p50 {r['p50_ms']:.2f} ms "
                f"[{r['p50_ms_min']:.2f}-{r['p50_ms_max']:.2f}] p99 {r['p99_ms']:.2f} ms "
                f"[{r['p99_ms_min']:.2f}-{r['p99_ms_max']:.2f}] CPU "
                f"{r['server_cpu_us_per_call']:.0f} us/call",
                end="",
            )
    v = results["ack to visible at 1000/s"]
    print(f"\nack->visible at 1000/s: p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms")
    assert all(not r.get("errors") for r in results.values()), results
    assert results["stemedb Get c=16"]["calls_per_s_median"] > 0


def _over_replicas(
    replicas: list[tuple[str, int]], requests: list[bytes], concurrency: int
) -> harness.Run:
    """The read half of lever 5 as deployed today: read replicas (each its own RocksDB, tailing
    the one WAL) with client-side round-robin, here ``concurrency`` calls split evenly, one
    load generator process per replica, run at the same time; CPU is both servers'."""
    per = concurrency // len(replicas)
    with concurrent.futures.ThreadPoolExecutor(len(replicas)) as pool:
        futures = [
            pool.submit(harness.load, target, GET, requests, per, SECONDS, pid, 1)
            for target, pid in replicas
        ]
        parts = [f.result() for f in futures]
    return harness.Run(
        calls=sum(r.calls for r in parts),
        seconds=max(r.seconds for r in parts),
        latencies=[x for r in parts for x in r.latencies],
        server_cpu_seconds=sum(r.server_cpu_seconds for r in parts),
        errors={k: sum(r.errors.get(k, 0) for r in parts) for r in parts for k in r.errors},
    )


def _summary(runs: list[harness.Run], keys_per_call: int) -> dict[str, Any]:
    """harness.summarize, plus the min and max over repetitions of p50, p99 and CPU per call."""
    out = harness.summarize(runs, keys_per_call)
    for q, name in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        values = [harness.pct(r.latencies, q) * 1e3 for r in runs]
        out[f"{name}_min"], out[f"{name}_max"] = min(values), max(values)
    cpu = [r.server_cpu_seconds / max(1, r.calls) * 1e6 for r in runs]
    out["server_cpu_us_per_call_min"], out["server_cpu_us_per_call_max"] = min(cpu), max(cpu)
    return out
