"""Vote.sequence (DESIGN 9.1): canonical bytes, the v1 compatibility rule and validation."""

from __future__ import annotations

import pytest

from stemedb import canonical, jsonrecord, signing, validation
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb

KEY = signing.SigningKey(bytes([7]) * 32)


def _vote(sequence: int) -> pb.Vote:
    return pb.Vote(
        assertion_hash=bytes(range(32)),
        agent_id=signing.public_key_of(KEY),
        weight=-0.25,
        sequence=sequence,
    )


def test_sequence_zero_keeps_the_v1_bytes() -> None:
    v1 = b"".join(
        (
            canonical.VOTE_TAG,
            bytes(range(32)),
            signing.public_key_of(KEY),
            bytes.fromhex("bfd0000000000000"),  # -0.25 as big-endian binary64
        )
    )
    assert canonical.vote_bytes(_vote(0)) == v1
    assert len(v1) == 88


def test_nonzero_sequence_follows_the_weight_as_u64() -> None:
    base = canonical.vote_bytes(_vote(0))
    for seq in (1, 255, 1_764_633_600_123, 2**53 - 1):
        data = canonical.vote_bytes(_vote(seq))
        assert data[: len(base)] == base
        assert data[len(base) :] == seq.to_bytes(8, "big")
    hashes = {canonical.record_hash(pb.Record(vote=_vote(s))) for s in (0, 1, 2)}
    assert len(hashes) == 3


def test_sequence_above_the_limit_is_refused_naming_the_field() -> None:
    vote = _vote(2**53)
    vote.signature = signing.sign_hash(KEY, canonical.record_hash(pb.Record(vote=vote)))
    with pytest.raises(InvalidRecord, match=r"vote\.sequence"):
        validation.validate_vote(vote)
    vote.sequence = 2**53 - 1
    validation.validate_vote(vote)


def test_json_form_round_trips_the_sequence_and_leaves_zero_out() -> None:
    zero = jsonrecord.record_to_json(pb.Record(vote=_vote(0)))
    assert "sequence" not in zero["vote"]
    record = pb.Record(vote=_vote(42))
    as_json = jsonrecord.record_to_json(record)
    assert as_json["vote"]["sequence"] == 42
    assert jsonrecord.record_from_json(as_json) == record
    as_json["vote"]["sequence"] = -1
    with pytest.raises(InvalidRecord, match=r"record\.vote\.sequence"):
        jsonrecord.record_from_json(as_json)
