"""Unknown protobuf fields are refused at every level (issue 10, item 1).

A field number the schema does not know is kept by the parser and would be re-serialized into
the WAL, covered by no hash or signature. Each case sends raw bytes with one extra field at one
level to a real writer: INVALID_ARGUMENT naming the path of the message that carries it, and the
WAL byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from stemedb.v1 import writer_pb2 as wpb
from tests.support import Service, tree_digest
from tests.writer.records import assertion, epoch, vote
from tests.writer.records import wire_field as field
from tests.writer.records import wire_varint_field as varint_field

H = b"\x21" * 32


EXTRA = field(100, b"not covered by any hash")


def _signed_assertion_bytes(*, object_extra: bytes = b"", signature_extra: bytes = b"") -> bytes:
    """A signed assertion serialized by hand, with extra bytes inside its Value or its first
    SignatureEntry (the signature stays valid: unknown fields are not part of the hash)."""
    a = assertion(signers=1)
    entry = a.signatures[0].SerializeToString() + signature_extra
    value = a.object.SerializeToString() + object_extra
    a.ClearField("signatures")
    a.ClearField("object")
    return a.SerializeToString() + field(3, value) + field(8, entry)


def _batch(*records: bytes) -> bytes:
    return b"".join(field(1, r) for r in records)


def _record(kind_number: int, body: bytes) -> bytes:
    return field(kind_number, body)


ASSERTION = assertion().SerializeToString()
VOTE = vote(H).SerializeToString()
EPOCH = epoch().SerializeToString()
BIG = field(101, b"\x00" * (1024 * 1024))  # a megabyte in a field nobody knows

CASES: list[tuple[str, str, bytes, str]] = [
    ("request", "AppendAssertion", field(1, ASSERTION) + EXTRA, "request: unknown field 100"),
    ("assertion", "AppendAssertion", field(1, ASSERTION + EXTRA), "assertion: unknown field 100"),
    ("assertion, a megabyte", "AppendAssertion", field(1, ASSERTION + BIG),
     "assertion: unknown field 101"),
    ("known number, wrong wire type", "AppendAssertion", field(1, ASSERTION + varint_field(1, 7)),
     "assertion: unknown field 1"),
    ("value", "AppendAssertion", field(1, _signed_assertion_bytes(object_extra=EXTRA)),
     "assertion.object: unknown field 100"),
    ("signature entry", "AppendAssertion",
     field(1, _signed_assertion_bytes(signature_extra=varint_field(107, 1))),
     "assertion.signatures[0]: unknown field 107"),
    ("vote", "AppendVote", field(1, VOTE + varint_field(107, 1)), "vote: unknown field 107"),
    ("vote request", "AppendVote", field(1, VOTE) + EXTRA, "request: unknown field 100"),
    ("epoch", "AppendEpoch", field(1, EPOCH + EXTRA), "epoch: unknown field 100"),
    ("epoch request", "AppendEpoch", field(1, EPOCH) + EXTRA, "request: unknown field 100"),
    ("batch request", "AppendBatch", _batch(_record(1, ASSERTION)) + EXTRA,
     "request: unknown field 100"),
    ("batch record", "AppendBatch", _batch(_record(1, ASSERTION), _record(2, VOTE) + EXTRA),
     "records[1]: unknown field 100"),
    ("batch vote", "AppendBatch",
     _batch(_record(1, ASSERTION), _record(3, EPOCH), _record(1, ASSERTION),
            _record(2, VOTE + varint_field(107, 1))),
     "records[3].vote: unknown field 107"),
    ("batch epoch signature", "AppendBatch",
     _batch(_record(3, epoch(signers=0).SerializeToString()
                    + field(5, epoch().signatures[0].SerializeToString() + EXTRA))),
     "records[0].epoch.signatures[0]: unknown field 100"),
    ("batch assertion value", "AppendBatch",
     _batch(_record(1, _signed_assertion_bytes(object_extra=BIG))),
     "records[0].assertion.object: unknown field 101"),
]  # fmt: skip


def _wal_dir(writer: Service) -> Path:
    return Path(writer.argv[writer.argv.index("--wal-dir") + 1])


@pytest.mark.parametrize("method,data,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_unknown_field_is_refused_naming_its_path(
    shared_writer: Service, method: str, data: bytes, message: str
) -> None:
    with grpc.insecure_channel(shared_writer.listen) as channel:
        seed = wpb.AppendAssertionRequest(assertion=assertion("seed")).SerializeToString()
        channel.unary_unary("/stemedb.v1.WriterService/AppendAssertion")(seed, timeout=10)
        before = tree_digest(_wal_dir(shared_writer))
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/stemedb.v1.WriterService/{method}")(data, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert info.value.details() == message
    assert tree_digest(_wal_dir(shared_writer)) == before


def test_the_same_bytes_without_the_extra_field_are_accepted(shared_writer: Service) -> None:
    """The hand-built encodings above are valid once the unknown field is gone, so each case
    is refused for that field alone."""
    with grpc.insecure_channel(shared_writer.listen) as channel:
        call = channel.unary_unary("/stemedb.v1.WriterService/AppendBatch")
        data = _batch(
            _record(1, _signed_assertion_bytes()),
            _record(2, VOTE),
            _record(3, epoch(signers=0).SerializeToString()
                    + field(5, epoch().signatures[0].SerializeToString())),
        )  # fmt: skip
        resp = wpb.AppendBatchResponse.FromString(call(data, timeout=10))
    assert [r.lsn for r in resp.receipts] == [resp.receipts[0].lsn + i for i in range(3)]
