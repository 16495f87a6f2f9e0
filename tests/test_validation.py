"""Every limit in stemedb.validation, one test per class of violation, each naming the field."""

from __future__ import annotations

import pytest

from stemedb import signing, validation
from stemedb.canonical import record_hash
from stemedb.errors import InvalidRecord, InvalidSignature, UntrustedSigner
from stemedb.v1 import records_pb2 as pb

H = b"\x11" * 32


def good_assertion() -> pb.Assertion:
    return pb.Assertion(
        subject="Q42",
        predicate="name",
        object=pb.Value(text="Douglas Adams"),
        confidence=0.5,
        source_hash=H,
    )


def _mutated(**changes: object) -> pb.Assertion:
    a = good_assertion()
    for k, v in changes.items():
        if k == "object":
            a.ClearField("object")
            if v is not None:
                a.object.CopyFrom(v)  # type: ignore[arg-type]
        else:
            setattr(a, k, v)
    return a


BAD_ASSERTIONS = [
    ("empty subject", _mutated(subject=""), "assertion.subject"),
    ("subject too long", _mutated(subject="é" * 513), "assertion.subject"),
    ("NUL in subject", _mutated(subject="a\x00b"), "assertion.subject"),
    ("empty predicate", _mutated(predicate=""), "assertion.predicate"),
    ("predicate too long", _mutated(predicate="p" * 257), "assertion.predicate"),
    ("missing object", _mutated(object=None), "assertion.object"),
    ("empty object", _mutated(object=pb.Value()), "assertion.object"),
    ("text too long", _mutated(object=pb.Value(text="t" * 65537)), "assertion.object.text"),
    ("blob too long", _mutated(object=pb.Value(blob=b"b" * (2**20 + 1))), "assertion.object.blob"),
    ("ref wrong size", _mutated(object=pb.Value(ref=b"r" * 31)), "assertion.object.ref"),
    ("number NaN", _mutated(object=pb.Value(number=float("nan"))), "assertion.object.number"),
    ("number inf", _mutated(object=pb.Value(number=float("-inf"))), "assertion.object.number"),
    ("confidence > 1", _mutated(confidence=1.0000001), "assertion.confidence"),
    ("confidence < 0", _mutated(confidence=-0.1), "assertion.confidence"),
    ("confidence NaN", _mutated(confidence=float("nan")), "assertion.confidence"),
    ("source missing", _mutated(source_hash=b""), "assertion.source_hash"),
    ("source short", _mutated(source_hash=b"\1" * 31), "assertion.source_hash"),
    ("epoch short", _mutated(epoch=b"\1" * 5), "assertion.epoch"),
]


@pytest.mark.parametrize(
    "a,field", [(a, f) for _, a, f in BAD_ASSERTIONS], ids=[n for n, *_ in BAD_ASSERTIONS]
)
def test_bad_assertion_names_field(a: pb.Assertion, field: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        validation.validate_assertion(a)
    assert info.value.field == field
    assert field in str(info.value)


def test_limits_are_inclusive() -> None:
    validation.validate_assertion(_mutated(subject="s" * 1024, predicate="p" * 256))
    validation.validate_assertion(_mutated(object=pb.Value(text="t" * 65536)))
    validation.validate_assertion(_mutated(object=pb.Value(blob=b"b" * 2**20)))
    validation.validate_assertion(_mutated(confidence=0.0))
    validation.validate_assertion(_mutated(confidence=1.0))


def test_signature_limits() -> None:
    a = good_assertion()
    for i in range(17):
        a.signatures.add(public_key=bytes([i]) * 32, signature=b"\0" * 64)
    with pytest.raises(InvalidRecord, match="more than the limit of 16") as info:
        validation.validate_assertion(a)
    assert info.value.field == "assertion.signatures"
    a = good_assertion()
    a.signatures.add(public_key=b"\1" * 31, signature=b"\0" * 64)
    with pytest.raises(InvalidRecord) as info:
        validation.validate_assertion(a)
    assert info.value.field == "assertion.signatures[0].public_key"
    a = good_assertion()
    a.signatures.add(public_key=b"\1" * 32, signature=b"\0" * 63)
    with pytest.raises(InvalidRecord) as info:
        validation.validate_assertion(a)
    assert info.value.field == "assertion.signatures[0].signature"
    a = good_assertion()
    a.signatures.add(public_key=b"\1" * 32, signature=b"\0" * 64)
    a.signatures.add(public_key=b"\1" * 32, signature=b"\2" * 64)
    with pytest.raises(InvalidRecord, match="twice") as info:
        validation.validate_assertion(a)
    assert info.value.field == "assertion.signatures[1].public_key"


@pytest.mark.parametrize(
    "vote,field",
    [
        (pb.Vote(agent_id=H, weight=0.5, signature=b"s" * 64), "vote.assertion_hash"),
        (pb.Vote(assertion_hash=H, weight=0.5, signature=b"s" * 64), "vote.agent_id"),
        (pb.Vote(assertion_hash=H, agent_id=H, weight=1.5, signature=b"s" * 64), "vote.weight"),
        (
            pb.Vote(assertion_hash=H, agent_id=H, weight=float("inf"), signature=b"s" * 64),
            "vote.weight",
        ),
        (pb.Vote(assertion_hash=H, agent_id=H, weight=0.5), "vote.signature"),
        (pb.Vote(assertion_hash=H, agent_id=H, weight=0.5, signature=b"s" * 10), "vote.signature"),
    ],
)
def test_bad_vote_names_field(vote: pb.Vote, field: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        validation.validate_vote(vote)
    assert info.value.field == field


@pytest.mark.parametrize(
    "epoch,field",
    [
        (pb.Epoch(name=""), "epoch.name"),
        (pb.Epoch(name="n" * 257), "epoch.name"),
        (pb.Epoch(name="n", description="d" * 4097), "epoch.description"),
        (pb.Epoch(name="n", supersedes=b"x" * 3, supersession_type=1), "epoch.supersedes"),
        (pb.Epoch(name="n", supersedes=H), "epoch.supersession_type"),
        (pb.Epoch(name="n", supersession_type=2), "epoch.supersession_type"),
        (pb.Epoch(name="n", supersedes=H, supersession_type=99), "epoch.supersession_type"),  # type: ignore[arg-type]
    ],
)
def test_bad_epoch_names_field(epoch: pb.Epoch, field: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        validation.validate_epoch(epoch)
    assert info.value.field == field


def test_batch_limits_and_paths() -> None:
    with pytest.raises(InvalidRecord) as info:
        validation.validate_batch([], 0)
    assert info.value.field == "records"
    good = pb.Record(assertion=good_assertion())
    with pytest.raises(InvalidRecord, match="10000"):
        validation.validate_batch([good] * 10_001, 100)
    with pytest.raises(InvalidRecord, match="bytes"):
        validation.validate_batch([good], 16 * 2**20 + 1)
    bad = pb.Record(vote=pb.Vote(assertion_hash=H, agent_id=H, weight=2.0, signature=b"s" * 64))
    with pytest.raises(InvalidRecord) as info:
        validation.validate_batch([good, good, bad], 100)
    assert info.value.field == "records[2].vote.weight"
    with pytest.raises(InvalidRecord) as info:
        validation.validate_batch([good, pb.Record()], 100)
    assert info.value.field == "records[1]"
    assert validation.validate_batch([good], 10) == ["assertion"]


def test_signature_checks() -> None:
    key = signing.SigningKey(b"\7" * 32)
    other = signing.SigningKey(b"\x08" * 32)
    r = pb.Record(assertion=good_assertion())
    h = record_hash(r)
    r.assertion.signatures.append(signing.signature_entry(key, h))
    assert signing.check_record_signatures(r, h) == 1
    pub = signing.public_key_of(key)
    assert signing.check_record_signatures(r, h, trusted_keys={pub}) == 1
    with pytest.raises(UntrustedSigner):
        signing.check_record_signatures(r, h, trusted_keys={signing.public_key_of(other)})
    # A signature by another key under this key's name: forged.
    r.assertion.signatures[0].signature = signing.sign_hash(other, h)
    with pytest.raises(InvalidSignature) as info:
        signing.check_record_signatures(r, h)
    assert info.value.field == "record.assertion.signatures[0].signature"
    # Unsigned with require_signatures.
    unsigned = pb.Record(assertion=good_assertion())
    with pytest.raises(InvalidSignature):
        signing.check_record_signatures(unsigned, h, require_signatures=True)
    assert signing.check_record_signatures(unsigned, h) == 0
