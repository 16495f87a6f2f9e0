"""Verifiable-log benchmarks (issue 16, Performance) -> build/bench/log.json.

Each figure has its baseline measured in the same run, interleaved repetition by repetition:

- AppendBatch throughput of a writer keeping the tree against a writer started with
  ``STEMEDB_BENCH_NO_LOG_TREE=1`` (a bench-only switch: no tree, no checkpoints), target >= 0.95x;
- the ingestor's apply rate in process (records read first, then ApplyEngine; no Lattice, so
  that the tree's share shows) with the tree's nodes, records and checkpoint in each batch
  against without them (``wal_dir=None``);
- GetInclusionProof p50 against Get p50, one call in flight, on one real writer + ingestor,
  target <= 1.5x;
- proof sizes (hashes) at several tree sizes against ceil(log2 n).

Run: ``.venv/bin/python -m pytest -m bench -s tests/bench/test_log_bench.py``.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, merkle
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.v1 import log_pb2, log_pb2_grpc, store_pb2, store_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalReader
from stemedb.writer._tree import BENCH_NO_LOG_TREE_ENV
from tests.bench import harness
from tests.bench.test_ingestor_bench import build_wal
from tests.support import start_ingestor, start_writer, wait_until

pytestmark = pytest.mark.bench

SECONDS = float(os.environ.get("STEMEDB_BENCH_SECONDS", "3"))
REPS = int(os.environ.get("STEMEDB_BENCH_REPS", "3"))
# The AppendBatch A/B swings with the machine's speed from one writer process to the next, so it
# has more repetitions, an even number so that each side goes first as often as the other.
APPEND_REPS = int(os.environ.get("STEMEDB_BENCH_LOG_APPEND_REPS", "6"))
APPLY_RECORDS = int(os.environ.get("STEMEDB_BENCH_LOG_APPLY_RECORDS", "20000"))
PROOF_RECORDS = 2000
PROOF_CALLS = 500
BATCH = 128
PROOF_SIZES = (10, 1000, 4096, 4097, 100_000)


def _assertion(i: int) -> pb.Assertion:
    return pb.Assertion(
        subject=f"urn:bench:{i}",
        predicate="observed",
        object=pb.Value(text=f"value number {i} " + "x" * 40),
        confidence=0.8,
        source_hash=canonical.content_hash(str(i).encode()),
    )


def _batches(count: int, start: int = 0) -> list[bytes]:
    return [
        wpb.AppendBatchRequest(
            records=[pb.Record(assertion=_assertion(start + b * BATCH + i)) for i in range(BATCH)]
        ).SerializeToString()
        for b in range(count)
    ]


def _append_batch_runs(tmp: Path) -> dict[str, list[harness.Run]]:
    requests = _batches(60)
    runs: dict[str, list[harness.Run]] = {"with tree": [], "without tree": []}
    for rep in range(APPEND_REPS):
        for name in (
            ("with tree", "without tree") if rep % 2 == 0 else ("without tree", "with tree")
        ):
            env = {BENCH_NO_LOG_TREE_ENV: "1"} if name == "without tree" else None
            writer = start_writer(tmp / f"wal-{rep}-{name.replace(' ', '-')}", env=env)
            try:
                writer.wait_ready()
                runs[name].append(
                    harness.load(writer.listen, "/stemedb.v1.WriterService/AppendBatch",
                                 requests, 8, SECONDS, writer.proc.pid)
                )  # fmt: skip
            finally:
                writer.terminate()
    return runs


def _apply_rates(tmp: Path) -> dict[str, list[float]]:
    wal_dir = tmp / "apply-wal"
    build_wal(wal_dir, APPLY_RECORDS)
    with WalReader(wal_dir) as reader:
        chunks = []
        while records := reader.read_available(4096):
            chunks.append(records)
    rates: dict[str, list[float]] = {"with tree": [], "without tree": []}
    for rep in range(REPS):
        for name in (
            ("with tree", "without tree") if rep % 2 == 0 else ("without tree", "with tree")
        ):
            db = StoreDb(Path(tempfile.mkdtemp(dir=tmp)))
            engine = ApplyEngine(db, policy=None, wal_dir=wal_dir if name == "with tree" else None)
            started = time.perf_counter()
            for records in chunks:
                engine.apply(records)
            rates[name].append(APPLY_RECORDS / (time.perf_counter() - started))
            db.close()
    return rates


def _proof_and_get_latencies(tmp: Path) -> dict[str, list[float]]:
    wal_dir = tmp / "proof-wal"
    writer = start_writer(wal_dir)
    ingestor = None
    try:
        writer.wait_ready()
        ingestor = start_ingestor(wal_dir, tmp / "proof-db")
        ingestor.wait_ready()
        keys: list[bytes] = []
        with grpc.insecure_channel(writer.listen) as channel:
            stub = writer_pb2_grpc.WriterServiceStub(channel)
            for request in _batches(PROOF_RECORDS // BATCH, start=10**6):
                reply = stub.AppendBatch(wpb.AppendBatchRequest.FromString(request), timeout=30)
                keys += [b"H:" + r.hash.hex().encode() for r in reply.receipts]
        samples: dict[str, list[float]] = {"Get": [], "GetInclusionProof": []}
        with grpc.insecure_channel(ingestor.listen) as channel:
            log = log_pb2_grpc.LogServiceStub(channel)
            store = store_pb2_grpc.StoreServiceStub(channel)

            def covered() -> bool:
                try:
                    reply = log.GetCheckpoint(log_pb2.GetCheckpointRequest(), timeout=5)
                except grpc.RpcError:
                    return False
                return int(reply.checkpoint.split("\n")[1]) >= len(keys)

            wait_until(covered, 60, "a served checkpoint covering every record")
            rng = random.Random(16)
            for i in range(PROOF_CALLS * 2 + 100):  # interleaved, one call in flight
                started = time.perf_counter()
                if i % 2:
                    key = rng.choice(keys)
                    assert store.Get(store_pb2.GetRequest(key=key), timeout=5).found
                else:
                    lsn = rng.randint(1, len(keys))
                    log.GetInclusionProof(log_pb2.GetInclusionProofRequest(lsn=lsn), timeout=5)
                elapsed = time.perf_counter() - started
                if i >= 100:  # the first calls warm the channel up
                    samples["GetInclusionProof" if i % 2 == 0 else "Get"].append(elapsed)
        return samples
    finally:
        if ingestor is not None:
            ingestor.terminate()
        writer.terminate()


def _proof_sizes() -> list[dict[str, int]]:
    """Inclusion proofs of leaf 0 (the longest path) at several sizes, from one real tree."""
    store, tree = merkle.MemoryNodeStore(), merkle.CompactRange()
    leaves = (merkle.leaf_hash(b"%d" % i) for i in range(max(PROOF_SIZES)))
    store.put_nodes(merkle.Node(*n) for n in tree.append_all(leaves))
    return [
        {
            "tree_size": n,
            "hashes": len(merkle.inclusion_proof(store, 0, n)),
            "ceil_log2": math.ceil(math.log2(n)),
        }
        for n in PROOF_SIZES
    ]


@pytest.mark.timeout(1800)
def test_log_bench(tmp_path: Path) -> None:
    append = _append_batch_runs(tmp_path)
    apply = _apply_rates(tmp_path)
    latencies = _proof_and_get_latencies(tmp_path)

    with_tree = harness.summarize(append["with tree"], BATCH)
    without = harness.summarize(append["without tree"], BATCH)
    p50 = {k: statistics.median(v) * 1e3 for k, v in latencies.items()}
    result = {
        "append_batch": {
            "batch_records": BATCH,
            "concurrency": 8,
            "with_tree": with_tree,
            "without_tree": without,
            "ratio": with_tree["records_per_s_median"] / without["records_per_s_median"],
            # Each repetition's pair (the two writers run back to back).
            "ratios_per_repetition": [
                w.rate / wo.rate
                for w, wo in zip(append["with tree"], append["without tree"], strict=True)
            ],
            "baseline": f"a writer started with {BENCH_NO_LOG_TREE_ENV}=1 (no tree)",
        },
        "apply": {
            "records": APPLY_RECORDS,
            **{
                name.replace(" ", "_"): {
                    "records_per_s_median": statistics.median(v),
                    "records_per_s_min": min(v),
                    "records_per_s_max": max(v),
                    "us_per_record_median": 1e6 / statistics.median(v),
                }
                for name, v in apply.items()
            },
            "ratio": statistics.median(apply["with tree"])
            / statistics.median(apply["without tree"]),
        },
        "proof_latency": {
            "calls": PROOF_CALLS,
            "tree_size": PROOF_RECORDS // BATCH * BATCH,
            "get_p50_ms": p50["Get"],
            "inclusion_proof_p50_ms": p50["GetInclusionProof"],
            "get_p99_ms": harness.pct(latencies["Get"], 0.99) * 1e3,
            "inclusion_proof_p99_ms": harness.pct(latencies["GetInclusionProof"], 0.99) * 1e3,
            "ratio": p50["GetInclusionProof"] / p50["Get"],
        },
        "proof_sizes": _proof_sizes(),
    }
    path = harness.save("log", result)
    for row in result["proof_sizes"]:
        assert row["hashes"] == row["ceil_log2"], row
    print(f"\nwrote {path}")
    a, b, c = (result[k]["ratio"] for k in ("append_batch", "apply", "proof_latency"))
    print(f"AppendBatch {a:.3f}, apply {b:.3f}, proof/Get p50 {c:.2f}")
