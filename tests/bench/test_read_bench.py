"""Read-path benchmark: Get at 16 concurrent calls beside etcd's Range of the same value size
(same load generator, separate processes), and the time from a writer's ack to visibility in
the ingestor at 1,000 records/s. Run with ``make bench``; results in build/bench/reads.json."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import grpc
import grpc.aio
import pytest

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
    results: dict[str, dict[str, float]] = {}
    try:
        writer.wait_ready()
        ingestor.wait_ready()
        hashes, last_lsn = _populate(writer.listen)
        with grpc.insecure_channel(ingestor.listen) as ch:
            first = store_pb2_grpc.StoreServiceStub(ch).Get(
                spb.GetRequest(key=b"H:" + hashes[0].hex().encode(), min_lsn=last_lsn), timeout=60
            )
        value_bytes = len(first.value)
        gets = [spb.GetRequest(key=b"H:" + h.hex().encode()).SerializeToString() for h in hashes]
        with grpc.insecure_channel(etcd.target) as ch:
            put = ch.unary_unary(harness.ETCD_PUT)
            for i in range(KEYS):
                put(harness.etcd_put(f"r/{i:06d}".encode(), b"v" * value_bytes), timeout=10)
        ranges = [harness.etcd_range(f"r/{i:06d}".encode()) for i in range(KEYS)]
        for name, tgt, method, reqs, pid in (
            ("stemedb Get c=16", ingestor.listen, "/stemedb.v1.StoreService/Get", gets,
             ingestor.proc.pid),
            ("etcd Range c=16", etcd.target, harness.ETCD_RANGE, ranges, etcd.proc.pid),
        ):  # fmt: skip
            runs = [harness.load(tgt, method, reqs, 16, SECONDS, pid) for _ in range(REPS)]
            results[name] = harness.summarize(runs)
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
        results["value bytes"] = {"records_per_s_median": float(value_bytes)}
    finally:
        writer.terminate()
        ingestor.terminate()
        etcd.stop()
    harness.save("reads", results)
    g, r = results["stemedb Get c=16"], results["etcd Range c=16"]
    v = results["ack to visible at 1000/s"]
    print(
        f"\nGet c=16: {g['calls_per_s_median']:,.0f}/s p50 {g['p50_ms']:.2f} ms "
        f"p99 {g['p99_ms']:.2f} ms CPU {g['server_cpu_us_per_call']:.0f} us/call\n"
        f"etcd Range c=16: {r['calls_per_s_median']:,.0f}/s p50 {r['p50_ms']:.2f} ms "
        f"p99 {r['p99_ms']:.2f} ms CPU {r['server_cpu_us_per_call']:.0f} us/call\n"
        f"ack->visible at 1000/s: p50 {v['p50_ms']:.2f} ms p99 {v['p99_ms']:.2f} ms"
    )
    assert g["calls_per_s_median"] > 0 and r["calls_per_s_median"] > 0
