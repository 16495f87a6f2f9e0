"""Writer policies: trusted keys, required signatures, bounds, deadlines and message size."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from stemedb import signing
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.faults.faultlib import metric_value, scrape
from tests.support import Service, start_writer, tree_digest, wait_until
from tests.writer.records import KEYS, assertion, epoch, vote


@pytest.mark.parametrize(
    "extra", [(), ("--frontend-processes", "2", "--verify-workers", "0")],
    ids=["single-process", "frontends-2"],
)  # fmt: skip
def test_trusted_keys_policy(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """The same answers from front-end processes, which hold the policy too."""
    keys_file = tmp_path / "trusted.txt"
    keys_file.write_text(
        f"# agents we trust\n{signing.public_key_of(KEYS[0]).hex()}\n\n"
        f"{signing.public_key_of(KEYS[1]).hex()}  # the verifier\n"
    )
    svc = start_writer(tmp_path / "wal", "--trusted-keys", str(keys_file), *extra)
    try:
        svc.wait_ready(90)
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            ok = stub.AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion(signers=2)), timeout=10
            )
            assert ok.receipt.lsn == 1
            before = tree_digest(tmp_path / "wal")
            # Key 2 signs validly but is not trusted.
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(
                    wpb.AppendAssertionRequest(assertion=assertion(signers=3)), timeout=10
                )
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "assertion.signatures[2].signature" in (info.value.details() or "")
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendVote(wpb.AppendVoteRequest(vote=vote(ok.receipt.hash, 3)), timeout=10)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            # Trust is checked before verification (issue 10, item 3): a signature by a key
            # outside the list is refused without being verified, valid or not.
            bad = vote(ok.receipt.hash, 3)
            bad.weight = 0.1
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendVote(wpb.AppendVoteRequest(vote=bad), timeout=10)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert (info.value.details() or "").startswith("vote.signature:")
            # A forged signature under a trusted key is still INVALID_ARGUMENT.
            forged = vote(ok.receipt.hash, 1)
            forged.weight = 0.1
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendVote(wpb.AppendVoteRequest(vote=forged), timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert tree_digest(tmp_path / "wal") == before
            stub.AppendVote(wpb.AppendVoteRequest(vote=vote(ok.receipt.hash, 1)), timeout=10)
    finally:
        svc.kill()


def _assert_unsigned_refused(stub: writer_pb2_grpc.WriterServiceStub) -> None:
    """Unsigned assertions and epochs, alone or in a batch: INVALID_ARGUMENT naming them."""
    for call, req, field in [
        (stub.AppendAssertion, wpb.AppendAssertionRequest(assertion=assertion()),
         "assertion.signatures"),
        (stub.AppendEpoch, wpb.AppendEpochRequest(epoch=epoch(signers=0)), "epoch.signatures"),
        (stub.AppendBatch, wpb.AppendBatchRequest(records=[
            pb.Record(assertion=assertion(signers=1)), pb.Record(assertion=assertion())]),
         "records[1].assertion.signatures"),
        (stub.AppendBatch, wpb.AppendBatchRequest(records=[
            pb.Record(assertion=assertion(signers=1)), pb.Record(epoch=epoch(signers=0))]),
         "records[1].epoch.signatures"),
    ]:  # fmt: skip
        with pytest.raises(grpc.RpcError) as info:
            call(req, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (info.value.details() or "").startswith(field + ":")


def _trusted_writer(tmp_path: Path, *extra: str) -> Service:
    keys_file = tmp_path / "trusted.txt"
    keys_file.write_text(f"{signing.public_key_of(KEYS[0]).hex()}\n")
    return start_writer(tmp_path / "wal", "--trusted-keys", str(keys_file), *extra)


def test_trusted_keys_imply_required_signatures(tmp_path: Path) -> None:
    # No --require-signatures: a trusted-key list alone must not admit unsigned records.
    svc = _trusted_writer(tmp_path)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            stub.AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion("signed", signers=1)), timeout=10
            )
            before = tree_digest(tmp_path / "wal")
            _assert_unsigned_refused(stub)
            assert tree_digest(tmp_path / "wal") == before
    finally:
        svc.kill()


def test_untrusted_signer_buys_no_verification(tmp_path: Path) -> None:
    """A batch signed by a key outside the list is refused before any signature is verified:
    PERMISSION_DENIED even though every signature is garbage, and the verified-signatures
    counter does not move."""
    svc = _trusted_writer(tmp_path)
    try:
        svc.wait_ready()
        outsider = signing.public_key_of(KEYS[2])
        records = []
        for i in range(2000):
            a = assertion(f"u{i}", signers=1)  # signed by the trusted key 0 ...
            a.signatures.add(public_key=outsider, signature=bytes([i % 256]) * 64)  # ... and junk
            records.append(pb.Record(assertion=a))
        verified = "stemedb_writer_signatures_verified_total"
        start = metric_value(scrape(svc.metrics), verified)
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendBatch(wpb.AppendBatchRequest(records=records), timeout=30)
            assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, info.value.details()
            assert (info.value.details() or "").startswith(
                "records[0].assertion.signatures[1].signature:"
            )
            assert metric_value(scrape(svc.metrics), verified) == start
            # A trusted signature is verified and counted.
            stub.AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion("t", signers=1)), timeout=10
            )
            assert metric_value(scrape(svc.metrics), verified) == start + 1
    finally:
        svc.kill()


def test_trusted_keys_file_errors_refuse_to_start(tmp_path: Path) -> None:
    keys_file = tmp_path / "trusted.txt"
    keys_file.write_text("not-a-key\n")
    svc = start_writer(tmp_path / "wal", "--trusted-keys", str(keys_file))
    assert svc.wait_exit() == 2
    assert f"{keys_file}:1" in svc.log_text()


def test_require_signatures(tmp_path: Path) -> None:
    svc = start_writer(tmp_path / "wal", env={"STEMEDB_REQUIRE_SIGNATURES": "1"})
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            _assert_unsigned_refused(stub)
            r = stub.AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion(signers=1)), timeout=10
            )
            assert r.receipt.lsn == 1
    finally:
        svc.kill()


def test_message_size_bound(tmp_path: Path) -> None:
    svc = start_writer(tmp_path / "wal", "--max-message-bytes", "100000")
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
            before = tree_digest(tmp_path / "wal")
            big = assertion()
            big.object.blob = b"x" * 200_000
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=big), timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert tree_digest(tmp_path / "wal") == before
    finally:
        svc.kill()


def test_inflight_bound_gives_resource_exhausted(tmp_path: Path) -> None:
    svc = start_writer(tmp_path / "wal", "--inflight-requests-max", "1")
    try:
        svc.wait_ready()
        # Signed batches keep a request in flight long enough (thousands of verifications).
        batch = wpb.AppendBatchRequest(
            records=[pb.Record(assertion=assertion(f"x{i}", signers=2)) for i in range(1500)]
        )
        codes: list[grpc.StatusCode] = []
        lock = threading.Lock()

        def send() -> None:
            with grpc.insecure_channel(svc.listen) as ch:
                stub = writer_pb2_grpc.WriterServiceStub(ch)
                try:
                    stub.AppendBatch(batch, timeout=60)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
            with lock:
                codes.append(code)

        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert grpc.StatusCode.OK in codes
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes, codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    finally:
        svc.kill()


def test_deadline_is_respected(tmp_path: Path) -> None:
    svc = start_writer(tmp_path / "wal")
    try:
        svc.wait_ready()
        batch = wpb.AppendBatchRequest(
            records=[pb.Record(assertion=assertion(f"d{i}", signers=4)) for i in range(2000)]
        )
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendBatch(batch, timeout=0.05)
            assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            # The server is still healthy and serves the next call.
            r = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
            assert r.receipt.lsn >= 1
    finally:
        svc.kill()


def test_inflight_byte_budget_refuses_before_parsing_and_names_the_bound(tmp_path: Path) -> None:
    """While one large signed batch is being verified, its raw bytes fill the budget: the next
    request is refused with RESOURCE_EXHAUSTED naming inflight_bytes_max, and passes once the
    first is answered."""
    big = wpb.AppendBatchRequest(
        records=[pb.Record(assertion=assertion(f"big{i}", signers=4)) for i in range(4_000)]
    )
    size = big.ByteSize()
    svc = start_writer(tmp_path / "wal", "--inflight-bytes-max", str(size + 10))
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            pending = stub.AppendBatch.future(big, timeout=120)

            def big_in_flight() -> bool:
                return metric_value(scrape(svc.metrics), "stemedb_writer_inflight_bytes") == size

            wait_until(big_in_flight, 60, "the large batch to be in flight")
            small = wpb.AppendAssertionRequest(assertion=assertion("small"))
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(small, timeout=10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (info.value.details() or "").startswith("inflight_bytes_max:")
            assert len(pending.result().receipts) == 4_000
            assert stub.AppendAssertion(small, timeout=10).receipt.lsn == 4_001
        text = scrape(svc.metrics)
        assert (
            metric_value(text, 'stemedb_writer_admission_refused_total{bound="inflight_bytes_max"}')
            == 1
        )
        assert metric_value(text, "stemedb_writer_inflight_bytes") == 0
    finally:
        svc.kill()
