"""Input validation: every limit on a record, in one place.

DESIGN.md section 3 fixes the defaults; the protos document them field by field. Each violation
raises :class:`~stemedb.errors.InvalidRecord` naming the field with its full path (for example
``records[3].assertion.signatures[1].public_key``), so a client can tell exactly what to fix.
Validation checks shape only; signatures are verified by :mod:`stemedb.signing`.

Beyond sizes and ranges, three rules keep one meaning to one hash (issue 10, item 11): a name
(subject, predicate, epoch name) must be Unicode NFC and free of control characters (category Cc)
and bidirectional controls (the Unicode Bidi_Control set, U+061C, U+200E, U+200F, U+202A-U+202E,
U+2066-U+2069), which would make different keys print alike; and ``-0.0`` is refused wherever a
float is hashed (confidence, weight, number), since its canonical bytes differ from ``0.0``'s.
:func:`check_known_fields` refuses protobuf fields the schema does not know, which no hash or
signature would cover (the writer, naming the path); :func:`unknown_field_path` finds them in a
stored record (the ingestor, which treats such a record as undecodable).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb

__all__ = [
    "DEFAULT_LIMITS",
    "HASH_BYTES",
    "PUBLIC_KEY_BYTES",
    "SIGNATURE_BYTES",
    "Limits",
    "check_batch_size",
    "check_known_fields",
    "unknown_field_path",
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


# Control characters (Cc) and the Bidi_Control characters, which reorder or hide text.
_FORBIDDEN_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _check_name(value: str, field: str, max_bytes: int) -> None:
    """A required name: non-empty, at most ``max_bytes`` of UTF-8, NFC, no control characters."""
    _check_text(value, field, max_bytes, required=True)
    bad = _FORBIDDEN_IN_NAMES.search(value)
    if bad is not None:
        char = bad.group()
        what = (
            "control character" if unicodedata.category(char) == "Cc" else "bidirectional control"
        )
        raise InvalidRecord(
            field, f"must not contain the {what} U+{ord(char):04X} (at character {bad.start()})"
        )
    if not unicodedata.is_normalized("NFC", value):
        raise InvalidRecord(
            field, "must be Unicode NFC: normalize it (NFC) before hashing and signing"
        )


def _check_not_negative_zero(value: float, field: str) -> None:
    if value == 0.0 and math.copysign(1.0, value) < 0:
        raise InvalidRecord(field, "must not be -0.0, which hashes differently from 0.0: send 0.0")


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
    _check_not_negative_zero(value, field)


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
        _check_not_negative_zero(value.number, f"{field}.number")
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
    _check_name(a.subject, f"{field}.subject", limits.subject_bytes_max)
    _check_name(a.predicate, f"{field}.predicate", limits.predicate_bytes_max)
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
    _check_name(e.name, f"{field}.name", limits.epoch_name_bytes_max)
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
    """Validate a Record; return its kind ("assertion", "vote" or "epoch").

    Errors name ``<field>.<kind>.<...>``; with ``field`` empty, ``<kind>.<...>`` (as a
    single-record request names its record by its kind)."""
    kind: str | None = r.WhichOneof("kind")
    prefix = f"{field}." if field else ""
    if kind == "assertion":
        validate_assertion(r.assertion, f"{prefix}assertion", limits)
    elif kind == "vote":
        validate_vote(r.vote, f"{prefix}vote", limits)
    elif kind == "epoch":
        validate_epoch(r.epoch, f"{prefix}epoch", limits)
    else:
        raise InvalidRecord(field or "record", "is empty: set one of assertion, vote, epoch")
    return kind


def check_batch_size(count: int, request_bytes: int, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise InvalidRecord naming ``records`` unless an AppendBatch of ``count`` records and
    ``request_bytes`` bytes is within the batch limits."""
    if count == 0:
        raise InvalidRecord("records", "must hold at least one record")
    if count > limits.batch_records_max:
        raise InvalidRecord(
            "records", f"holds {count} records, more than the limit of {limits.batch_records_max}"
        )
    if request_bytes > limits.batch_bytes_max:
        raise InvalidRecord(
            "records",
            f"request is {request_bytes} bytes, more than the limit of {limits.batch_bytes_max}",
        )


def validate_batch(
    items: Sequence[pb.Record], request_bytes: int, limits: Limits = DEFAULT_LIMITS
) -> list[str]:
    """Validate an AppendBatch's records; return their kinds in order."""
    check_batch_size(len(items), request_bytes, limits)
    return [validate_record(r, f"records[{i}]", limits) for i, r in enumerate(items)]


def check_known_fields(message: Message, field: str, *, child_prefix: str | None = None) -> None:
    """Raise InvalidRecord naming the first protobuf field, at any depth of ``message``, that its
    schema does not know (e.g. ``records[3].vote: unknown field 7``).

    ``field`` names ``message`` itself; its fields are named ``<child_prefix><name>``, by default
    ``<field>.<name>`` (a request passes ``"request"`` and ``""``, so that the assertion of an
    AppendAssertionRequest is ``assertion``, as in every other error).

    A field number the schema lacks, or a known number sent with another wire type, is kept by
    the parser as an unknown field and would be re-serialized into the log, covered by no hash
    or signature. This walk visits every nested message; callers on a hot path first test
    cheaply whether there is anything to find (:func:`unknown_field_path` does both).
    """
    found = _first_unknown(message, field, child_prefix)
    if found is not None:
        raise InvalidRecord(found[0], f"unknown field {found[1]}")


def unknown_field_path(message: Message, serialized: bytes, field: str) -> str | None:
    """``None`` when ``message`` (parsed from ``serialized``) holds no unknown field at any depth,
    else the error text of :func:`check_known_fields`, e.g. ``record.assertion.object: unknown
    field 9`` for ``field="record"``. ``message`` loses its unknown fields here.

    The ingestor's defence in depth on every applied record: cheap on the usual path (unknown
    fields are dropped, recursively in C, and a message that then re-serializes to exactly the
    bytes read had none); only when the sizes differ (unknown fields, or a valid non-canonical
    encoding such as a scalar field given twice) is a fresh copy walked to name the culprit.
    """
    message.DiscardUnknownFields()
    if message.ByteSize() == len(serialized):
        return None
    found = _first_unknown(type(message).FromString(serialized), field, None)
    return None if found is None else f"{found[0]}: unknown field {found[1]}"


def _first_unknown(
    message: Message, field: str, child_prefix: str | None
) -> tuple[str, int] | None:
    """(path, field number) of the first unknown field in ``message``, depth first."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        return field, unknown[0].field_number
    prefix = f"{field}." if child_prefix is None else child_prefix
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        path = f"{prefix}{descriptor.name}"
        if descriptor.message_type.GetOptions().map_entry:
            items = [(f"{path}[{key!r}]", item) for key, item in value.items()]
        elif descriptor.is_repeated:
            items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(path, value)]
        for item_path, item in items:
            if isinstance(item, Message):
                found = _first_unknown(item, item_path, None)
                if found is not None:
                    return found
    return None
