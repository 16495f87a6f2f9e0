"""Ingestor benchmarks: apply rate beside raw RocksDB, Get latency, ScanPrefix pages, RSS.

Run: ``.venv/bin/python -m pytest -m bench -s tests/bench/test_ingestor_bench.py``.
``STEMEDB_BENCH_INGEST_RECORDS`` sets the log size (default 200,000: the Lattice's views cut the
apply rate, docs/lattice.md; 2,000,000 before them). Prints a markdown table and writes
build/bench/ingestor.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
import rocksdict
from blake3 import blake3
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stemedb.ingestor import ApplyEngine, StoreDb, encode_page_token
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2, store_pb2_grpc
from stemedb.wal import SyncMode, Wal, WalConfig, WalReader
from stemedb.walrecord import TYPE_OF_KIND, encode_payload
from tests.bench import harness
from tests.support import free_port, wait_until

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "bench" / "ingestor.json"
RECORDS = int(os.environ.get("STEMEDB_BENCH_INGEST_RECORDS", "200000"))
REPS = 3
BIG_PREFIX_KEYS = 100_000
SMALL_PREFIX_KEYS = 100
GET_CONCURRENCY = 16
GET_CALLS_PER_REP = 8000
SCAN_CALLS_PER_REP = 500
IN_PROCESS_APPLY_RECORDS = 200_000


def _payload(i: int, subject: str) -> tuple[int, bytes]:
    # The ingestor trusts the writer's hash, so a cheap unique hash stands in for the canonical
    # one: generating two million canonical hashes would dominate the benchmark's run time.
    rec = pb.Record(
        assertion=pb.Assertion(
            subject=subject,
            predicate="located_in",
            object=pb.Value(text=f"value number {i}"),
            confidence=0.9,
            source_hash=bytes(32),
            signatures=[pb.SignatureEntry(public_key=bytes(32), signature=bytes(64))],
        )
    )
    h = blake3(i.to_bytes(8, "little")).digest()
    return TYPE_OF_KIND["assertion"], encode_payload(h, rec.SerializeToString())


def _subject_of(i: int) -> str:
    if i < SMALL_PREFIX_KEYS:
        return "small"
    if i < SMALL_PREFIX_KEYS + BIG_PREFIX_KEYS:
        return "big"
    return f"subject-{i % 50_000}"


def build_wal(wal_dir: Path, count: int) -> None:
    wal = Wal.open(WalConfig(dir=wal_dir, sync_mode=SyncMode.NONE))
    try:
        for start in range(0, count, 10_000):
            wal.append(
                [_payload(i, _subject_of(i)) for i in range(start, min(count, start + 10_000))]
            )
    finally:
        wal.close()


def raw_writebatch_rate(wal_dir: Path, tmp: Path, count: int) -> float:
    """The same puts (record key + subject index) through bare rocksdict WriteBatches."""
    with WalReader(wal_dir) as reader:
        records = []
        while len(records) < count and (chunk := reader.read_available(10_000)):
            records.extend(chunk)
    puts = []
    for r in records[:count]:
        h = r.payload[:32].hex().encode()
        puts.append((b"H:" + h, r.payload[32:]))
        puts.append((b"S:subject\x00" + h, r.payload[:32]))
    db = rocksdict.Rdict(str(tmp), rocksdict.Options(raw_mode=True))
    started = time.perf_counter()
    for i in range(0, len(puts), 8192):
        batch = rocksdict.WriteBatch(raw_mode=True)
        for k, v in puts[i : i + 8192]:
            batch.put(k, v)
        db.write(batch)
    elapsed = time.perf_counter() - started
    db.close()
    return len(records[:count]) / elapsed


def in_process_apply_rate(wal_dir: Path, tmp: Path, count: int) -> float:
    """WalReader + ApplyEngine, as the apply thread runs them, without the process around."""
    db = StoreDb(tmp)
    engine = ApplyEngine(db)
    applied = 0
    started = time.perf_counter()
    with WalReader(wal_dir) as reader:
        while applied < count and (records := reader.read_available(4096)):
            engine.apply(records)
            applied += len(records)
    elapsed = time.perf_counter() - started
    db.close()
    return applied / elapsed


async def _get_latencies(address: str, keys: list[bytes]) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = store_pb2_grpc.StoreServiceStub(channel)
        rng = random.Random(1)
        samples: list[float] = []

        async def worker(calls: int) -> None:
            for _ in range(calls):
                key = rng.choice(keys)
                started = time.perf_counter()
                await stub.Get(store_pb2.GetRequest(key=key), timeout=5)
                samples.append(time.perf_counter() - started)

        await asyncio.gather(*(worker(200) for _ in range(GET_CONCURRENCY)))  # warm-up
        samples.clear()
        await asyncio.gather(
            *(worker(GET_CALLS_PER_REP // GET_CONCURRENCY) for _ in range(GET_CONCURRENCY))
        )
        return samples


def _scan_latencies(stub: Any, prefix: bytes, keys: list[bytes]) -> list[float]:
    rng = random.Random(2)
    samples = []
    for _ in range(SCAN_CALLS_PER_REP):
        start = rng.choice(keys[: max(1, len(keys) - 100)])
        token = encode_page_token(b"scan", prefix, start) if len(keys) > 100 else ""
        t0 = time.perf_counter()
        reply = stub.ScanPrefix(
            store_pb2.ScanPrefixRequest(prefix=prefix, page_size=100, page_token=token), timeout=5
        )
        samples.append(time.perf_counter() - t0)
        if len(reply.entries) != 100:
            raise AssertionError(f"page of {len(reply.entries)} entries")
    return samples


def test_ingestor_bench() -> None:
    results: dict[str, Any] = {"records": RECORDS}
    with tempfile.TemporaryDirectory(prefix="stemedb-ingest-bench-") as tmp_name:
        tmp = Path(tmp_name)
        wal_dir = tmp / "wal"
        t0 = time.perf_counter()
        build_wal(wal_dir, RECORDS)
        print(f"\nbuilt a WAL of {RECORDS} records in {time.perf_counter() - t0:.1f} s")
        sample = min(IN_PROCESS_APPLY_RECORDS, RECORDS)
        raw = [raw_writebatch_rate(wal_dir, tmp / f"raw{i}", sample) for i in range(REPS)]
        engine = [in_process_apply_rate(wal_dir, tmp / f"eng{i}", sample) for i in range(REPS)]
        results["raw_writebatch_records_per_second"] = statistics.median(raw)
        results["engine_apply_records_per_second"] = statistics.median(engine)

        port, metrics_port = free_port(), free_port()
        address = f"127.0.0.1:{port}"
        cmd = [
            sys.executable,
            "-m",
            "stemedb.ingestor",
            "--wal-dir",
            str(wal_dir),
            "--db-dir",
            str(tmp / "db"),
            "--listen",
            address,
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
        ]
        log = open(tmp / "ingestor.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        channel = grpc.insecure_channel(address)
        try:
            health = health_pb2_grpc.HealthStub(channel)
            store = store_pb2_grpc.StoreServiceStub(channel)

            def ingest_serving() -> bool:
                try:
                    reply = health.Check(
                        health_pb2.HealthCheckRequest(service="stemedb.ingest"), timeout=1
                    )
                except grpc.RpcError:
                    return False
                return reply.status == health_pb2.HealthCheckResponse.SERVING

            wait_until(ingest_serving, 30, "the ingestor to serve")
            started = time.perf_counter()
            rss: dict[str, int] = {}
            for fraction in (0.25, 0.5, 1.0):
                lsn = max(1, int(RECORDS * fraction))
                # A min_lsn wait is capped (--min-lsn-wait-seconds-max, 30 s): poll instead.
                wait_until(
                    lambda t=lsn: (
                        store.Get(  # type: ignore[misc]
                            store_pb2.GetRequest(key=b"-"), timeout=10
                        ).applied_lsn
                        >= t
                    ),
                    3600,
                    f"the ingestor to apply LSN {lsn}",
                    0.05,
                )
                rss[f"{int(fraction * 100)}%"] = harness.rss_bytes(proc.pid)
            apply_seconds = time.perf_counter() - started
            results["process_apply_records_per_second"] = RECORDS / apply_seconds
            results["rss_bytes_during_apply"] = rss

            keys = [
                b"H:" + blake3(i.to_bytes(8, "little")).digest().hex().encode()
                for i in random.Random(3).sample(range(RECORDS), min(RECORDS, 20_000))
            ]
            p50s, p99s = [], []
            for _ in range(REPS):
                samples = asyncio.run(_get_latencies(address, keys))
                p50s.append(harness.pct(samples, 0.5))
                p99s.append(harness.pct(samples, 0.99))
            results["get_16_concurrent_p50_seconds"] = statistics.median(p50s)
            results["get_16_concurrent_p99_seconds"] = statistics.median(p99s)

            for _label, prefix, count in (
                ("small", b"S:small\x00", SMALL_PREFIX_KEYS),
                ("big", b"S:big\x00", BIG_PREFIX_KEYS),
            ):
                all_keys = []
                token = ""
                while True:
                    reply = store.ScanPrefix(
                        store_pb2.ScanPrefixRequest(
                            prefix=prefix, page_size=1000, page_token=token
                        ),
                        timeout=30,
                    )
                    all_keys.extend(e.key for e in reply.entries)
                    token = reply.next_page_token
                    if not token:
                        break
                assert len(all_keys) == min(count, max(0, RECORDS - SMALL_PREFIX_KEYS))
                p50 = [
                    harness.pct(_scan_latencies(store, prefix, all_keys), 0.5) for _ in range(REPS)
                ]
                results[f"scan_page_100_prefix_{len(all_keys)}_keys_p50_seconds"] = (
                    statistics.median(p50)
                )
            results["rss_bytes_after_reads"] = harness.rss_bytes(proc.pid)
        finally:
            channel.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            log.close()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)


def _print_table(r: dict[str, Any]) -> None:
    mib = 1024 * 1024
    rows = [
        (
            "raw rocksdict WriteBatch (records/s)",
            f"{r['raw_writebatch_records_per_second']:,.0f}",
            "",
        ),
        (
            "apply engine, in process (records/s)",
            f"{r['engine_apply_records_per_second']:,.0f}",
            ">= 50,000",
        ),
        (
            "apply, ingestor process (records/s)",
            f"{r['process_apply_records_per_second']:,.0f}",
            ">= 50,000",
        ),
        ("Get p50, 16 concurrent (ms)", f"{r['get_16_concurrent_p50_seconds'] * 1e3:.3f}", ""),
        ("Get p99, 16 concurrent (ms)", f"{r['get_16_concurrent_p99_seconds'] * 1e3:.3f}", "<= 2"),
    ]
    for key, value in r.items():
        if key.startswith("scan_page_100_prefix_"):
            keys = key.split("_")[4]
            rows.append(
                (
                    f"ScanPrefix page of 100, prefix of {keys} keys, p50 (ms)",
                    f"{value * 1e3:.3f}",
                    "<= 1",
                )
            )
    for point, rss in r["rss_bytes_during_apply"].items():
        rows.append((f"RSS at {point} of {r['records']:,} records (MiB)", f"{rss / mib:.0f}", ""))
    rows.append(
        ("RSS after the read benchmarks (MiB)", f"{r['rss_bytes_after_reads'] / mib:.0f}", "")
    )
    print("\n| measure | value | target |\n| --- | ---: | --- |")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")
