"""Canonical encoding: injective over distinct records, stable, domain-separated (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb

hashes = st.binary(min_size=32, max_size=32)
texts = st.text(max_size=40)
finite = st.floats(allow_nan=False, allow_infinity=False)

values = st.one_of(
    texts.map(lambda s: pb.Value(text=s)),
    finite.map(lambda x: pb.Value(number=x)),
    st.booleans().map(lambda b: pb.Value(flag=b)),
    st.binary(max_size=40).map(lambda b: pb.Value(blob=b)),
    hashes.map(lambda h: pb.Value(ref=h)),
)


@st.composite
def assertions(draw: st.DrawFn) -> pb.Record:
    a = pb.Assertion(
        subject=draw(texts),
        predicate=draw(texts),
        object=draw(values),
        confidence=draw(st.floats(min_value=0.0, max_value=1.0)),
        source_hash=draw(hashes),
        epoch=draw(st.one_of(st.just(b""), hashes)),
    )
    vh = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1)))
    if vh is not None:
        a.visual_hash = vh
    return pb.Record(assertion=a)


votes = st.builds(
    lambda h, k, w: pb.Record(vote=pb.Vote(assertion_hash=h, agent_id=k, weight=w)),
    hashes,
    hashes,
    st.floats(min_value=-1.0, max_value=1.0),
)


@st.composite
def epochs(draw: st.DrawFn) -> pb.Record:
    sup = draw(st.one_of(st.just(b""), hashes))
    st_type = draw(st.sampled_from([1, 2, 3])) if sup else 0
    return pb.Record(
        epoch=pb.Epoch(
            name=draw(texts),
            description=draw(texts),
            supersedes=sup,
            supersession_type=st_type,  # type: ignore[arg-type]
        )
    )


records = st.one_of(assertions(), votes, epochs())


def _same_record(a: pb.Record, b: pb.Record) -> bool:
    # Two records are the same when their fields are identical, comparing floats by their bits
    # (-0.0 and 0.0 are distinct records with distinct bytes).
    return a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)


@settings(max_examples=400)
@given(records, records)
def test_distinct_records_never_share_bytes(a: pb.Record, b: pb.Record) -> None:
    if _same_record(a, b):
        assert canonical.record_bytes(a) == canonical.record_bytes(b)
    else:
        assert canonical.record_bytes(a) != canonical.record_bytes(b)


@settings(max_examples=200)
@given(records)
def test_encoding_is_stable_through_serialization(r: pb.Record) -> None:
    again = pb.Record.FromString(r.SerializeToString())
    assert canonical.record_bytes(again) == canonical.record_bytes(r)
    assert canonical.record_hash(again) == canonical.record_hash(r)
    assert len(canonical.record_hash(r)) == 32


@settings(max_examples=200)
@given(records)
def test_domain_tag_leads(r: pb.Record) -> None:
    tags = {
        "assertion": canonical.ASSERTION_TAG,
        "vote": canonical.VOTE_TAG,
        "epoch": canonical.EPOCH_TAG,
    }
    kind = r.WhichOneof("kind")
    assert kind is not None
    assert canonical.record_bytes(r).startswith(tags[kind])


def test_signatures_are_not_hashed() -> None:
    a = pb.Assertion(
        subject="s", predicate="p", object=pb.Value(flag=True), confidence=1, source_hash=b"\1" * 32
    )
    signed = pb.Assertion()
    signed.CopyFrom(a)
    signed.signatures.add(public_key=b"\2" * 32, signature=b"\3" * 64)
    assert canonical.assertion_bytes(a) == canonical.assertion_bytes(signed)


def test_negative_zero_is_its_own_record() -> None:
    zero = pb.Record(vote=pb.Vote(assertion_hash=b"\1" * 32, agent_id=b"\2" * 32, weight=0.0))
    neg = pb.Record(vote=pb.Vote(assertion_hash=b"\1" * 32, agent_id=b"\2" * 32, weight=-0.0))
    assert math.copysign(1, neg.vote.weight) < 0
    assert canonical.record_hash(zero) != canonical.record_hash(neg)
