"""Applying WAL records to the store: keys, idempotence by hash, co-signature merge.

``ApplyEngine.apply`` turns a run of consecutive WAL records into one WriteBatch holding every
new key and the checkpoint of the last record, so the batch and its checkpoint commit together.
A record whose key exists is not rewritten; an assertion that arrives again with co-signers not
yet stored gets the union (existing signatures first, new public keys appended in log order).
Duplicates inside one batch are resolved against an in-batch overlay, so a batch behaves exactly
as if its records had been applied one at a time: a database rebuilt from scratch and one that
crashed and resumed at any batch boundary hold the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._keys import (
    ASSERTION_PREFIX,
    EPOCH_PREFIX,
    VOTE_PREFIX,
    Checkpoint,
    record_key,
    subject_index_key,
    vote_index_key,
)
from stemedb.ingestor._lattice import Lattice
from stemedb.ingestor._policy import DEFAULT_POLICY, TrustPolicy

from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalRecord
from stemedb.walrecord import DecodedPayload, PayloadError, decode_payload

__all__ = ["ApplyEngine", "ApplyOutcome", "UndecodableRecord", "merge_signatures"]

_HASH_BYTES = 32
_SUBJECT_BYTES_MAX = 1024


@dataclass(frozen=True)
class UndecodableRecord:
    """A WAL record that is intact (its checksum matched) but is not a valid StemeDB record."""

    lsn: int
    segment: str
    offset: int
    reason: str


@dataclass
class ApplyOutcome:
    """What one ``apply`` call did."""

    checkpoint: Checkpoint | None  # None when nothing was applied
    last_timestamp_ns: int = 0
    records_by_kind: Counter[str] = field(default_factory=Counter)
    keys_written: int = 0
    failure: UndecodableRecord | None = None  # set: records before it are applied, then stop


def merge_signatures(stored: bytes, incoming: pb.Record) -> bytes | None:
    """The stored assertion with the incoming co-signatures added, or None if none are new."""
    record = pb.Record.FromString(stored)
    known = {entry.public_key for entry in record.assertion.signatures}
    added = False
    for entry in incoming.assertion.signatures:
        if entry.public_key not in known:
            known.add(entry.public_key)
            record.assertion.signatures.append(entry)
            added = True
    return record.SerializeToString() if added else None


class ApplyEngine:
    """Builds and writes batches for a StoreDb. Used by one thread at a time.

    With a trust policy (the default policy unless told otherwise) the Lattice's tallies,
    views and history are folded into the same batch (docs/lattice.md); ``policy=None`` turns
    them off (benchmarks compare the two).
    """

    def __init__(self, db: StoreDb, policy: TrustPolicy | None = DEFAULT_POLICY) -> None:
        self._db = db
        self._lattice = None if policy is None else Lattice(db, policy)

    def apply(self, records: Sequence[WalRecord]) -> ApplyOutcome:
        """Apply consecutive records in one atomic WriteBatch with the new checkpoint."""
        decoded: list[tuple[WalRecord, DecodedPayload]] = []
        failure: UndecodableRecord | None = None
        for rec in records:
            try:
                payload = decode_payload(rec.record_type, rec.payload)
                _check_keys(payload)
            except PayloadError as exc:
                failure = UndecodableRecord(rec.lsn, str(rec.segment), rec.offset, str(exc))
                break
            decoded.append((rec, payload))
        outcome = ApplyOutcome(checkpoint=None, failure=failure)
        if not decoded:
            return outcome
        puts = self._build(decoded, outcome)
        last = decoded[-1][0]
        checkpoint = Checkpoint(last.lsn, bytes(last.checksum))
        self._db.write(puts.items(), checkpoint)
        if self._lattice is not None:
            self._lattice.committed()
        outcome.checkpoint = checkpoint
        outcome.last_timestamp_ns = last.timestamp_ns
        outcome.keys_written = len(puts)
        return outcome

    def _build(
        self, decoded: list[tuple[WalRecord, DecodedPayload]], outcome: ApplyOutcome
    ) -> dict[bytes, bytes]:
        keys = [record_key(_PREFIX[p.kind], p.content_hash) for _rec, p in decoded]
        unique = list(dict.fromkeys(keys))
        stored = dict(zip(unique, self._db.multi_get(unique), strict=True))
        overlay: dict[bytes, bytes] = {}  # what this batch writes, in first-write order
        lattice = None if self._lattice is None else self._lattice.batch(overlay)
        for key, (rec, p) in zip(keys, decoded, strict=True):
            outcome.records_by_kind[p.kind] += 1
            current = overlay.get(key, stored[key])
            if current is None:
                overlay[key] = p.record_bytes
                _index(overlay, p)
            elif p.kind == "assertion" and current != p.record_bytes:
                merged = merge_signatures(current, p.record)
                if merged is not None:
                    overlay[key] = merged
            if lattice is not None:
                lattice.record(rec.lsn, p, current)
        return overlay


_PREFIX = {"assertion": ASSERTION_PREFIX, "vote": VOTE_PREFIX, "epoch": EPOCH_PREFIX}


def _index(overlay: dict[bytes, bytes], p: DecodedPayload) -> None:
    if p.kind == "assertion":
        subject = p.record.assertion.subject.encode("utf-8")
        overlay[subject_index_key(subject, p.content_hash)] = p.content_hash
    elif p.kind == "vote":
        overlay[vote_index_key(p.record.vote.assertion_hash, p.content_hash)] = p.content_hash


def _check_keys(p: DecodedPayload) -> None:
    """Refuse what would make an ambiguous or malformed key (the writer validates these too)."""
    if p.kind == "assertion":
        subject = p.record.assertion.subject.encode("utf-8")
        if not subject or b"\x00" in subject or len(subject) > _SUBJECT_BYTES_MAX:
            raise PayloadError("assertion subject is empty, too long or contains NUL")
    elif p.kind == "vote" and len(p.record.vote.assertion_hash) != _HASH_BYTES:
        raise PayloadError(
            f"vote assertion_hash is {len(p.record.vote.assertion_hash)} bytes, expected 32"
        )
