"""Applying WAL records to the store: keys, idempotence by hash, co-signature merge.

``ApplyEngine.apply`` turns a run of consecutive WAL records into one WriteBatch holding every
new key and the checkpoint of the last record, so the batch and its checkpoint commit together.
A record whose key exists is not rewritten; an assertion that arrives again with co-signers not
yet stored gets the union, in log order: the first ``SIGNATURES_INLINE_MAX`` signers inside the
``H:`` record, every later one under its own ``HS:<assertion hash>:<public key>`` key. A merge
costs O(incoming signatures): one bounded parse of the ``H:`` record per batch and one point
lookup per incoming signer, however many agents co-signed before. Duplicates inside one batch
are resolved against an in-batch overlay, so a batch behaves exactly as if its records had been
applied one at a time: a database rebuilt from scratch and one that crashed and resumed at any
batch boundary hold the same bytes.

Batch building is a sequence of steps over one overlay (``_build``): a later step (views, say)
adds its keys to the same dict before the batch is written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._keys import (
    ASSERTION_PREFIX,
    EPOCH_PREFIX,
    SIGNATURES_INLINE_MAX,
    VOTE_PREFIX,
    Checkpoint,
    record_key,
    signer_key,
    subject_index_key,
    vote_index_key,
)
from stemedb.ingestor._lattice import Lattice
from stemedb.ingestor._log import LogApplier
from stemedb.ingestor._policy import DEFAULT_POLICY, TrustPolicy
from stemedb.ingestor._usage import UsageBatch
from stemedb.v1 import records_pb2 as pb
from stemedb.validation import unknown_field_path
from stemedb.wal import WalRecord
from stemedb.walrecord import DecodedPayload, PayloadError, decode_payload

__all__ = ["ApplyEngine", "ApplyOutcome", "UndecodableRecord"]

_HASH_BYTES = 32
_PUBLIC_KEY_BYTES = 32
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


class _SignatureMerge:
    """The co-signature merges of one batch, written into the batch's overlay as they happen.

    Invariant: an assertion has HS: keys only once its H: record holds SIGNATURES_INLINE_MAX
    signatures, so a signer is known iff it is inline or has an HS: key. The overlay holds the
    merged H: record (at most SIGNATURES_INLINE_MAX signatures: a bounded re-encoding) and the
    new HS: keys at once, so every later record of the batch, and the Lattice, see them exactly
    as they would after a batch boundary.
    """

    def __init__(self, db: StoreDb, overlay: dict[bytes, bytes]) -> None:
        self._db = db
        self._overlay = overlay
        self._records: dict[bytes, tuple[pb.Record, set[bytes]]] = {}  # H: key -> parsed

    def merge(
        self, key: bytes, current: bytes, content_hash: bytes, incoming: pb.Record
    ) -> list[bytes]:
        """Add the signers of ``incoming`` that ``key`` (stored as ``current``) lacks; return
        their public keys, in the order added (the Lattice endorses exactly these)."""
        parsed = self._records.get(key)
        if parsed is None:
            record = pb.Record.FromString(current)
            parsed = (record, {entry.public_key for entry in record.assertion.signatures})
            self._records[key] = parsed
        record, inline_keys = parsed
        inline = record.assertion.signatures
        added: list[bytes] = []
        outside: dict[bytes, tuple[bytes, bytes]] = {}  # HS: key -> (public key, signature)
        for entry in incoming.assertion.signatures:
            if entry.public_key in inline_keys:
                continue
            if len(inline) < SIGNATURES_INLINE_MAX:
                inline.append(entry)
                inline_keys.add(entry.public_key)
                added.append(entry.public_key)
            else:
                outside.setdefault(
                    signer_key(content_hash, entry.public_key),
                    (entry.public_key, entry.signature),
                )
        if added:
            self._overlay[key] = record.SerializeToString()
        fresh = [k for k in outside if k not in self._overlay]
        for hs_key, stored in zip(fresh, self._db.multi_get(fresh), strict=True):
            if stored is None:
                public_key, signature = outside[hs_key]
                self._overlay[hs_key] = signature
                added.append(public_key)
        return added


class ApplyEngine:
    """Builds and writes batches for a StoreDb. Used by one thread at a time.

    With a trust policy (the default policy unless told otherwise) the Lattice's tallies,
    views and history are folded into the same batch (docs/lattice.md); ``policy=None`` turns
    them off (benchmarks compare the two). With ``wal_dir`` the verifiable log's tree of that
    WAL (its nodes and the served checkpoint, docs/verifiable-log.md) goes in the batch too.
    """

    def __init__(
        self,
        db: StoreDb,
        policy: TrustPolicy | None = DEFAULT_POLICY,
        *,
        wal_dir: Path | None = None,
    ) -> None:
        self._db = db
        self._lattice = None if policy is None else Lattice(db, policy)
        # The verifiable log's tree of that WAL (its LSNs are contiguous): nodes, checkpoint.
        self._log = LogApplier(db, wal_dir) if wal_dir is not None else None

    def apply(self, records: Sequence[WalRecord]) -> ApplyOutcome:
        """Apply consecutive records in one atomic WriteBatch with the new checkpoint."""
        decoded: list[tuple[WalRecord, DecodedPayload]] = []
        failure: UndecodableRecord | None = None
        for rec in records:
            try:
                payload = decode_payload(rec.record_type, rec.payload)
                _check_keys(payload)
                unknown = unknown_field_path(payload.record, payload.record_bytes, "record")
                if unknown is not None:
                    raise PayloadError(unknown)
            except PayloadError as exc:
                failure = UndecodableRecord(rec.lsn, str(rec.segment), rec.offset, str(exc))
                break
            decoded.append((rec, payload))
        outcome = ApplyOutcome(checkpoint=None, failure=failure)
        if not decoded:
            return outcome
        usage = UsageBatch(self._db)
        puts = self._build(decoded, outcome, usage)
        usage_puts, deletes = usage.changes()
        puts.update(usage_puts)
        last = decoded[-1][0]
        checkpoint = Checkpoint(last.lsn, bytes(last.checksum))
        log_batch = self._log.extend(decoded) if self._log is not None else None
        internal = log_batch.puts.items() if log_batch is not None else ()
        self._db.write(puts.items(), checkpoint, deletes, internal)
        if self._log is not None and log_batch is not None:
            self._log.committed(log_batch)
        if self._lattice is not None:
            self._lattice.committed()
        outcome.checkpoint = checkpoint
        outcome.last_timestamp_ns = last.timestamp_ns
        outcome.keys_written = len(puts)
        return outcome

    @property
    def settling(self) -> bool:
        """Whether retirements are still settling: ``settle`` advances them."""
        return self._lattice is not None and bool(self._lattice.pending())

    def settle(self) -> int:
        """One bounded batch of pending retirements, without records (the checkpoint stays);
        return the slots settled."""
        if self._lattice is None or not self._lattice.pending():
            return 0
        overlay: dict[bytes, bytes] = {}
        lattice = self._lattice.batch(overlay)
        settled = lattice.settle()
        lattice.finish()
        self._db.write(overlay.items(), self._db.read_checkpoint())
        self._lattice.committed()
        return settled

    def _build(
        self,
        decoded: list[tuple[WalRecord, DecodedPayload]],
        outcome: ApplyOutcome,
        usage: UsageBatch,
    ) -> dict[bytes, bytes]:
        keys = [record_key(_PREFIX[p.kind], p.content_hash) for _rec, p in decoded]
        unique = list(dict.fromkeys(keys))
        stored = dict(zip(unique, self._db.multi_get(unique), strict=True))
        overlay: dict[bytes, bytes] = {}  # what this batch writes, in first-write order
        lattice = None if self._lattice is None else self._lattice.batch(overlay)
        if lattice is not None:
            lattice.prefetch([p for _rec, p in decoded])
        signatures = _SignatureMerge(self._db, overlay)
        for key, (rec, p) in zip(keys, decoded, strict=True):
            outcome.records_by_kind[p.kind] += 1
            if p.job is not None:
                usage.add(p.job)  # every event counts, even a re-append of a stored record
            current = overlay.get(key, stored[key])
            new_signers: list[bytes] = []
            if current is None:
                if p.kind == "assertion" and (
                    len(p.record.assertion.signatures) > SIGNATURES_INLINE_MAX
                ):
                    # More signers than fit inline (the writer allows fewer): store it
                    # unsigned, then merge its signers as if they came one by one.
                    unsigned = pb.Record()
                    unsigned.CopyFrom(p.record)
                    del unsigned.assertion.signatures[:]
                    overlay[key] = unsigned.SerializeToString()
                    signatures.merge(key, overlay[key], p.content_hash, p.record)
                else:
                    overlay[key] = p.record_bytes
                _index(overlay, p)
            elif p.kind == "assertion" and current != p.record_bytes:
                new_signers = signatures.merge(key, current, p.content_hash, p.record)
            if lattice is not None:
                lattice.record(rec.lsn, p, current, new_signers)
        if lattice is not None:
            lattice.settle()  # a bounded share of pending retirements (docs/lattice.md)
            lattice.finish()
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
        signatures = p.record.assertion.signatures
        if not signatures or all(len(e.public_key) == _PUBLIC_KEY_BYTES for e in signatures):
            return
        for i, entry in enumerate(signatures):
            if len(entry.public_key) != _PUBLIC_KEY_BYTES:
                raise PayloadError(
                    f"assertion.signatures[{i}].public_key is {len(entry.public_key)} bytes, "
                    f"expected {_PUBLIC_KEY_BYTES}"
                )
    elif p.kind == "vote" and len(p.record.vote.assertion_hash) != _HASH_BYTES:
        raise PayloadError(
            f"vote assertion_hash is {len(p.record.vote.assertion_hash)} bytes, expected 32"
        )
