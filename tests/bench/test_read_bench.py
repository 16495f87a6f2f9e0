"""Read-path benchmark, one run, rounds interleaved (same load generator, separate processes):
Get at 16 in flight with the read cache on (the default) and off (a second ingestor over the
same WAL with ``--read-cache-bytes-max 0``) beside etcd's Range of the same value size; Get and
Resolve at 1 in flight; BatchGet of 16 keys against 16 Gets (keys/s at 4 calls in flight); and
the time from a writer's ack to visibility in the ingestor at 1,000 records/s (at most
ACK_IN_FLIGHT_MAX in flight; late sends, errors and the rate achieved are reported). Run with
``make bench``; results in build/bench/reads.json."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
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
ACK_RATE = 1000.0  # records/s offered by the ack-to-visible part
ACK_FIRST = 10_000_000  # its records' numbers, past the populated keys
ACK_IN_FLIGHT_MAX = 64  # its appends (each with its Get) in flight at once
CALL_SECONDS = 30.0  # the deadline of each of its calls


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


@dataclasses.dataclass
class AckRun:
    """One ack-to-visible repetition: delays of the records seen, and what went wrong."""

    delays: list[float]
    sent: int
    seconds: float
    late: int  # sends that waited for a free slot (ACK_IN_FLIGHT_MAX) past their schedule
    errors: dict[str, int]  # "<call> <status>": count; a missed call is counted, never raised


async def _ack_to_visible(
    writer: str, store: str, rate: float, seconds: float, first: int
) -> AckRun:
    """Append at ``rate`` records/s (records ``first``... are new in every repetition); for
    each ack, time until Get(min_lsn) sees it. At most ACK_IN_FLIGHT_MAX records are in flight:
    an open loop with no bound, once the machine falls behind, piles thousands of calls on two
    connections, measures that queue instead of the path, and the servers' gRPC layer then
    ends calls with CANCELLED (no record acknowledged is lost: those appends are not durable)."""
    delays: list[float] = []
    errors: dict[str, int] = {}
    slots = asyncio.Semaphore(ACK_IN_FLIGHT_MAX)
    late = 0
    async with grpc.aio.insecure_channel(writer) as wch, grpc.aio.insecure_channel(store) as sch:
        wstub = writer_pb2_grpc.WriterServiceStub(wch)
        sstub = store_pb2_grpc.StoreServiceStub(sch)

        async def one(i: int) -> None:
            call = "AppendAssertion"
            try:
                a = _assertion(first + i, False)
                request = wpb.AppendAssertionRequest(assertion=a)
                r = (await wstub.AppendAssertion(request, timeout=CALL_SECONDS)).receipt
                acked = time.perf_counter()
                call = "Get"
                key = b"H:" + r.hash.hex().encode()
                got = await sstub.Get(spb.GetRequest(key=key, min_lsn=r.lsn), timeout=CALL_SECONDS)
            except grpc.aio.AioRpcError as exc:
                name = f"{call} {exc.code().name}"
                errors[name] = errors.get(name, 0) + 1
                return
            finally:
                slots.release()
            if not got.found:
                errors["Get not found"] = errors.get("Get not found", 0) + 1
                return
            delays.append(time.perf_counter() - acked)

        tasks = []
        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            target = start + i / rate
            now = time.perf_counter()
            if target > now:
                await asyncio.sleep(target - now)
            if slots.locked():
                late += 1
            await slots.acquire()
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return AckRun(delays, n, elapsed, late, errors)


def _ack_summary(runs: list[AckRun]) -> dict[str, Any]:
    """Medians over repetitions; the rate is records seen per second; errors summed."""
    seen = [r for r in runs if r.delays]
    errors: dict[str, int] = {}
    for r in runs:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    pct = {q: [harness.pct(r.delays, q) * 1e3 for r in seen] for q in (0.5, 0.99)}
    rates = [len(r.delays) / r.seconds for r in runs]
    return {
        "p50_ms": statistics.median(pct[0.5]) if seen else float("nan"),
        "p99_ms": statistics.median(pct[0.99]) if seen else float("nan"),
        "p99_ms_min": min(pct[0.99], default=float("nan")),
        "p99_ms_max": max(pct[0.99], default=float("nan")),
        "max_ms": max((max(r.delays) for r in seen), default=float("nan")) * 1e3,
        "records_per_s_median": statistics.median(rates),
        "records_per_s_min": min(rates),
        "records_per_s_max": max(rates),
        "offered_per_s": runs[0].sent / max(r.seconds for r in runs) if runs else 0.0,
        "sent": sum(r.sent for r in runs),
        "seen": sum(len(r.delays) for r in runs),
        "late_sends": sum(r.late for r in runs),
        "in_flight_max": ACK_IN_FLIGHT_MAX,
        "errors": errors,
        "repetitions": len(runs),
    }


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
        n = int(ACK_RATE * SECONDS)
        visible = [
            asyncio.run(
                _ack_to_visible(
                    writer.listen, ingestor.listen, ACK_RATE, SECONDS, ACK_FIRST + k * n
                )
            )
            for k in range(REPS)
        ]
        results["ack to visible at 1000/s"] = _ack_summary(visible)
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
    print(
        f"\nack->visible at 1000/s: p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms "
        f"[{v['p99_ms_min']:.2f}-{v['p99_ms_max']:.2f}] seen {v['seen']}/{v['sent']} at "
        f"{v['records_per_s_median']:,.0f}/s, {v['late_sends']} late sends, errors {v['errors']}"
    )
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
