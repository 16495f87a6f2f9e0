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


# Input hygiene (issue 10, item 11): one meaning, one hash.
NFD_E = "e\u0301"  # "é" decomposed: the same text to a reader, other bytes to the hash
HYGIENE = [
    ("confidence -0.0", _mutated(confidence=-0.0), "assertion.confidence", "-0.0"),
    ("number -0.0", _mutated(object=pb.Value(number=-0.0)), "assertion.object.number", "-0.0"),
    ("subject NFD", _mutated(subject=f"caf{NFD_E}"), "assertion.subject", "NFC"),
    ("predicate NFD", _mutated(predicate=f"r{NFD_E}sum{NFD_E}"), "assertion.predicate", "NFC"),
    ("subject ESC", _mutated(subject="a\x1b[31mb"), "assertion.subject", "U+001B"),
    ("subject DEL", _mutated(subject="a\x7f"), "assertion.subject", "U+007F"),
    ("subject C1", _mutated(subject="a\x85"), "assertion.subject", "U+0085"),
    ("subject NUL", _mutated(subject="a\x00b"), "assertion.subject", "U+0000"),
    ("subject newline", _mutated(subject="a\nb"), "assertion.subject", "U+000A"),
    ("subject RLO", _mutated(subject="abc\u202edcba"), "assertion.subject", "U+202E"),
    ("predicate LRI", _mutated(predicate="p\u2066q"), "assertion.predicate", "U+2066"),
    ("predicate PDI", _mutated(predicate="p\u2069"), "assertion.predicate", "U+2069"),
    ("subject LRM", _mutated(subject="Q\u200e42"), "assertion.subject", "U+200E"),
    ("subject RLM", _mutated(subject="Q\u200f42"), "assertion.subject", "U+200F"),
    ("subject ALM", _mutated(subject="Q\u061c42"), "assertion.subject", "U+061C"),
]


@pytest.mark.parametrize("a,field,says", [c[1:] for c in HYGIENE], ids=[c[0] for c in HYGIENE])
def test_hygiene_refusals_name_the_field(a: pb.Assertion, field: str, says: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        validation.validate_assertion(a)
    assert info.value.field == field
    assert says in info.value.reason


def test_hygiene_vote_and_epoch() -> None:
    with pytest.raises(InvalidRecord, match=r"-0\.0") as info:
        validation.validate_vote(
            pb.Vote(assertion_hash=H, agent_id=H, weight=-0.0, signature=b"s" * 64)
        )
    assert info.value.field == "vote.weight"
    for name, says in [(f"Caf{NFD_E}", "NFC"), ("a\u202db", "U+202D"), ("a\tb", "U+0009")]:
        with pytest.raises(InvalidRecord) as info:
            validation.validate_epoch(pb.Epoch(name=name))
        assert info.value.field == "epoch.name"
        assert says in info.value.reason


def test_hygiene_accepts_what_it_should() -> None:
    # NFC text beyond ASCII, zero with a positive sign, and free text (objects, descriptions)
    # that may hold newlines and tabs.
    validation.validate_assertion(_mutated(subject="caf\u00e9", predicate="名前"))
    validation.validate_assertion(_mutated(subject="שלום", predicate="עברית"))  # RTL, no controls
    validation.validate_assertion(_mutated(confidence=0.0, object=pb.Value(number=0.0)))
    validation.validate_assertion(_mutated(object=pb.Value(text="line 1\nline 2\t\u202e")))
    validation.validate_vote(pb.Vote(assertion_hash=H, agent_id=H, weight=0.0, signature=b"s" * 64))
    validation.validate_epoch(pb.Epoch(name="Caf\u00e9", description="first\nsecond"))


def _length_delimited(number: int, payload: bytes) -> bytes:
    assert number < 16 and len(payload) < 2**14  # a one-byte tag, a two-byte length at most
    size = len(payload)
    length = bytes([size]) if size < 128 else bytes([size & 0x7F | 0x80, size >> 7])
    return bytes([number << 3 | 2]) + length + payload


def test_check_known_fields_names_the_path() -> None:
    a = good_assertion()
    a.signatures.add(public_key=b"\1" * 32, signature=b"\2" * 64)
    data = pb.Record(assertion=a).SerializeToString()
    validation.check_known_fields(pb.Record.FromString(data), "records[0]")
    entry = a.signatures[0].SerializeToString() + b"\xb8\x06\x01"  # field 103, varint 1
    a.ClearField("signatures")
    inner = a.SerializeToString() + _length_delimited(8, entry)
    record = pb.Record.FromString(_length_delimited(1, inner))
    with pytest.raises(InvalidRecord) as info:
        validation.check_known_fields(record, "records[4]")
    assert str(info.value) == "records[4].assertion.signatures[0]: unknown field 103"
    with pytest.raises(InvalidRecord) as info:
        validation.check_known_fields(record, "request", child_prefix="")
    assert str(info.value) == "assertion.signatures[0]: unknown field 103"


def test_unknown_field_path_is_the_same_walk_as_check_known_fields() -> None:
    """The ingestor's check (a cheap size test, then the walk) names what the writer's does."""
    a = good_assertion()
    a.signatures.add(public_key=b"\1" * 32, signature=b"\2" * 64)
    clean = pb.Record(assertion=a).SerializeToString()
    assert validation.unknown_field_path(pb.Record.FromString(clean), clean, "record") is None
    entry = a.signatures[0].SerializeToString() + b"\xb8\x06\x01"  # field 103, varint 1
    a.ClearField("signatures")
    data = _length_delimited(1, a.SerializeToString() + _length_delimited(8, entry))
    found = validation.unknown_field_path(pb.Record.FromString(data), data, "record")
    assert found == "record.assertion.signatures[0]: unknown field 103"
    with pytest.raises(InvalidRecord) as info:
        validation.check_known_fields(pb.Record.FromString(data), "record")
    assert str(info.value) == found
