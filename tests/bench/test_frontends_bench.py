"""Writer front ends (issue 17, lever 5): ``--frontend-processes 0`` against ``2``, beside etcd.

Run with ``make bench``. The three servers are measured interleaved, one run each per round,
with the same load generator (``tests/bench/loadgen.py``). Beside the throughput, the CPU is
split: the front ends' CPU per call (their whole trees) and the WAL owner's own CPU per record,
the two figures the 8- and 16-core model in docs/benchmarks.md is built from.
"""

from __future__ import annotations

import os
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.bench import harness
from tests.bench.test_writer_bench import _batch_requests, _unary_requests
from tests.support import Service, start_writer, wait_until

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("STEMEDB_BENCH_SECONDS", "3"))
REPS = int(os.environ.get("STEMEDB_BENCH_REPS", "3"))
UNARY = "/stemedb.v1.WriterService/AppendAssertion"
BATCH = "/stemedb.v1.WriterService/AppendBatch"


def _own_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / harness.TICKS


_COUNTED = ("stemedb_writer_frontend_frames_total", "stemedb_wal_group_commit_records_count")


def _counters(svc: Service | None) -> dict[str, float]:
    if svc is None:
        return {}
    with urllib.request.urlopen(f"http://{svc.metrics}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        name: float(line.split()[-1])
        for line in text.splitlines() for name in _COUNTED if line.startswith(name + " ")
    }  # fmt: skip


def _run(svc: Service | None, target: str, pid: int, method: str, requests: list[bytes],
         concurrency: int) -> dict[str, float]:  # fmt: skip
    before = _counters(svc)
    owner0 = _own_cpu_seconds(pid)
    run = harness.load(target, method, requests, concurrency, SECONDS, pid)
    owner = _own_cpu_seconds(pid) - owner0
    after = _counters(svc)
    return {
        "rate": run.rate, "calls": run.calls, "p50": harness.pct(run.latencies, 0.5),
        "p99": harness.pct(run.latencies, 0.99), "tree_cpu": run.server_cpu_seconds,
        "owner_cpu": owner, "errors": float(sum(run.errors.values())),
        "frames": after.get(_COUNTED[0], 0.0) - before.get(_COUNTED[0], 0.0),
        "commits": after.get(_COUNTED[1], 0.0) - before.get(_COUNTED[1], 0.0),
    }  # fmt: skip


def _summary(runs: list[dict[str, float]], records_per_call: int) -> dict[str, Any]:
    rates = [r["rate"] * records_per_call for r in runs]
    calls = [max(1.0, r["calls"]) for r in runs]
    return {
        "records_per_s_median": statistics.median(rates),
        "records_per_s_min": min(rates),
        "records_per_s_max": max(rates),
        "p50_ms": statistics.median(r["p50"] * 1e3 for r in runs),
        "p99_ms": statistics.median(r["p99"] * 1e3 for r in runs),
        "server_cpu_us_per_call": statistics.median(
            r["tree_cpu"] / c * 1e6 for r, c in zip(runs, calls, strict=True)
        ),
        "owner_cpu_us_per_record": statistics.median(
            r["owner_cpu"] / (c * records_per_call) * 1e6 for r, c in zip(runs, calls, strict=True)
        ),
        "frontend_cpu_us_per_call": statistics.median(
            (r["tree_cpu"] - r["owner_cpu"]) / c * 1e6 for r, c in zip(runs, calls, strict=True)
        ),
        # Calls per APPEND frame and per group commit (the scrapes' own calls are a handful).
        "calls_per_frame": statistics.median(
            c / r["frames"] if r["frames"] else 0.0 for r, c in zip(runs, calls, strict=True)
        ),
        "calls_per_commit": statistics.median(
            c / r["commits"] if r["commits"] else 0.0 for r, c in zip(runs, calls, strict=True)
        ),
        "errors": sum(r["errors"] for r in runs),
        "repetitions": len(runs),
    }


@pytest.mark.timeout(1800)
def test_frontends_against_single_process_and_etcd(tmp_path: Path) -> None:
    etcd = harness.Etcd()
    # Unsigned requests: verify workers would only idle, so none in either writer.
    single = start_writer(tmp_path / "wal0", "--verify-workers", "0")
    fronts = start_writer(tmp_path / "wal2", "--verify-workers", "0", "--frontend-processes", "2")
    results: dict[str, Any] = {}
    try:
        single.wait_ready(120)
        fronts.wait_ready(120)
        wait_until(lambda: '"event": "writer started"' in fronts.log_text(), 120,
                   "both front ends to serve")  # fmt: skip
        unary = _unary_requests(2000)
        puts = [harness.etcd_put(f"fe/{i}".encode(), unary[0]) for i in range(2000)]
        batch128 = _batch_requests(100, 128, signed=False)
        txn128 = [
            harness.etcd_txn([(f"fetxn/{b}/{i}".encode(), unary[0]) for i in range(128)])
            for b in range(100)
        ]
        scenarios = [
            ("AppendAssertion c=1", UNARY, unary, harness.ETCD_PUT, puts, 1, 1),
            ("AppendAssertion c=64", UNARY, unary, harness.ETCD_PUT, puts, 64, 1),
            ("AppendBatch 128 c=4", BATCH, batch128, harness.ETCD_TXN, txn128, 4, 128),
        ]
        for name, method, requests, etcd_method, etcd_requests, conc, per_call in scenarios:
            runs: dict[str, list[dict[str, float]]] = {"fe0": [], "fe2": [], "etcd": []}
            for _ in range(REPS):
                runs["fe0"].append(_run(single, single.listen, single.proc.pid, method,
                                        requests, conc))  # fmt: skip
                runs["fe2"].append(_run(fronts, fronts.listen, fronts.proc.pid, method,
                                        requests, conc))  # fmt: skip
                runs["etcd"].append(_run(None, etcd.target, etcd.proc.pid, etcd_method,
                                         etcd_requests, conc))  # fmt: skip
            for server, done in runs.items():
                results[f"{server} {name}"] = _summary(done, per_call)
    finally:
        single.terminate()
        fronts.terminate()
        etcd.stop()
    results["cores"] = os.cpu_count() or 1
    results["measured_unix_time"] = time.time()
    harness.save("frontends", results)
    for name, s in results.items():
        if isinstance(s, dict):
            print(
                f"{name}: {s['records_per_s_median']:,.0f}/s ({s['records_per_s_min']:,.0f}-"
                f"{s['records_per_s_max']:,.0f}) p50 {s['p50_ms']:.2f} ms, CPU/call "
                f"{s['server_cpu_us_per_call']:.0f} µs (owner/record "
                f"{s['owner_cpu_us_per_record']:.0f}, front ends/call "
                f"{s['frontend_cpu_us_per_call']:.0f}), calls/frame "
                f"{s['calls_per_frame']:.1f}, calls/commit {s['calls_per_commit']:.1f}, "
                f"errors {s['errors']:.0f}"
            )
            assert s["records_per_s_median"] > 0, name
