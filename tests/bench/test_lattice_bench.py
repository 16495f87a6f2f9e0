"""Lattice benchmarks (issue 12, Performance): apply rate with views on and off, Resolve beside
Get, Resolve with 1 and with 10,000 candidates, and ack-to-visible of other writes while a
revolution settles. Baselines are measured in the same run, interleaved.

Run: ``.venv/bin/python -m pytest -m bench -s tests/bench/test_lattice_bench.py``.
``STEMEDB_BENCH_LATTICE_RECORDS`` sets the apply log (default 20,000 records, half votes);
``STEMEDB_BENCH_REVOLUTION_ASSERTIONS`` the assertions the revolution retires (default 100,000;
e.g. 5000 for a quick run). Writes build/bench/lattice.json.
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from stemedb.canonical import record_hash
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.ingestor._lattice import LatticeBatch
from stemedb.ingestor._policy import DEFAULT_POLICY
from stemedb.v1 import query_pb2, store_pb2, store_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalRecord
from tests.bench import harness
from tests.lattice.lattice_testlib import make_assertion, make_vote, wal_records
from tests.lattice.stack import SOURCE, Lab, hash_of, running_lab, signed_epoch
from tests.support import wait_until

pytestmark = pytest.mark.bench

RECORDS = int(os.environ.get("STEMEDB_BENCH_LATTICE_RECORDS", "20000"))
REVOLUTION = int(os.environ.get("STEMEDB_BENCH_REVOLUTION_ASSERTIONS", "100000"))
REPS = 3
SLOTS = 3000
APPLY_BATCH_RECORDS = 256
CANDIDATES = 10_000
CALLS = 400
OTHER_WRITES = 300
APPEND_BATCH = 500


def _half_votes(n: int) -> list[WalRecord]:
    rng = random.Random(1)
    agents = [bytes([i % 256, i // 256]) * 16 for i in range(200)]
    records: list[pb.Record] = []
    hashes: list[bytes] = []
    for i in range(n):
        if i % 2 == 0:
            a = make_assertion(f"s{rng.randrange(SLOTS)}", "p", f"v{i}", 0.8, [rng.choice(agents)])
            records.append(a)
            hashes.append(record_hash(a))
        else:
            records.append(
                make_vote(rng.choice(hashes), rng.choice(agents), rng.choice([1.0, -1.0, 0.5]),
                          rng.randrange(1, 5))
            )  # fmt: skip
    return wal_records(records)


def _apply_rate(records: list[WalRecord], mode: str) -> float:
    """Records per CPU second applying ``records`` to a fresh database (in process). ``mode``:
    "views_off" (no Lattice), "views_on" (the Lattice as it runs), or "ballot_box" (the Lattice
    with the rebuild of views and history skipped: a decomposition of the cost, not a mode the
    service has; its database lacks MV:/MH: keys)."""
    with tempfile.TemporaryDirectory(prefix="stemedb-lattice-bench-") as root:
        db = StoreDb(Path(root) / "db")
        refresh = LatticeBatch._refresh
        try:
            if mode == "ballot_box":
                LatticeBatch._refresh = lambda self, slot, lsn: None  # type: ignore[method-assign]
            engine = ApplyEngine(db, None if mode == "views_off" else DEFAULT_POLICY)
            started = time.process_time()
            for i in range(0, len(records), APPLY_BATCH_RECORDS):
                engine.apply(records[i : i + APPLY_BATCH_RECORDS])
            return len(records) / (time.process_time() - started)
        finally:
            LatticeBatch._refresh = refresh  # type: ignore[method-assign]
            db.close()


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _unsigned(subject: str, i: int, epoch: bytes = b"") -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject, predicate="p", object=pb.Value(number=float(i)),
            confidence=0.5, source_hash=SOURCE, epoch=epoch,
        )
    )  # fmt: skip


def _append_many(lab: Lab, records: list[pb.Record]) -> int:
    last = 0
    for i in range(0, len(records), APPEND_BATCH):
        last = lab.append(*records[i : i + APPEND_BATCH])[-1]
    return last


def _reads(lab: Lab) -> dict[str, Any]:
    """Resolve (1 candidate) vs GetAssertion, and Resolve with 1 vs 10,000 candidates, at one
    call in flight, interleaved, REPS repetitions of CALLS calls each."""
    small = _unsigned("small", 0)
    lab.append(small)
    last = _append_many(lab, [_unsigned("big", i) for i in range(CANDIDATES)])
    query = lab.query()
    store = store_pb2_grpc.StoreServiceStub(lab._channel(lab.ingestor.listen))
    resolve = {
        name: query_pb2.ResolveRequest(subject=name, predicate="p", min_lsn=last)
        for name in ("small", "big")
    }
    get = store_pb2.GetAssertionRequest(hash=record_hash(small), min_lsn=last)
    assert query.Resolve(resolve["big"], timeout=300).resolution.candidates_total == CANDIDATES
    calls = {
        "get": lambda: store.GetAssertion(get, timeout=30),
        "resolve_1": lambda: query.Resolve(resolve["small"], timeout=30),
        "resolve_10000": lambda: query.Resolve(resolve["big"], timeout=30),
    }
    runs: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(REPS):
        seconds: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(CALLS):
            for name, call in calls.items():  # interleaved call by call: the same load
                started = time.perf_counter()
                call()
                seconds[name].append(time.perf_counter() - started)
        for name, values in seconds.items():
            runs[name].append(statistics.median(values) * 1e6)
    out: dict[str, Any] = {name: _stats(values) for name, values in runs.items()}
    out["resolve_vs_get"] = out["resolve_1"]["median"] / out["get"]["median"]
    out["resolve_10000_vs_1"] = out["resolve_10000"]["median"] / out["resolve_1"]["median"]
    return out


def _ack_to_visible(lab: Lab, count: int, tag: str) -> list[float]:
    """Seconds from each write's ack to its visibility (GetAssertion with min_lsn)."""
    store = store_pb2_grpc.StoreServiceStub(lab._channel(lab.ingestor.listen))
    seconds = []
    for i in range(count):
        record = _unsigned(f"other-{tag}-{i}", i)
        lsn = lab.append(record)[0]
        acked = time.perf_counter()
        store.GetAssertion(
            store_pb2.GetAssertionRequest(hash=record_hash(record), min_lsn=lsn), timeout=300
        )
        seconds.append(time.perf_counter() - acked)
    return seconds


def _revolution(lab: Lab) -> dict[str, Any]:
    """REVOLUTION assertions of epoch F in as many slots; then E (a revolution of F) and other
    writes one at a time while it settles, beside the same writes before it (baseline)."""
    f = signed_epoch("F", signers=["A"])
    lab.append(f)
    last = _append_many(lab, [_unsigned(f"rev{i}", i, hash_of(f)) for i in range(REVOLUTION)])
    query = lab.query()
    probe = query_pb2.ResolveRequest(subject="rev0", predicate="p", min_lsn=last)

    def applied() -> bool:  # the server bounds one min_lsn wait: ask again until applied
        try:
            query.Resolve(probe, timeout=60)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            return False
        return True

    wait_until(applied, 3600, f"LSN {last} applied", interval=1.0)
    assert query.Resolve(probe, timeout=60).resolution.status == query_pb2.STATUS_UNCERTAIN
    before = _ack_to_visible(lab, OTHER_WRITES, "before")
    started = time.perf_counter()
    epoch_lsn = lab.append(signed_epoch("E", hash_of(f), pb.SUPERSESSION_TYPE_REVOLUTION, ["B"]))[0]
    during = _ack_to_visible(lab, OTHER_WRITES, "during")
    # Every retired slot answers EMPTY at once (overlaid while settling, then stored).
    last_slot = query_pb2.ResolveRequest(
        subject=f"rev{REVOLUTION - 1}", predicate="p", min_lsn=epoch_lsn
    )
    assert query.Resolve(last_slot, timeout=60).resolution.status == query_pb2.STATUS_EMPTY
    settling_seen = time.perf_counter() - started

    def summary(values: list[float]) -> dict[str, float]:
        return {"p50_ms": harness.pct(values, 0.5) * 1e3, "p99_ms": harness.pct(values, 0.99) * 1e3}

    return {
        "assertions": REVOLUTION,
        "other_writes": OTHER_WRITES,
        "before": summary(before),
        "during": summary(during),
        "seconds_measured_after_epoch": settling_seen,
    }


@pytest.mark.timeout(3600)
def test_lattice_bench(tmp_path: Path) -> None:
    records = _half_votes(RECORDS)
    rates: dict[str, list[float]] = {"views_on": [], "views_off": [], "ballot_box": []}
    for _ in range(REPS):  # interleaved: the same machine load for all three
        for mode in rates:
            rates[mode].append(_apply_rate(records, mode))
    apply: dict[str, Any] = {name: _stats(values) for name, values in rates.items()}
    apply["ratio"] = apply["views_on"]["median"] / apply["views_off"]["median"]
    apply["views_vs_ballot_box"] = apply["views_on"]["median"] / apply["ballot_box"]["median"]
    with running_lab(tmp_path / "reads") as lab:
        reads = _reads(lab)
    with running_lab(tmp_path / "revolution") as lab:
        revolution = _revolution(lab)
    data = {
        "records": RECORDS,
        "repetitions": REPS,
        "apply_records_per_cpu_s": apply,
        "reads_p50_us": reads,
        "revolution": revolution,
    }
    path = harness.save("lattice", data)
    print(path.read_text())
