"""Writer benchmark: unary and batch appends beside etcd's Put and Txn, same client code.

Run with ``make bench``. On 2 cores the load generator and the server compete for CPU, so the
server's CPU per call (its whole process tree, verify workers included) is reported beside the
throughput. Each figure is the median of several repetitions; min and max show the noise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nacl.bindings
import pytest

from stemedb import canonical, signing
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from tests.bench import harness
from tests.support import start_writer

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("STEMEDB_BENCH_SECONDS", "3"))
REPS = int(os.environ.get("STEMEDB_BENCH_REPS", "3"))
KEY = signing.SigningKey(b"\x09" * 32)


def _assertion(i: int, signed: bool) -> pb.Assertion:
    a = pb.Assertion(
        subject=f"urn:bench:{i}",
        predicate="observed",
        object=pb.Value(text=f"value number {i} " + "x" * 40),
        confidence=0.8,
        source_hash=canonical.content_hash(str(i).encode()),
    )
    if signed:
        a.signatures.append(
            signing.signature_entry(KEY, canonical.content_hash(canonical.assertion_bytes(a)))
        )
    return a


def _unary_requests(n: int) -> list[bytes]:
    return [
        wpb.AppendAssertionRequest(assertion=_assertion(i, False)).SerializeToString()
        for i in range(n)
    ]


def _batch_requests(batches: int, size: int, signed: bool) -> list[bytes]:
    return [
        wpb.AppendBatchRequest(
            records=[pb.Record(assertion=_assertion(b * size + i, signed)) for i in range(size)]
        ).SerializeToString()
        for b in range(batches)
    ]


def _verify_rate_one_core() -> float:
    h = b"\x02" * 32
    sig = signing.sign_hash(KEY, h)
    pk = signing.public_key_of(KEY)
    rates = []
    for _ in range(3):
        n, t0 = 3000, time.perf_counter()
        for _ in range(n):
            nacl.bindings.crypto_sign_open(sig + h, pk)
        rates.append(n / (time.perf_counter() - t0))
    return sorted(rates)[1]


def _interleaved(
    results: dict[str, dict[str, float]],
    servers: list[tuple[str, str, str, list[bytes], int]],
    concurrency: int,
    records_per_call: int,
) -> None:
    """REPS rounds, each server once per round (so drift of the machine hits all alike)."""
    runs: dict[str, list[harness.Run]] = {name: [] for name, *_ in servers}
    for _ in range(REPS):
        for name, target, method, requests, pid in servers:
            runs[name].append(harness.load(target, method, requests, concurrency, SECONDS, pid))
    for name, done in runs.items():
        results[name] = harness.summarize(done, records_per_call=records_per_call)


def _row(name: str, s: dict[str, float], base: dict[str, float] | None) -> str:
    ratio = f"{s['records_per_s_median'] / base['records_per_s_median']:.2f}x" if base else ""
    return (
        f"| {name} | {s['records_per_s_median']:,.0f} ({s['records_per_s_min']:,.0f}-"
        f"{s['records_per_s_max']:,.0f}) | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
        f"{s['server_cpu_us_per_record']:.0f} | {ratio} |"
    )


@pytest.mark.timeout(1800)
def test_writer_against_etcd(tmp_path: Path) -> None:
    etcd = harness.Etcd()
    writer = start_writer(tmp_path / "wal", "--verify-workers", "2")
    # The same writer on uvloop (--event-loop), measured interleaved with the default one.
    uv = start_writer(tmp_path / "wal-uvloop", "--verify-workers", "2", "--event-loop", "uvloop")
    results: dict[str, dict[str, float]] = {}
    try:
        writer.wait_ready()
        uv.wait_ready()
        target, pid = writer.listen, writer.proc.pid
        unary = _unary_requests(2000)
        value = unary[0]
        etcd_puts = [harness.etcd_put(f"bench/{i}".encode(), value) for i in range(2000)]
        method_unary = "/stemedb.v1.WriterService/AppendAssertion"
        for conc in (1, 16, 64):
            servers = [
                (f"stemedb AppendAssertion c={conc}", target, method_unary, unary, pid),
                (f"etcd Put c={conc}", etcd.target, harness.ETCD_PUT, etcd_puts, etcd.proc.pid),
            ]
            if conc != 16:
                servers.append((f"stemedb uvloop AppendAssertion c={conc}", uv.listen,
                                method_unary, unary, uv.proc.pid))  # fmt: skip
            _interleaved(results, servers, conc, 1)
        batch500 = _batch_requests(40, 500, signed=False)
        signed500 = _batch_requests(20, 500, signed=True)
        batch128 = _batch_requests(100, 128, signed=False)
        txn128 = [
            harness.etcd_txn([(f"txn/{b}/{i}".encode(), value) for i in range(128)])
            for b in range(100)
        ]
        method_batch = "/stemedb.v1.WriterService/AppendBatch"
        _interleaved(results, [
            ("stemedb AppendBatch 500 unsigned c=4", target, method_batch, batch500, pid),
        ], 4, 500)  # fmt: skip
        _interleaved(results, [
            ("stemedb AppendBatch 500 signed c=4", target, method_batch, signed500, pid),
        ], 4, 500)  # fmt: skip
        _interleaved(results, [
            ("stemedb AppendBatch 128 c=8", target, method_batch, batch128, pid),
            ("etcd Txn 128 puts c=8", etcd.target, harness.ETCD_TXN, txn128, etcd.proc.pid),
            ("stemedb uvloop AppendBatch 128 c=8", uv.listen, method_batch, batch128,
             uv.proc.pid),
        ], 8, 128)  # fmt: skip
    finally:
        writer.terminate()
        uv.terminate()
        etcd.stop()
    verify_rate = _verify_rate_one_core()
    cores = os.cpu_count() or 1
    results["verify one core"] = {"records_per_s_median": verify_rate}
    harness.save("writer", results)

    lines = [
        "| scenario | records/s median (min-max) | p50 ms | p99 ms | server CPU µs/record "
        "| vs etcd |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for conc in (1, 16, 64):
        lines.append(_row(f"etcd Put, {conc} in flight", results[f"etcd Put c={conc}"], None))
        lines.append(_row(f"StemeDB AppendAssertion, {conc} in flight",
                          results[f"stemedb AppendAssertion c={conc}"],
                          results[f"etcd Put c={conc}"]))  # fmt: skip
    txn = results["etcd Txn 128 puts c=8"]
    lines.append(_row("etcd Txn of 128 puts, 8 in flight", txn, None))
    lines.append(_row("StemeDB AppendBatch of 128, 8 in flight",
                      results["stemedb AppendBatch 128 c=8"], txn))  # fmt: skip
    lines.append(_row("StemeDB AppendBatch of 500 unsigned, 4 in flight",
                      results["stemedb AppendBatch 500 unsigned c=4"], None))  # fmt: skip
    lines.append(_row("StemeDB AppendBatch of 500 signed, 4 in flight",
                      results["stemedb AppendBatch 500 signed c=4"], None))  # fmt: skip
    signed = results["stemedb AppendBatch 500 signed c=4"]["records_per_s_median"]
    lines.append("")
    lines.append(
        f"One core verifies {verify_rate:,.0f} signatures/s; signed batches reach "
        f"{signed / (cores * verify_rate):.0%} of cores x that rate (target 80%)."
    )
    print("\n".join(lines))
    for name, s in results.items():
        assert s["records_per_s_median"] > 0, name
