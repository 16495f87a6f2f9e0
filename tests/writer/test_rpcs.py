"""Every WriterService RPC against a real stemedb-writer process."""

from __future__ import annotations

import grpc
import pytest

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import dump_wal
from stemedb.walrecord import decode_payload
from tests.support import Service
from tests.writer.records import assertion, epoch, vote

Stub = writer_pb2_grpc.WriterServiceStub


def _wal_records(writer: Service) -> list[tuple[int, bytes, pb.Record]]:
    wal_dir = writer.argv[writer.argv.index("--wal-dir") + 1]
    from pathlib import Path

    out = []
    for rec in dump_wal(Path(wal_dir)):
        d = decode_payload(rec.record_type, rec.payload)
        out.append((rec.lsn, d.content_hash, d.record))
    return out


def test_append_assertion_returns_hash_and_lsn(stub: Stub, writer: Service) -> None:
    a = assertion(signers=2)
    resp = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=a), timeout=10)
    assert resp.receipt.hash == canonical.record_hash(pb.Record(assertion=a))
    assert resp.receipt.lsn == 1
    [(lsn, h, rec)] = _wal_records(writer)
    assert (lsn, h) == (1, resp.receipt.hash)
    assert rec.assertion == a  # signatures kept as received


def test_append_vote_and_epoch(stub: Stub, writer: Service) -> None:
    a = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
    v = vote(a.receipt.hash, key_index=1, weight=-0.25)
    rv = stub.AppendVote(wpb.AppendVoteRequest(vote=v), timeout=10)
    assert rv.receipt.hash == canonical.record_hash(pb.Record(vote=v))
    assert rv.receipt.lsn == 2
    e = epoch(signers=2)
    re_ = stub.AppendEpoch(wpb.AppendEpochRequest(epoch=e), timeout=10)
    assert re_.receipt.hash == canonical.record_hash(pb.Record(epoch=e))
    assert re_.receipt.lsn == 3
    kinds = [r.WhichOneof("kind") for _, _, r in _wal_records(writer)]
    assert kinds == ["assertion", "vote", "epoch"]


def test_append_batch_consecutive_lsns_in_order(stub: Stub, writer: Service) -> None:
    stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion("first")), timeout=10)
    records = [pb.Record(assertion=assertion(f"s{i}", signers=i % 3)) for i in range(50)]
    records.append(pb.Record(epoch=epoch()))
    records.append(pb.Record(vote=vote(canonical.record_hash(records[0]))))
    resp = stub.AppendBatch(wpb.AppendBatchRequest(records=records), timeout=30)
    assert [r.lsn for r in resp.receipts] == list(range(2, 2 + len(records)))
    assert [r.hash for r in resp.receipts] == [canonical.record_hash(r) for r in records]
    wal = _wal_records(writer)
    assert [h for _, h, _ in wal[1:]] == [r.hash for r in resp.receipts]


def test_reappend_is_a_new_event_with_the_same_hash(stub: Stub) -> None:
    req = wpb.AppendAssertionRequest(assertion=assertion())
    first = stub.AppendAssertion(req, timeout=10).receipt
    again = stub.AppendAssertion(req, timeout=10).receipt
    assert first.hash == again.hash
    assert again.lsn == first.lsn + 1


def test_large_signed_batch_uses_worker_processes(stub: Stub) -> None:
    records = [pb.Record(assertion=assertion(f"k{i}", signers=1)) for i in range(300)]
    resp = stub.AppendBatch(wpb.AppendBatchRequest(records=records), timeout=60)
    assert len(resp.receipts) == 300
    # One forged signature deep inside the batch is found and named; nothing is written.
    records[217].assertion.signatures[0].signature = b"\x00" * 64
    with pytest.raises(grpc.RpcError) as info:
        stub.AppendBatch(wpb.AppendBatchRequest(records=records), timeout=60)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "records[217].assertion.signatures[0].signature" in (info.value.details() or "")
