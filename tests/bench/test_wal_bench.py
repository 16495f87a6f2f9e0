"""WAL benchmark: appends/s with 1, 16, 64 producers vs a raw write+fdatasync loop; reopen time.

Run: .venv/bin/python -m pytest -m bench -s tests/bench/test_wal_bench.py
STEMEDB_WAL_BENCH_REOPEN_BYTES sets the size of the reopened log (default 1 GiB);
STEMEDB_WAL_BENCH_SECONDS the length of one measurement (default 1.5 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import pytest

from stemedb.wal import SyncMode, Wal, WalConfig

RECORD_BYTES = 200
REPETITIONS = 3
PRODUCERS = (1, 16, 64)
PER_CALL = "64-asyncio, handed over one by one"
RESULT_PATH = Path(__file__).resolve().parents[2] / "build" / "bench" / "wal.json"


def _seconds() -> float:
    return float(os.environ.get("STEMEDB_WAL_BENCH_SECONDS", "1.5"))


def _raw_rate(directory: Path, payload: bytes) -> float:
    """One os.write + os.fdatasync per record: the floor every durable append pays."""
    path = directory / "raw.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
    count = 0
    started = time.perf_counter()
    stop = started + _seconds()
    while time.perf_counter() < stop:
        os.write(fd, payload)
        os.fdatasync(fd)
        count += 1
    elapsed = time.perf_counter() - started
    os.close(fd)
    path.unlink()
    return count / elapsed


def _wal_rate(wal: Wal, producers: int, payload: bytes) -> float:
    counts: list[int] = []
    lock = threading.Lock()
    stop = time.perf_counter() + _seconds()
    barrier = threading.Barrier(producers + 1)

    def produce() -> None:
        barrier.wait()
        done = 0
        while time.perf_counter() < stop:
            wal.append([(1, payload)])
            done += 1
        with lock:
            counts.append(done)

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def _async_rate(wal: Wal, tasks: int, payload: bytes) -> float:
    async def run() -> int:
        stop = time.perf_counter() + _seconds()

        async def produce() -> int:
            done = 0
            while time.perf_counter() < stop:
                await wal.append_async([(1, payload)])
                done += 1
            return done

        return sum(await asyncio.gather(*(produce() for _ in range(tasks))))

    started = time.perf_counter()
    total = asyncio.run(run())
    return total / (time.perf_counter() - started)


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _reopen_seconds(directory: Path) -> tuple[int, float]:
    target_bytes = int(os.environ.get("STEMEDB_WAL_BENCH_REOPEN_BYTES", str(1024**3)))
    payload = os.urandom(RECORD_BYTES)
    batch = [(1, payload)] * 5000
    # Built without fsync to keep the benchmark short; the reopen below is measured with the
    # normal FDATASYNC mode and starts from a dropped-nothing page cache (best case for reads).
    with Wal.open(WalConfig(dir=directory, sync_mode=SyncMode.NONE)) as wal:
        written = 0
        while written < target_bytes:
            wal.append(batch)
            written += 5000 * 248
    size = sum(p.stat().st_size for p in directory.glob("*.wal"))
    started = time.perf_counter()
    with Wal.open(WalConfig(dir=directory)):
        elapsed = time.perf_counter() - started
    return size, elapsed


@pytest.mark.bench
@pytest.mark.timeout(1800)
def test_wal_append_throughput(tmp_path: Path) -> None:
    bench_dir = Path(__file__).resolve().parents[2] / "build" / "bench" / "wal-data"
    shutil.rmtree(bench_dir, ignore_errors=True)
    bench_dir.mkdir(parents=True)
    payload = os.urandom(RECORD_BYTES)
    raw: list[float] = []
    rates: dict[str, list[float]] = {str(n): [] for n in PRODUCERS}
    rates["64-asyncio"] = []
    # The hand-off before appends of one loop turn were gathered (WalConfig.gather_async).
    rates[PER_CALL] = []
    per_call = WalConfig(dir=bench_dir / "per-call", gather_async=False)
    with Wal.open(WalConfig(dir=bench_dir / "log")) as wal, Wal.open(per_call) as one_by_one:
        for _ in range(REPETITIONS):
            # Interleaved, so that drift of the disk affects raw and WAL alike.
            raw.append(_raw_rate(bench_dir, payload))
            for producers in PRODUCERS:
                rates[str(producers)].append(_wal_rate(wal, producers, payload))
            rates["64-asyncio"].append(_async_rate(wal, 64, payload))
            rates[PER_CALL].append(_async_rate(one_by_one, 64, payload))
    raw_median = statistics.median(raw)
    reopen_dir = bench_dir / "reopen"
    reopen_bytes, reopen_seconds = _reopen_seconds(reopen_dir)
    shutil.rmtree(bench_dir, ignore_errors=True)

    results: dict[str, object] = {
        "record_bytes": RECORD_BYTES,
        "repetitions": REPETITIONS,
        "seconds_per_measurement": _seconds(),
        "raw_write_fdatasync_per_second": _stats(raw),
        "wal_appends_per_second": {k: _stats(v) for k, v in rates.items()},
        "ratio_vs_raw_median": {k: statistics.median(v) / raw_median for k, v in rates.items()},
        "targets": {"1": 0.8, "64": 20.0},
        "reopen": {"log_bytes": reopen_bytes, "seconds": reopen_seconds},
    }
    RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
    RESULT_PATH.write_text(json.dumps(results, indent=2) + "\n")

    print()
    print("| producers | appends/s median | min | max | vs raw |")
    print("| --- | ---: | ---: | ---: | ---: |")
    s = _stats(raw)
    print(f"| raw write+fdatasync | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | 1.00 |")
    for key, values in rates.items():
        s = _stats(values)
        ratio = s["median"] / raw_median
        print(f"| {key} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | {ratio:.2f} |")
    print(f"\nreopen of a {reopen_bytes / 1024**3:.2f} GiB log: {reopen_seconds:.2f} s")
    print(f"JSON written to {RESULT_PATH}")
