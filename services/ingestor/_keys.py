"""The RocksDB key scheme (DESIGN section 3) and the internal state records.

User keys live in RocksDB's ``default`` column family, ASCII prefixes, hashes as 64 lowercase
hex digits::

    H:<hash>                           assertion: the serialized Record (merged co-signatures)
    V:<hash>                           vote: the serialized Record
    E:<hash>                           epoch: the serialized Record
    S:<subject>\\x00<hash>              subject index: the 32 raw bytes of the assertion hash
    VA:<assertion hash>:<vote hash>    votes by assertion: the 32 raw bytes of the vote hash
    HS:<assertion hash>:<public key>   a co-signer beyond the first SIGNATURES_INLINE_MAX kept in
                                       H:, public key as 64 hex digits: the 64-byte signature

Internal state lives in its own column family, ``stemedb_internal``, which no read RPC can
reach, so user scans (even of the empty prefix) never see it:

    checkpoint       u64 LSN (little-endian) + the 16-byte WAL checksum of that record
    schema_version   ASCII decimal
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "ASSERTION_PREFIX",
    "CHECKPOINT_KEY",
    "EPOCH_PREFIX",
    "INTERNAL_CF",
    "RECORD_PREFIX_OF_KIND",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "SIGNATURES_INLINE_MAX",
    "SIGNER_PREFIX",
    "SUBJECT_PREFIX",
    "VOTES_BY_ASSERTION_PREFIX",
    "VOTE_PREFIX",
    "Checkpoint",
    "is_record_key",
    "prefix_upper_bound",
    "record_key",
    "signer_key",
    "signer_prefix",
    "subject_index_key",
    "subject_index_prefix",
    "vote_index_key",
    "vote_index_prefix",
]

ASSERTION_PREFIX = b"H:"
VOTE_PREFIX = b"V:"
EPOCH_PREFIX = b"E:"
SUBJECT_PREFIX = b"S:"
VOTES_BY_ASSERTION_PREFIX = b"VA:"
SIGNER_PREFIX = b"HS:"
# Co-signatures kept inside the stored H: record; later co-signers go under HS: keys, so the
# H: value stays bounded however many agents co-sign, and a merge costs O(new signatures).
SIGNATURES_INLINE_MAX = 64
RECORD_PREFIX_OF_KIND = {"assertion": ASSERTION_PREFIX, "vote": VOTE_PREFIX, "epoch": EPOCH_PREFIX}

INTERNAL_CF = "stemedb_internal"
CHECKPOINT_KEY = b"checkpoint"
SCHEMA_VERSION_KEY = b"schema_version"
SCHEMA_VERSION = 1

HASH_BYTES = 32
_RECORD_KEY_BYTES = 2 + 2 * HASH_BYTES
_CHECKPOINT = struct.Struct("<Q16s")


def record_key(prefix: bytes, content_hash: bytes) -> bytes:
    return prefix + content_hash.hex().encode()


def subject_index_prefix(subject: bytes) -> bytes:
    return SUBJECT_PREFIX + subject + b"\x00"


def subject_index_key(subject: bytes, assertion_hash: bytes) -> bytes:
    return subject_index_prefix(subject) + assertion_hash.hex().encode()


def vote_index_prefix(assertion_hash: bytes) -> bytes:
    return VOTES_BY_ASSERTION_PREFIX + assertion_hash.hex().encode() + b":"


def vote_index_key(assertion_hash: bytes, vote_hash: bytes) -> bytes:
    return vote_index_prefix(assertion_hash) + vote_hash.hex().encode()


def signer_prefix(assertion_hash: bytes) -> bytes:
    return SIGNER_PREFIX + assertion_hash.hex().encode() + b":"


def signer_key(assertion_hash: bytes, public_key: bytes) -> bytes:
    return signer_prefix(assertion_hash) + public_key.hex().encode()


def is_record_key(key: bytes) -> bool:
    """True for ``H:``/``V:``/``E:`` keys, whose value is a serialized Record."""
    return len(key) == _RECORD_KEY_BYTES and key[:2] in (
        ASSERTION_PREFIX,
        VOTE_PREFIX,
        EPOCH_PREFIX,
    )


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


@dataclass(frozen=True)
class Checkpoint:
    """The last applied WAL record: its LSN and its stored WAL checksum."""

    lsn: int
    checksum: bytes

    def encode(self) -> bytes:
        return _CHECKPOINT.pack(self.lsn, self.checksum)

    @classmethod
    def decode(cls, data: bytes) -> Checkpoint:
        if len(data) != _CHECKPOINT.size:
            raise ValueError(f"checkpoint is {len(data)} bytes, expected {_CHECKPOINT.size}")
        lsn, checksum = _CHECKPOINT.unpack(data)
        return cls(int(lsn), bytes(checksum))
