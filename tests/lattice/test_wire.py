"""The hand encoder of _wire.py gives protobuf's deterministic bytes, edge cases included."""

from __future__ import annotations

import pytest

from stemedb.ingestor._wire import candidate_bytes, framed_candidate, resolution_bytes, varint
from stemedb.v1 import query_pb2


@pytest.mark.parametrize(
    "figures",
    [
        (bytes(32), 0.0, 0.0, 0.0, 0, 0, False, 0, 0, 0, False),
        (b"\x01" * 32, -0.0, 1e-300, 5e-324, 1, 2**32 - 1, True, 7, 2**53 - 1, 2**64 - 1, True),
        (b"\xff" * 32, -2.5, 3.0, 0.5, 300, 16384, False, 128, 1, 2, True),
    ],
)
def test_candidate_bytes_equal_protobuf(figures: tuple) -> None:  # type: ignore[type-arg]
    names = [f.name for f in query_pb2.Candidate.DESCRIPTOR.fields]
    message = query_pb2.Candidate(**dict(zip(names, figures, strict=True)))
    assert candidate_bytes(*figures) == message.SerializeToString(deterministic=True)


def test_resolution_bytes_equal_protobuf() -> None:
    candidate = query_pb2.Candidate(assertion_hash=b"\x02" * 32, score=1.5, votes=3)
    expected = query_pb2.Resolution(
        subject="s", predicate="p\x00q", lens="consensus", status=query_pb2.STATUS_CONTESTED,
        score=-0.0, candidates=[candidate, candidate], policy_hash=b"\x09" * 32,
    )  # fmt: skip
    expected.winner.hash = b"\x03" * 32
    expected.winner.assertion.subject = "s"
    head = query_pb2.Resolution(subject="s", predicate="p\x00q", lens="consensus")
    got = resolution_bytes(
        head.SerializeToString(deterministic=True),
        query_pb2.STATUS_CONTESTED,
        expected.winner.SerializeToString(deterministic=True),
        -0.0,
        [framed_candidate(candidate.SerializeToString(deterministic=True))] * 2,
        b"\x09" * 32,
    )
    assert got == expected.SerializeToString(deterministic=True)


def test_varint() -> None:
    assert [varint(v) for v in (0, 1, 127, 128, 300)] == [
        b"\x00", b"\x01", b"\x7f", b"\x80\x01", b"\xac\x02",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="negative"):
        varint(-1)
