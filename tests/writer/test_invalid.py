"""Every class of invalid input: INVALID_ARGUMENT naming the field, and the WAL byte-identical."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from stemedb import canonical, signing
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.faults.faultlib import metric_value, scrape
from tests.support import Service, tree_digest
from tests.writer.records import KEYS, assertion, epoch, vote

Stub = writer_pb2_grpc.WriterServiceStub
H = b"\x33" * 32


def _a(**changes: Any) -> wpb.AppendAssertionRequest:
    a = assertion()
    for key, value in changes.items():
        if key == "object":
            a.ClearField("object")
            if value is not None:
                a.object.CopyFrom(value)
        else:
            setattr(a, key, value)
    return wpb.AppendAssertionRequest(assertion=a)


def _signed_a(mutate: Callable[[pb.Assertion], None]) -> wpb.AppendAssertionRequest:
    a = assertion(signers=2)
    mutate(a)
    return wpb.AppendAssertionRequest(assertion=a)


def _v(**changes: Any) -> wpb.AppendVoteRequest:
    v = vote(H)
    for key, value in changes.items():
        setattr(v, key, value)
    return wpb.AppendVoteRequest(vote=v)


def _e(**changes: Any) -> wpb.AppendEpochRequest:
    e = epoch(signers=0)
    for key, value in changes.items():
        setattr(e, key, value)
    return wpb.AppendEpochRequest(epoch=e)


def _too_many_sigs(a: pb.Assertion) -> None:
    for i in range(15):
        a.signatures.add(public_key=bytes([i]) * 32, signature=b"\x01" * 64)


def _dup_sig(a: pb.Assertion) -> None:
    a.signatures.append(a.signatures[0])


def _forge(a: pb.Assertion) -> None:
    # Key 1's signature presented under key 0's public key.
    a.signatures[0].signature = a.signatures[1].signature


def _truncate(a: pb.Assertion) -> None:
    a.signatures[1].signature = a.signatures[1].signature[:40]


def _wrong_key(a: pb.Assertion) -> None:
    a.signatures[0].public_key = signing.public_key_of(KEYS[3])


def _tampered(a: pb.Assertion) -> None:
    a.confidence = 0.5  # signed at 0.75: the signatures no longer match the hash


def _big_batch() -> wpb.AppendBatchRequest:
    blob = pb.Value(blob=b"\x00" * (1024 * 1024))
    records = [pb.Record(assertion=assertion(f"b{i}")) for i in range(17)]
    for r in records:
        r.assertion.object.CopyFrom(blob)
    return wpb.AppendBatchRequest(records=records)


CASES: list[tuple[str, str, Any, str]] = [
    ("subject empty", "AppendAssertion", _a(subject=""), "assertion.subject"),
    ("subject NUL", "AppendAssertion", _a(subject="a\x00b"), "assertion.subject"),
    ("subject too long", "AppendAssertion", _a(subject="s" * 1025), "assertion.subject"),
    ("predicate empty", "AppendAssertion", _a(predicate=""), "assertion.predicate"),
    ("predicate too long", "AppendAssertion", _a(predicate="p" * 257), "assertion.predicate"),
    ("object missing", "AppendAssertion", _a(object=None), "assertion.object"),
    ("object unset", "AppendAssertion", _a(object=pb.Value()), "assertion.object"),
    ("text too long", "AppendAssertion", _a(object=pb.Value(text="t" * 65537)),
     "assertion.object.text"),
    ("blob too long", "AppendAssertion", _a(object=pb.Value(blob=b"b" * (2**20 + 1))),
     "assertion.object.blob"),
    ("ref wrong length", "AppendAssertion", _a(object=pb.Value(ref=b"r" * 33)),
     "assertion.object.ref"),
    ("number NaN", "AppendAssertion", _a(object=pb.Value(number=float("nan"))),
     "assertion.object.number"),
    ("number infinite", "AppendAssertion", _a(object=pb.Value(number=float("inf"))),
     "assertion.object.number"),
    ("confidence above 1", "AppendAssertion", _a(confidence=1.5), "assertion.confidence"),
    ("confidence negative", "AppendAssertion", _a(confidence=-0.01), "assertion.confidence"),
    ("confidence NaN", "AppendAssertion", _a(confidence=float("nan")), "assertion.confidence"),
    ("source hash missing", "AppendAssertion", _a(source_hash=b""), "assertion.source_hash"),
    ("source hash short", "AppendAssertion", _a(source_hash=b"\x01" * 16), "assertion.source_hash"),
    ("epoch hash short", "AppendAssertion", _a(epoch=b"\x01" * 31), "assertion.epoch"),
    ("17 signatures", "AppendAssertion", _signed_a(_too_many_sigs), "assertion.signatures"),
    ("duplicate signer", "AppendAssertion", _signed_a(_dup_sig),
     "assertion.signatures[2].public_key"),
    ("forged signature", "AppendAssertion", _signed_a(_forge),
     "assertion.signatures[0].signature"),
    ("truncated signature", "AppendAssertion", _signed_a(_truncate),
     "assertion.signatures[1].signature"),
    ("wrong key", "AppendAssertion", _signed_a(_wrong_key), "assertion.signatures[0].signature"),
    ("record changed after signing", "AppendAssertion", _signed_a(_tampered),
     "assertion.signatures[0].signature"),
    ("missing assertion", "AppendAssertion", wpb.AppendAssertionRequest(), "assertion"),
    ("vote hash missing", "AppendVote", _v(assertion_hash=b""), "vote.assertion_hash"),
    ("vote agent short", "AppendVote", _v(agent_id=b"\x01" * 31), "vote.agent_id"),
    ("vote weight above 1", "AppendVote", _v(weight=1.01), "vote.weight"),
    ("vote weight NaN", "AppendVote", _v(weight=float("nan")), "vote.weight"),
    ("vote unsigned", "AppendVote", _v(signature=b""), "vote.signature"),
    ("vote forged", "AppendVote", _v(weight=-0.5), "vote.signature"),
    ("vote by another agent", "AppendVote", _v(agent_id=signing.public_key_of(KEYS[2])),
     "vote.signature"),
    ("epoch name empty", "AppendEpoch", _e(name=""), "epoch.name"),
    ("epoch name too long", "AppendEpoch", _e(name="n" * 257), "epoch.name"),
    ("epoch description too long", "AppendEpoch", _e(description="d" * 4097),
     "epoch.description"),
    ("epoch supersedes short", "AppendEpoch", _e(supersedes=b"\x01" * 3, supersession_type=1),
     "epoch.supersedes"),
    ("epoch type missing", "AppendEpoch", _e(supersedes=H), "epoch.supersession_type"),
    ("epoch type without supersedes", "AppendEpoch", _e(supersession_type=3),
     "epoch.supersession_type"),
    # Input hygiene (issue 10, item 11): -0.0 hashes differently from 0.0; names are NFC and
    # free of control and bidirectional characters.
    ("confidence -0.0", "AppendAssertion", _a(confidence=-0.0), "assertion.confidence"),
    ("number -0.0", "AppendAssertion", _a(object=pb.Value(number=-0.0)),
     "assertion.object.number"),
    ("vote weight -0.0", "AppendVote", _v(weight=-0.0), "vote.weight"),
    ("subject not NFC", "AppendAssertion", _a(subject="cafe\u0301"), "assertion.subject"),
    ("subject control character", "AppendAssertion", _a(subject="a\x1b[2Jb"),
     "assertion.subject"),
    ("subject bidi override", "AppendAssertion", _a(subject="txt.\u202eexe"),
     "assertion.subject"),
    ("predicate bidi isolate", "AppendAssertion", _a(predicate="name\u2067"),
     "assertion.predicate"),
    ("predicate not NFC", "AppendAssertion", _a(predicate="re\u0301sume\u0301"),
     "assertion.predicate"),
    ("epoch name not NFC", "AppendEpoch", _e(name="Epoque e\u0301"), "epoch.name"),
    ("epoch name control character", "AppendEpoch", _e(name="era\x07"), "epoch.name"),
    ("batch subject bidi mark", "AppendBatch",
     wpb.AppendBatchRequest(records=[pb.Record(assertion=assertion()),
                                     pb.Record(assertion=assertion("Q\u200f42"))]),
     "records[1].assertion.subject"),
    ("batch empty", "AppendBatch", wpb.AppendBatchRequest(), "records"),
    ("batch over 10,000 records", "AppendBatch",
     wpb.AppendBatchRequest(records=[pb.Record(vote=vote(H))] * 10_001), "records"),
    ("batch over 16 MiB", "AppendBatch", _big_batch(), "records"),
    ("batch with an empty record", "AppendBatch",
     wpb.AppendBatchRequest(records=[pb.Record(assertion=assertion()), pb.Record()]),
     "records[1]"),
    ("batch with one bad record", "AppendBatch",
     wpb.AppendBatchRequest(records=[pb.Record(assertion=assertion()),
                                     pb.Record(vote=vote(H, weight=3.0))]),
     "records[1].vote.weight"),
]  # fmt: skip

METHODS = {
    "AppendAssertion": wpb.AppendAssertionResponse,
    "AppendVote": wpb.AppendVoteResponse,
    "AppendEpoch": wpb.AppendEpochResponse,
    "AppendBatch": wpb.AppendBatchResponse,
}


def _wal_dir(writer: Service) -> Path:
    return Path(writer.argv[writer.argv.index("--wal-dir") + 1])


@pytest.mark.parametrize("method,request_msg,field", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_invalid_input_names_field_and_writes_nothing(
    shared_writer: Service, shared_stub: Stub, method: str, request_msg: Any, field: str
) -> None:
    writer, stub = shared_writer, shared_stub
    # One valid record first, so the WAL has content that must stay byte-identical.
    stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion("seed")), timeout=10)
    before = tree_digest(_wal_dir(writer))
    with pytest.raises(grpc.RpcError) as info:
        getattr(stub, method)(request_msg, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    details = info.value.details() or ""
    assert details.startswith(field + ":"), f"{details!r} should name {field}"
    assert tree_digest(_wal_dir(writer)) == before


def test_undecodable_request_is_invalid_argument(shared_writer: Service) -> None:
    writer = shared_writer
    with grpc.insecure_channel(writer.listen) as channel:
        before = tree_digest(_wal_dir(writer))
        for method in METHODS:
            call = channel.unary_unary(f"/stemedb.v1.WriterService/{method}")
            with pytest.raises(grpc.RpcError) as info:
                call(b"\xff\xff\xff\xff\x0f", timeout=10)  # a truncated varint tag
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (info.value.details() or "").startswith("request:")
        assert tree_digest(_wal_dir(writer)) == before


def test_valid_epoch_supersedes(shared_stub: Stub) -> None:
    stub = shared_stub
    first = stub.AppendEpoch(wpb.AppendEpochRequest(epoch=epoch()), timeout=10).receipt
    e = pb.Epoch(name="Relativity", supersedes=first.hash,
                 supersession_type=pb.SUPERSESSION_TYPE_REVOLUTION)  # fmt: skip
    r = stub.AppendEpoch(wpb.AppendEpochRequest(epoch=e), timeout=10).receipt
    assert r.hash == canonical.record_hash(pb.Record(epoch=e))


def test_refused_batch_is_counted_by_its_records_real_kinds(shared_writer: Service) -> None:
    """A refused AppendBatch of votes and an epoch counts 3 invalid votes and 1 invalid epoch,
    not 4 invalid assertions; an accepted one counts its kinds as ok."""

    def counts() -> dict[tuple[str, str], float]:
        text = scrape(shared_writer.metrics)
        return {
            (kind, outcome): metric_value(
                text, f'stemedb_writer_records_total{{kind="{kind}",outcome="{outcome}"}}'
            )
            for kind in ("assertion", "vote", "epoch")
            for outcome in ("ok", "invalid")
        }

    good = [pb.Record(vote=vote(H, key_index=i)) for i in range(3)]
    with grpc.insecure_channel(shared_writer.listen) as channel:
        stub = writer_pb2_grpc.WriterServiceStub(channel)
        before = counts()
        bad_epoch = pb.Record(epoch=epoch(name="", signers=0))
        with pytest.raises(grpc.RpcError) as info:
            stub.AppendBatch(wpb.AppendBatchRequest(records=[*good, bad_epoch]), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        middle = counts()
        stub.AppendBatch(wpb.AppendBatchRequest(records=[*good, pb.Record(epoch=epoch())]), 10)
        after = counts()
    delta = {k: middle[k] - before[k] for k in before}
    assert delta == {**dict.fromkeys(before, 0.0), ("vote", "invalid"): 3, ("epoch", "invalid"): 1}
    delta = {k: after[k] - middle[k] for k in before}
    assert delta == {**dict.fromkeys(before, 0.0), ("vote", "ok"): 3, ("epoch", "ok"): 1}
