"""The leaf of a log record (DESIGN section 13; byte by byte in docs/verifiable-log.md).

The record of LSN n is leaf n - 1. Its leaf commits to the record as appended, signatures
included, in canonical terms any client can recompute::

    "stemedb.v1.Leaf\\0"             16 bytes, the domain tag
    u64(lsn)
    the record's canonical bytes    (docs/canonical-encoding.md)
    u32(number of signatures)
    per signature, in the record's order:
        32 raw bytes of the public key
        blob(signature)             u32 length, then the bytes

A vote has exactly one signature: (agent_id, signature).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from stemedb import canonical
from stemedb.merkle._hashing import TREE_SIZE_MAX, leaf_hash
from stemedb.v1 import records_pb2 as pb

__all__ = ["LEAF_TAG", "leaf_bytes", "leaf_suffix", "record_leaf_hash", "suffix_leaf_hash"]

LEAF_TAG = b"stemedb.v1.Leaf\x00"

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _signatures(record: pb.Record) -> Iterable[tuple[bytes, bytes]]:
    kind = record.WhichOneof("kind")
    if kind == "vote":
        return ((record.vote.agent_id, record.vote.signature),)
    if kind == "assertion":
        return ((s.public_key, s.signature) for s in record.assertion.signatures)
    if kind == "epoch":
        return ((s.public_key, s.signature) for s in record.epoch.signatures)
    raise ValueError("record has no kind set")


def leaf_suffix(record: pb.Record, canonical_bytes: bytes | None = None) -> bytes:
    """The leaf bytes after the tag and the LSN: the record's canonical bytes, then its
    signatures. ``canonical_bytes``, when the caller already has them (the writer does), must be
    ``canonical.record_bytes(record)``; the writer computes this before the record has an LSN."""
    sigs = list(_signatures(record))
    body = canonical.record_bytes(record) if canonical_bytes is None else canonical_bytes
    parts = [body, _U32.pack(len(sigs))]
    for i, (public_key, signature) in enumerate(sigs):
        if len(public_key) != 32:
            raise ValueError(f"signatures[{i}].public_key must be 32 bytes, got {len(public_key)}")
        parts += (public_key, _U32.pack(len(signature)), signature)
    return b"".join(parts)


def _check_lsn(lsn: int) -> None:
    if not 1 <= lsn <= TREE_SIZE_MAX:
        raise ValueError(f"lsn must be in [1, 2**64 - 1], got {lsn}")


def leaf_bytes(lsn: int, record: pb.Record) -> bytes:
    """The leaf bytes of ``record`` appended at ``lsn``.

    Like the canonical encoder this expects a validated record, and raises ValueError on a
    public key that is not 32 bytes or an LSN outside [1, 2**64 - 1] (programmer errors).
    """
    _check_lsn(lsn)
    return LEAF_TAG + _U64.pack(lsn) + leaf_suffix(record)


def suffix_leaf_hash(lsn: int, suffix: bytes) -> bytes:
    """The leaf hash of the record whose :func:`leaf_suffix` is ``suffix``, appended at ``lsn``."""
    _check_lsn(lsn)
    return leaf_hash(LEAF_TAG + _U64.pack(lsn) + suffix)


def record_leaf_hash(lsn: int, record: pb.Record) -> bytes:
    """The RFC 6962 leaf hash of ``record`` appended at ``lsn``."""
    return leaf_hash(leaf_bytes(lsn, record))
