"""How cost grows: WAL recovery time against log size; the ingestor's apply rate and RSS
against the number of records already in its DB (up to 500,000 by default: the Lattice's views
cut the apply rate). Run with ``make bench``; ``STEMEDB_BENCH_SCALE_RECORDS`` sets the largest DB
(default 500,000)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc
from stemedb.wal import SyncMode, Wal, WalConfig
from tests.bench import harness
from tests.bench.test_ingestor_bench import build_wal
from tests.support import start_ingestor

pytestmark = pytest.mark.bench

SCALE_RECORDS = int(os.environ.get("STEMEDB_BENCH_SCALE_RECORDS", "500000"))
LOG_SIZES_MIB = [int(x) for x in os.environ.get("STEMEDB_BENCH_LOG_MIB", "128,512,2048").split(",")]


def _recovery_seconds(directory: Path, size_mib: int) -> float:
    payload = bytes(4000)
    wal = Wal.open(WalConfig(dir=directory, sync_mode=SyncMode.NONE))
    try:
        per_batch = 256
        batches = size_mib * 2**20 // (len(payload) * per_batch)
        for _ in range(batches):
            wal.append([(1, payload)] * per_batch)
    finally:
        wal.close()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        Wal.open(WalConfig(dir=directory)).close()
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def test_scaling(tmp_path: Path) -> None:
    results: dict[str, Any] = {"recovery_seconds_by_log_mib": {}}
    for size in LOG_SIZES_MIB:
        d = tmp_path / f"log{size}"
        results["recovery_seconds_by_log_mib"][str(size)] = _recovery_seconds(d, size)
        for f in d.iterdir():
            f.unlink()
    wal_dir = tmp_path / "wal"
    build_wal(wal_dir, SCALE_RECORDS)
    ingestor = start_ingestor(wal_dir, tmp_path / "db")
    samples: list[tuple[float, int, int]] = []
    try:
        ingestor.wait_ready(timeout_seconds=120)
        with grpc.insecure_channel(ingestor.listen) as ch:
            stub = store_pb2_grpc.StoreServiceStub(ch)
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                applied = stub.Get(spb.GetRequest(key=b"H:none"), timeout=10).applied_lsn
                samples.append((time.monotonic(), applied, harness.rss_bytes(ingestor.proc.pid)))
                if applied >= SCALE_RECORDS:
                    break
                time.sleep(0.5)
    finally:
        ingestor.terminate()
    marks = sorted({1_000_000, SCALE_RECORDS // 2, SCALE_RECORDS} & set(range(SCALE_RECORDS + 1)))
    window = max(100_000, SCALE_RECORDS // 25)
    apply_rate: dict[str, float] = {}
    rss: dict[str, int] = {}
    for mark in marks:
        lo = [s for s in samples if s[1] >= mark - window]
        hi = [s for s in samples if s[1] >= mark]
        if lo and hi and hi[0][0] > lo[0][0]:
            apply_rate[str(mark)] = (hi[0][1] - lo[0][1]) / (hi[0][0] - lo[0][0])
            rss[str(mark)] = hi[0][2]
    results["apply_records_per_second_at_db_records"] = apply_rate
    results["rss_bytes_at_records"] = rss
    results["records"] = SCALE_RECORDS
    harness.save("scaling", results)
    print("\nrecovery seconds by log MiB:", results["recovery_seconds_by_log_mib"])
    print("apply records/s at DB records:", {k: round(v) for k, v in apply_rate.items()})
    print("RSS MiB at records:", {k: v // 2**20 for k, v in rss.items()})
    assert samples and samples[-1][1] >= SCALE_RECORDS
