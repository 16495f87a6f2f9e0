"""Canonical bytes and content hashes of records (the spec is docs/canonical-encoding.md).

Hashes are computed over this encoding, never over protobuf's serializer output, which is not
canonical across languages. Every record starts with its own domain tag, so records of different
types never share bytes; variable-length fields carry a 4-byte big-endian length, fixed-length
fields (hashes) are written raw, optional fields carry a presence byte. Signatures are excluded:
they sign the hash. The encoder expects a validated record (see :mod:`stemedb.validation`) and
raises ValueError on a fixed-length field of the wrong size, since that is a programmer error.
"""

from __future__ import annotations

import struct

import blake3

from stemedb.v1 import records_pb2 as pb

__all__ = [
    "ASSERTION_TAG",
    "EPOCH_TAG",
    "VOTE_TAG",
    "assertion_bytes",
    "content_hash",
    "epoch_bytes",
    "record_bytes",
    "record_hash",
    "vote_bytes",
]

ASSERTION_TAG = b"stemedb.v1.Assertion\x00"
VOTE_TAG = b"stemedb.v1.Vote\x00"
EPOCH_TAG = b"stemedb.v1.Epoch\x00"

# Value kinds, one byte before the value's bytes.
VALUE_TEXT = 1
VALUE_NUMBER = 2
VALUE_FLAG = 3
VALUE_BLOB = 4
VALUE_REF = 5

_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
_U64 = struct.Struct(">Q")


def _var(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def _fixed32(data: bytes, name: str) -> bytes:
    if len(data) != 32:
        raise ValueError(f"{name} must be 32 bytes for canonical encoding, got {len(data)}")
    return data


def _optional_hash(data: bytes, name: str) -> bytes:
    return b"\x00" if not data else b"\x01" + _fixed32(data, name)


def _value_bytes(value: pb.Value) -> bytes:
    kind = value.WhichOneof("kind")
    if kind == "text":
        return bytes((VALUE_TEXT,)) + _var(value.text.encode("utf-8"))
    if kind == "number":
        return bytes((VALUE_NUMBER,)) + _F64.pack(value.number)
    if kind == "flag":
        return bytes((VALUE_FLAG, 1 if value.flag else 0))
    if kind == "blob":
        return bytes((VALUE_BLOB,)) + _var(value.blob)
    if kind == "ref":
        return bytes((VALUE_REF,)) + _fixed32(value.ref, "object.ref")
    raise ValueError("object has no value set")


def assertion_bytes(a: pb.Assertion) -> bytes:
    """The canonical encoding of an assertion (signatures excluded)."""
    visual = b"\x01" + _U64.pack(a.visual_hash) if a.HasField("visual_hash") else b"\x00"
    return b"".join(
        (
            ASSERTION_TAG,
            _var(a.subject.encode("utf-8")),
            _var(a.predicate.encode("utf-8")),
            _value_bytes(a.object),
            _F64.pack(a.confidence),
            _fixed32(a.source_hash, "source_hash"),
            visual,
            _optional_hash(a.epoch, "epoch"),
        )
    )


def vote_bytes(v: pb.Vote) -> bytes:
    """The canonical encoding of a vote (signature excluded).

    A vote with sequence 0 keeps its v1 bytes (and so its hash); any other sequence follows the
    weight as ``u64``. v1 vote bytes have a fixed length, so the two forms never collide.
    """
    parts = [
        VOTE_TAG,
        _fixed32(v.assertion_hash, "assertion_hash"),
        _fixed32(v.agent_id, "agent_id"),
        _F64.pack(v.weight),
    ]
    if v.sequence:
        parts.append(_U64.pack(v.sequence))
    return b"".join(parts)


def epoch_bytes(e: pb.Epoch) -> bytes:
    """The canonical encoding of an epoch (signatures excluded)."""
    return b"".join(
        (
            EPOCH_TAG,
            _var(e.name.encode("utf-8")),
            _var(e.description.encode("utf-8")),
            _optional_hash(e.supersedes, "supersedes"),
            _U32.pack(e.supersession_type),
        )
    )


def record_bytes(r: pb.Record) -> bytes:
    """The canonical encoding of whichever record ``r`` holds."""
    kind = r.WhichOneof("kind")
    if kind == "assertion":
        return assertion_bytes(r.assertion)
    if kind == "vote":
        return vote_bytes(r.vote)
    if kind == "epoch":
        return epoch_bytes(r.epoch)
    raise ValueError("record has no kind set")


def content_hash(canonical: bytes) -> bytes:
    """BLAKE3-256 of canonical bytes: the record's 32-byte content address."""
    return blake3.blake3(canonical).digest()


def record_hash(r: pb.Record) -> bytes:
    """The 32-byte content hash of a record."""
    return content_hash(record_bytes(r))
