"""Record builders shared by the writer tests."""

from __future__ import annotations

from stemedb import canonical, signing
from stemedb.v1 import records_pb2 as pb

KEYS = [signing.SigningKey(bytes([0x40 + i]) * 32) for i in range(4)]


def assertion(subject: str = "Q42", text: str = "Douglas Adams", signers: int = 0) -> pb.Assertion:
    a = pb.Assertion(
        subject=subject,
        predicate="name",
        object=pb.Value(text=text),
        confidence=0.75,
        source_hash=b"\x05" * 32,
    )
    h = canonical.assertion_bytes(a)
    digest = canonical.content_hash(h)
    for key in KEYS[:signers]:
        a.signatures.append(signing.signature_entry(key, digest))
    return a


def vote(assertion_hash: bytes, key_index: int = 0, weight: float = 0.5) -> pb.Vote:
    key = KEYS[key_index]
    v = pb.Vote(assertion_hash=assertion_hash, agent_id=signing.public_key_of(key), weight=weight)
    v.signature = signing.sign_hash(key, canonical.content_hash(canonical.vote_bytes(v)))
    return v


def epoch(name: str = "Newtonian mechanics", signers: int = 1) -> pb.Epoch:
    e = pb.Epoch(name=name, description="classical")
    digest = canonical.content_hash(canonical.epoch_bytes(e))
    for key in KEYS[:signers]:
        e.signatures.append(signing.signature_entry(key, digest))
    return e


# Raw protobuf wire encoding, for requests our generated classes would never produce.
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def wire_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): tag, length, payload."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def wire_varint_field(number: int, value: int) -> bytes:
    """A varint field (wire type 0)."""
    return varint(number << 3) + varint(value)
