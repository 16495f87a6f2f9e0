"""Input validation: every limit on a record, in one place.

DESIGN.md section 3 fixes the defaults; the protos document them field by field. Each violation
raises :class:`~stemedb.errors.InvalidRecord` naming the field with its full path (for example
``records[3].assertion.signatures[1].public_key``), so a client can tell exactly what to fix.
Validation checks shape only; signatures are verified by :mod:`stemedb.signing`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb

__all__ = [
    "DEFAULT_LIMITS",
    "HASH_BYTES",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "Limits",
    "validate_assertion",
    "validate_batch",
    "validate_epoch",
    "validate_record",
    "validate_vote",
]

HASH_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Limits:
    """Input limits. The defaults are the contract of DESIGN.md section 3."""

    subject_bytes_max: int = 1024
    predicate_bytes_max: int = 256
    text_bytes_max: int = 64 * 1024
    blob_bytes_max: int = 1024 * 1024
    epoch_name_bytes_max: int = 256
    epoch_description_bytes_max: int = 4 * 1024
    signatures_max: int = 16
    batch_records_max: int = 10_000
    batch_bytes_max: int = 16 * 1024 * 1024
    # A vote's sequence stays exact as a JSON number in every language (JavaScript included).
    vote_sequence_max: int = 2**53 - 1


DEFAULT_LIMITS = Limits()


def _utf8_len(value: str) -> int:
    # Python strings from protobuf are valid Unicode; length limits are in UTF-8 bytes.
    return len(value.encode("utf-8"))


def _check_text(value: str, field: str, max_bytes: int, *, required: bool) -> None:
    if required and not value:
        raise InvalidRecord(field, "is required and must not be empty")
    size = _utf8_len(value)
    if size > max_bytes:
        raise InvalidRecord(field, f"is {size} bytes of UTF-8, more than the limit of {max_bytes}")


def _check_hash(value: bytes, field: str, *, required: bool) -> None:
    if not value:
        if required:
            raise InvalidRecord(field, f"is required: a {HASH_BYTES}-byte hash")
        return
    if len(value) != HASH_BYTES:
        raise InvalidRecord(field, f"must be {HASH_BYTES} bytes, got {len(value)}")


def _check_finite(value: float, field: str, low: float, high: float) -> None:
    if not math.isfinite(value):
        raise InvalidRecord(field, f"must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise InvalidRecord(field, f"must be in [{low:g}, {high:g}], got {value!r}")


def _check_signatures(entries: Iterable[pb.SignatureEntry], field: str, limits: Limits) -> None:
    sigs = list(entries)
    if len(sigs) > limits.signatures_max:
        raise InvalidRecord(
            field, f"has {len(sigs)} signatures, more than the limit of {limits.signatures_max}"
        )
    seen: set[bytes] = set()
    for i, entry in enumerate(sigs):
        key_field = f"{field}[{i}].public_key"
        if len(entry.public_key) != PUBLIC_KEY_BYTES:
            raise InvalidRecord(
                key_field, f"must be {PUBLIC_KEY_BYTES} bytes, got {len(entry.public_key)}"
            )
        if len(entry.signature) != SIGNATURE_BYTES:
            raise InvalidRecord(
                f"{field}[{i}].signature",
                f"must be {SIGNATURE_BYTES} bytes, got {len(entry.signature)}",
            )
        if entry.public_key in seen:
            raise InvalidRecord(key_field, "appears twice in the same record")
        seen.add(entry.public_key)


def _check_value(value: pb.Value, field: str, limits: Limits) -> None:
    kind = value.WhichOneof("kind")
    if kind is None:
        raise InvalidRecord(field, "is required: set one of text, number, flag, blob, ref")
    if kind == "text":
        _check_text(value.text, f"{field}.text", limits.text_bytes_max, required=False)
    elif kind == "number":
        if not math.isfinite(value.number):
            raise InvalidRecord(f"{field}.number", f"must be finite, got {value.number!r}")
    elif kind == "blob":
        if len(value.blob) > limits.blob_bytes_max:
            raise InvalidRecord(
                f"{field}.blob",
                f"is {len(value.blob)} bytes, more than the limit of {limits.blob_bytes_max}",
            )
    elif kind == "ref":
        _check_hash(value.ref, f"{field}.ref", required=True)


def validate_assertion(
    a: pb.Assertion, field: str = "assertion", limits: Limits = DEFAULT_LIMITS
) -> None:
    """Raise InvalidRecord unless ``a`` is a well-formed assertion."""
    _check_text(a.subject, f"{field}.subject", limits.subject_bytes_max, required=True)
    if "\x00" in a.subject:
        raise InvalidRecord(f"{field}.subject", "must not contain NUL")
    _check_text(a.predicate, f"{field}.predicate", limits.predicate_bytes_max, required=True)
    if not a.HasField("object"):
        raise InvalidRecord(f"{field}.object", "is required")
    _check_value(a.object, f"{field}.object", limits)
    _check_finite(a.confidence, f"{field}.confidence", 0.0, 1.0)
    _check_hash(a.source_hash, f"{field}.source_hash", required=True)
    _check_hash(a.epoch, f"{field}.epoch", required=False)
    _check_signatures(a.signatures, f"{field}.signatures", limits)


def validate_vote(v: pb.Vote, field: str = "vote", limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise InvalidRecord unless ``v`` is a well-formed vote (signature present, 64 bytes)."""
    _check_hash(v.assertion_hash, f"{field}.assertion_hash", required=True)
    if len(v.agent_id) != PUBLIC_KEY_BYTES:
        raise InvalidRecord(
            f"{field}.agent_id",
            f"must be a {PUBLIC_KEY_BYTES}-byte ed25519 public key, got {len(v.agent_id)} bytes",
        )
    _check_finite(v.weight, f"{field}.weight", -1.0, 1.0)
    if v.sequence > limits.vote_sequence_max:
        raise InvalidRecord(
            f"{field}.sequence",
            f"is {v.sequence}, more than the limit of {limits.vote_sequence_max} (2^53 - 1)",
        )
    if len(v.signature) != SIGNATURE_BYTES:
        what = "is required" if not v.signature else f"has {len(v.signature)} bytes"
        raise InvalidRecord(
            f"{field}.signature", f"{what}: a vote needs a {SIGNATURE_BYTES}-byte signature"
        )


def validate_epoch(e: pb.Epoch, field: str = "epoch", limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise InvalidRecord unless ``e`` is a well-formed epoch."""
    _check_text(e.name, f"{field}.name", limits.epoch_name_bytes_max, required=True)
    _check_text(
        e.description, f"{field}.description", limits.epoch_description_bytes_max, required=False
    )
    _check_hash(e.supersedes, f"{field}.supersedes", required=False)
    known = set(pb.SupersessionType.values())
    if e.supersession_type not in known:
        raise InvalidRecord(f"{field}.supersession_type", f"unknown value {e.supersession_type}")
    unspecified = e.supersession_type == pb.SUPERSESSION_TYPE_UNSPECIFIED
    if e.supersedes and unspecified:
        raise InvalidRecord(f"{field}.supersession_type", "is required when supersedes is set")
    if not e.supersedes and not unspecified:
        raise InvalidRecord(
            f"{field}.supersession_type", "must be UNSPECIFIED when supersedes is empty"
        )
    _check_signatures(e.signatures, f"{field}.signatures", limits)


def validate_record(r: pb.Record, field: str = "record", limits: Limits = DEFAULT_LIMITS) -> str:
    """Validate a Record; return its kind ("assertion", "vote" or "epoch")."""
    kind: str | None = r.WhichOneof("kind")
    if kind == "assertion":
        validate_assertion(r.assertion, f"{field}.assertion", limits)
    elif kind == "vote":
        validate_vote(r.vote, f"{field}.vote", limits)
    elif kind == "epoch":
        validate_epoch(r.epoch, f"{field}.epoch", limits)
    else:
        raise InvalidRecord(field, "is empty: set one of assertion, vote, epoch")
    return kind


def validate_batch(
    items: Sequence[pb.Record], request_bytes: int, limits: Limits = DEFAULT_LIMITS
) -> list[str]:
    """Validate an AppendBatch's records; return their kinds in order."""
    if not items:
        raise InvalidRecord("records", "must hold at least one record")
    if len(items) > limits.batch_records_max:
        raise InvalidRecord(
            "records",
            f"holds {len(items)} records, more than the limit of {limits.batch_records_max}",
        )
    if request_bytes > limits.batch_bytes_max:
        raise InvalidRecord(
            "records",
            f"request is {request_bytes} bytes, more than the limit of {limits.batch_bytes_max}",
        )
    return [validate_record(r, f"records[{i}]", limits) for i, r in enumerate(items)]
