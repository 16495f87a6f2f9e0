"""The meter's cost: the same writer with the meter on and off, interleaved, same run.

Target (issue 15): at most 5% of AppendBatch throughput and at most 10 µs of server CPU per
unary call. The metered writer's budget is large enough that nothing is refused, so the figures
are the cost of charging, not of refusing. Run with ``make bench``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.writer._meter import Meter, charge_request, parse_meter_config
from tests.bench import harness
from tests.bench.test_writer_bench import _assertion, _batch_requests, _unary_requests
from tests.support import start_writer

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("STEMEDB_BENCH_SECONDS", "3"))
REPS = int(os.environ.get("STEMEDB_BENCH_REPS", "3"))


def _charge_us() -> float:
    """In-process: microseconds per ``charge_request`` of one signed assertion (median of 5)."""
    meter = Meter(parse_meter_config('{"default": {"rate": 1e12, "burst": 1e12}}'))
    records = [pb.Record(assertion=_assertion(1, True))]
    samples = []
    for _ in range(5):
        n, t0 = 20_000, time.perf_counter()
        for _ in range(n):
            charge_request(meter, records, 400, 1, None, None, time.monotonic())
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return sorted(samples)[2]


def test_meter_on_against_off(tmp_path: Path) -> None:
    cfg = tmp_path / "meter.json"
    cfg.write_text(json.dumps({"default": {"rate": 1e12, "burst": 1e12}}))
    off = start_writer(tmp_path / "wal-off", "--verify-workers", "2")
    on = start_writer(tmp_path / "wal-on", "--verify-workers", "2", "--meter-config", str(cfg))
    unary, batch = _unary_requests(2000), _batch_requests(40, 500, signed=False)
    runs: dict[str, list[harness.Run]] = {}
    try:
        off.wait_ready()
        on.wait_ready()
        for _ in range(REPS):  # interleaved, so drift on this noisy machine hits both alike
            for label, svc in (("off", off), ("on", on)):
                runs.setdefault(f"unary {label}", []).append(harness.load(
                    svc.listen, "/stemedb.v1.WriterService/AppendAssertion", unary, 16,
                    SECONDS, svc.proc.pid,
                ))  # fmt: skip
                runs.setdefault(f"batch {label}", []).append(harness.load(
                    svc.listen, "/stemedb.v1.WriterService/AppendBatch", batch, 4, SECONDS,
                    svc.proc.pid,
                ))  # fmt: skip
    finally:
        off.terminate()
        on.terminate()
    results = {
        name: harness.summarize(r, records_per_call=500 if name.startswith("batch") else 1)
        for name, r in runs.items()
    }
    results["charge_request us"] = {"records_per_s_median": _charge_us()}
    harness.save("meter", results)
    batch_ratio = (
        results["batch on"]["records_per_s_median"] / results["batch off"]["records_per_s_median"]
    )
    cpu_delta = (
        results["unary on"]["server_cpu_us_per_record"]
        - results["unary off"]["server_cpu_us_per_record"]
    )
    lines = [
        "| scenario | records/s median (min-max) | server CPU µs/record |",
        "| --- | --- | --- |",
    ]
    for name in ("unary off", "unary on", "batch off", "batch on"):
        s = results[name]
        lines.append(
            f"| {name} | {s['records_per_s_median']:,.0f} ({s['records_per_s_min']:,.0f}-"
            f"{s['records_per_s_max']:,.0f}) | {s['server_cpu_us_per_record']:.1f} |"
        )
    lines.append("")
    lines.append(
        f"AppendBatch of 500 with the meter: {batch_ratio:.3f}x without (target >= 0.95x); "
        f"unary server CPU {cpu_delta:+.1f} µs per call (target <= 10 µs); "
        f"charge_request in process: {results['charge_request us']['records_per_s_median']:.1f} µs"
    )
    print("\n".join(lines))
    for name, s in results.items():
        assert s["records_per_s_median"] > 0, name
