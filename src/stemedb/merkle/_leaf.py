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

import hashlib
import struct
from collections.abc import Sequence

from stemedb import canonical
from stemedb.merkle._hashing import LEAF_PREFIX, TREE_SIZE_MAX
from stemedb.v1 import records_pb2 as pb

__all__ = [
    "LEAF_TAG",
    "leaf_bytes",
    "leaf_suffix",
    "record_leaf_hash",
    "suffix_leaf_hash",
    "suffix_leaf_hashes",
]

LEAF_TAG = b"stemedb.v1.Leaf\x00"

# What SHA-256 sees first for every leaf hash: the RFC's 0x00 leaf prefix, then the tag.
_LEAF_HASH_HEAD = LEAF_PREFIX + LEAF_TAG
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_NO_SIGNATURES = _U32.pack(0)


def leaf_suffix(record: pb.Record, canonical_bytes: bytes | None = None) -> bytes:
    """The leaf bytes after the tag and the LSN: the record's canonical bytes, then its
    signatures. ``canonical_bytes``, when the caller already has them (the writer does), must be
    ``canonical.record_bytes(record)``; the writer computes this before the record has an LSN."""
    # On the ingestor's apply path for every record: one pass, no intermediate generators.
    kind = record.WhichOneof("kind")
    if kind == "vote":
        vote = record.vote
        body = canonical.vote_bytes(vote) if canonical_bytes is None else canonical_bytes
        pairs: list[tuple[bytes, bytes]] = [(vote.agent_id, vote.signature)]
    elif kind == "assertion" or kind == "epoch":
        message = record.assertion if kind == "assertion" else record.epoch
        if canonical_bytes is not None:
            body = canonical_bytes
        elif kind == "assertion":
            body = canonical.assertion_bytes(record.assertion)
        else:
            body = canonical.epoch_bytes(record.epoch)
        if not message.signatures:  # an unsigned record: no pairs to walk
            return body + _NO_SIGNATURES
        pairs = [(e.public_key, e.signature) for e in message.signatures]
    else:
        raise ValueError("record has no kind set")
    parts = [body, _U32.pack(len(pairs))]
    for i, (public_key, signature) in enumerate(pairs):
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
    """The leaf hash of the record whose :func:`leaf_suffix` is ``suffix``, appended at ``lsn``:
    ``leaf_hash(leaf_bytes(lsn, record))``, in one SHA-256 call."""
    _check_lsn(lsn)
    return hashlib.sha256(_LEAF_HASH_HEAD + _U64.pack(lsn) + suffix).digest()


def suffix_leaf_hashes(first_lsn: int, suffixes: Sequence[bytes]) -> list[bytes]:
    """``[suffix_leaf_hash(first_lsn + i, s) for i, s in enumerate(suffixes)]``, with the LSN
    range checked once (the writer's log tree hashes every record this way)."""
    if suffixes:
        _check_lsn(first_lsn)
        _check_lsn(first_lsn + len(suffixes) - 1)
    head, pack, sha256 = _LEAF_HASH_HEAD, _U64.pack, hashlib.sha256
    return [sha256(head + pack(lsn) + s).digest() for lsn, s in enumerate(suffixes, first_lsn)]


def record_leaf_hash(lsn: int, record: pb.Record) -> bytes:
    """The RFC 6962 leaf hash of ``record`` appended at ``lsn``."""
    return suffix_leaf_hash(lsn, leaf_suffix(record))
