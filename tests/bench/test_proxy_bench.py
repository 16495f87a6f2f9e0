"""Benchmark: the cost of signing at the wallet (issue 14's performance item).

AppendBatch of 500 assertions sent unsigned through the wallet (signed there, forwarded to the
writer), against the same kind of batches signed by the client beforehand and sent to the writer
directly; both in the same run, alternating, with the same load generator. The target is at least
0.7x. ``make bench`` runs it; the figures go to build/bench/wallet.json and the "Wallet" section of
docs/benchmarks.md (tools/bench_report.py). Alone: ``pytest -m bench -s
tests/bench/test_proxy_bench.py``.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, signing
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import wallet_pb2 as wpb
from stemedb.v1 import wallet_pb2_grpc, writer_pb2
from tests.bench import harness
from tests.support import start_writer
from tests.wallet.wallet_testlib import start_wallet

pytestmark = pytest.mark.bench

BATCH_RECORDS = 500
CONCURRENCY = 4
SECONDS = 5.0
REPS = 2
TARGET_RATIO = 0.7
_METHOD = "/stemedb.v1.WriterService/AppendBatch"


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for the wallet's Unix socket (a socket path is limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="stb", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _batches(count: int, key: signing.SigningKey | None, tag: str) -> list[bytes]:
    out = []
    for b in range(count):
        req = writer_pb2.AppendBatchRequest()
        for i in range(BATCH_RECORDS):
            a = pb.Assertion(
                subject=f"{tag}-{b}-{i}", predicate="name", object=pb.Value(text="x" * 64),
                confidence=0.5, source_hash=b"\x05" * 32,
            )  # fmt: skip
            if key is not None:
                digest = canonical.record_hash(pb.Record(assertion=a))
                a.signatures.append(signing.signature_entry(key, digest))
            req.records.add(assertion=a)
        out.append(req.SerializeToString())
    return out


def test_proxy_against_client_signing(tmp_path: Path, sock_dir: Path) -> None:
    writer = start_writer(tmp_path / "wal")
    wallet = start_wallet(tmp_path / "ks", sock_dir, writer=writer.listen)
    try:
        writer.wait_ready()
        wallet.wait_ready()
        with grpc.insecure_channel(wallet.listen) as channel:
            stub = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            stub.CreateKey(wpb.CreateKeyRequest(name="bench"), timeout=10)
        unsigned = _batches(16, None, "via")
        signed = _batches(16, signing.SigningKey(b"\x09" * 32), "direct")
        runs: dict[str, list[harness.Run]] = {"direct": [], "wallet": []}
        for _ in range(REPS):
            runs["direct"].append(
                harness.load(writer.listen, _METHOD, signed, CONCURRENCY, SECONDS, writer.proc.pid)
            )
            runs["wallet"].append(
                harness.load(
                    wallet.listen, _METHOD, unsigned, CONCURRENCY, SECONDS, wallet.proc.pid
                )
            )
        for name, r in runs.items():
            assert all(not run.errors for run in r), f"{name}: {[run.errors for run in r]}"
        summary = {
            name: harness.summarize(r, records_per_call=BATCH_RECORDS) for name, r in runs.items()
        }
        direct = summary["direct"]["records_per_s_median"]
        via = summary["wallet"]["records_per_s_median"]
        pairs = zip(runs["wallet"], runs["direct"], strict=True)
        ratio = statistics.median(w.rate / d.rate for w, d in pairs)
        path = harness.save("wallet", {
            "batch_records": BATCH_RECORDS, "concurrency": CONCURRENCY, "seconds": SECONDS,
            "direct": summary["direct"], "wallet": summary["wallet"],
            "ratio_wallet_to_direct": round(ratio, 3), "target_ratio": TARGET_RATIO,
        })  # fmt: skip
        print(
            f"AppendBatch {BATCH_RECORDS}: {via:,.0f} records/s through the wallet, "
            f"{direct:,.0f} client-signed direct: {ratio:.2f}x (target >= {TARGET_RATIO}); {path}"
        )
        assert via > 0 and direct > 0
    finally:
        wallet.kill()
        writer.kill()
