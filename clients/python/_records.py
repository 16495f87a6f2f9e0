"""Building records, and what the client checks before and after sending them.

Before any network call a record is validated (:mod:`stemedb.validation`, the same rules as the
writer) and hashed locally (:mod:`stemedb.canonical`); after the call the receipt must carry that
same hash, else :class:`ReceiptMismatch`. A writer that hashed something else than what was sent
(or a proxy that altered it) is caught here instead of being trusted.

Text that names things (an assertion's subject and predicate, an epoch's name) is normalized to
Unicode NFC before it is hashed or signed (:func:`normalize_record`): canonical bytes are defined
over NFC text and the writer refuses anything else, so "Café" typed as ``e`` + combining accent
and "Café" typed precomposed are one subject, with one hash.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

import blake3

from stemedb import canonical
from stemedb.client._errors import ReceiptMismatch
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.validation import (
    DEFAULT_LIMITS,
    validate_assertion,
    validate_batch,
    validate_epoch,
    validate_vote,
)

__all__ = [
    "Entry",
    "GetResult",
    "ObjectValue",
    "Page",
    "Receipt",
    "Ref",
    "check_batch_receipts",
    "check_receipt",
    "make_assertion",
    "make_epoch",
    "normalize_assertion",
    "normalize_epoch",
    "normalize_record",
    "prepare",
    "prepare_batch",
    "source_hash_of",
    "supersession_type_of",
    "to_value",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Ref:
    """An assertion object that refers to another record by its 32-byte content hash."""

    hash: bytes


ObjectValue = str | float | int | bool | bytes | Ref | pb.Value


@dataclass(frozen=True)
class Receipt:
    """A durable append: the record's content hash and its log sequence number."""

    hash: bytes
    lsn: int

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()


@dataclass(frozen=True)
class GetResult:
    """The answer to ``get``: ``record`` is set for record keys (H:, V:, E:) that exist."""

    key: bytes
    found: bool
    value: bytes
    record: pb.Record | None
    applied_lsn: int


@dataclass(frozen=True)
class Entry:
    """One key of a prefix scan and its stored bytes."""

    key: bytes
    value: bytes


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is empty on the last page (AIP-158)."""

    items: list[T]
    next_page_token: str
    applied_lsn: int


def _nfc(message: pb.Assertion | pb.Epoch, names: tuple[str, ...], field: str) -> None:
    changed = []
    for name in names:
        text: str = getattr(message, name)
        if not unicodedata.is_normalized("NFC", text):
            setattr(message, name, unicodedata.normalize("NFC", text))
            changed.append(name)
    if changed and len(message.signatures):
        raise InvalidRecord(
            f"{field}.{changed[0]}",
            "is not Unicode NFC, and the record is already signed over it: normalize the text "
            "to NFC before signing (AgentKey does)",
        )


def normalize_assertion(a: pb.Assertion, field: str = "assertion") -> pb.Assertion:
    """Normalize ``subject`` and ``predicate`` to NFC in place; return ``a``. A signed assertion
    whose text would change is refused (InvalidRecord): its signatures cover the old bytes."""
    _nfc(a, ("subject", "predicate"), field)
    return a


def normalize_epoch(e: pb.Epoch, field: str = "epoch") -> pb.Epoch:
    """Normalize ``name`` to NFC in place; return ``e`` (a signed epoch as for assertions)."""
    _nfc(e, ("name",), field)
    return e


def normalize_record(r: pb.Record, field: str = "record") -> pb.Record:
    """NFC-normalize the record's naming text in place (votes have none); return ``r``."""
    kind = r.WhichOneof("kind")
    if kind == "assertion":
        normalize_assertion(r.assertion, f"{field}.assertion")
    elif kind == "epoch":
        normalize_epoch(r.epoch, f"{field}.epoch")
    return r


def to_value(obj: ObjectValue) -> pb.Value:
    """The Value of a Python object: str text, bool flag, int/float number, bytes blob, Ref ref."""
    if isinstance(obj, pb.Value):
        return obj
    if isinstance(obj, str):
        return pb.Value(text=obj)
    if isinstance(obj, bool):  # before int: bool is an int subclass
        return pb.Value(flag=obj)
    if isinstance(obj, int | float):
        return pb.Value(number=float(obj))
    if isinstance(obj, bytes):
        return pb.Value(blob=obj)
    if isinstance(obj, Ref):
        return pb.Value(ref=obj.hash)
    raise TypeError(f"cannot make a Value of {type(obj).__name__}")


def source_hash_of(source: str | bytes) -> bytes:
    """BLAKE3-256 of a source (text as UTF-8): a ready-made 32-byte ``source_hash``."""
    data = source.encode("utf-8") if isinstance(source, str) else source
    return blake3.blake3(data).digest()


def make_assertion(
    subject: str,
    predicate: str,
    obj: ObjectValue,
    *,
    source_hash: bytes,
    confidence: float = 1.0,
    visual_hash: int | None = None,
    epoch: bytes = b"",
) -> pb.Assertion:
    """An unsigned assertion (sign it with ``AgentKey.sign_assertion``); subject and predicate
    are normalized to NFC."""
    a = pb.Assertion(
        subject=subject,
        predicate=predicate,
        object=to_value(obj),
        confidence=confidence,
        source_hash=source_hash,
        epoch=epoch,
    )
    if visual_hash is not None:
        a.visual_hash = visual_hash
    return normalize_assertion(a)


_SUPERSESSION_NAMES = {
    "extension": pb.SUPERSESSION_TYPE_EXTENSION,
    "refinement": pb.SUPERSESSION_TYPE_REFINEMENT,
    "revolution": pb.SUPERSESSION_TYPE_REVOLUTION,
}


def supersession_type_of(name: str) -> pb.SupersessionType:
    """``extension``, ``refinement`` or ``revolution`` (or the full enum name) as the enum."""
    value = _SUPERSESSION_NAMES.get(name.lower())
    if value is not None:
        return value
    try:
        return cast(pb.SupersessionType, pb.SupersessionType.Value(name.upper()))
    except ValueError as exc:
        raise InvalidRecord(
            "epoch.supersession_type",
            f"unknown value {name!r}: use extension, refinement or revolution",
        ) from exc


def make_epoch(
    name: str,
    description: str = "",
    *,
    supersedes: bytes = b"",
    supersession_type: str | pb.SupersessionType = pb.SUPERSESSION_TYPE_UNSPECIFIED,
) -> pb.Epoch:
    """An unsigned epoch (sign it with ``AgentKey.sign_epoch``); the name is normalized to NFC."""
    st = (
        supersession_type_of(supersession_type)
        if isinstance(supersession_type, str)
        else supersession_type
    )
    return normalize_epoch(
        pb.Epoch(name=name, description=description, supersedes=supersedes, supersession_type=st)
    )


def prepare(record: pb.Record, field: str = "") -> bytes:
    """The one validate-and-hash step of every append: NFC-normalize ``record`` in place,
    validate it (InvalidRecord names the field) and return its content hash.

    Fields are named from the record's kind (``assertion.subject``), as the writer names them
    for a single append, or under ``field`` (``records[3].assertion.subject``) in a batch."""
    kind = record.WhichOneof("kind")
    if kind is None:
        raise InvalidRecord(field or "record", "is empty: set one of assertion, vote, epoch")
    path = f"{field}.{kind}" if field else kind
    if kind == "assertion":
        validate_assertion(normalize_assertion(record.assertion, path), path)
    elif kind == "epoch":
        validate_epoch(normalize_epoch(record.epoch, path), path)
    elif is_wallet_vote(record.vote):
        # agent_id, sequence and signature are the wallet's to fill (DESIGN 11); every other
        # field is checked here, against stand-ins of the right sizes for those.
        validate_vote(_stand_in(record.vote), path)
    else:
        validate_vote(record.vote, path)
    return local_hash(record)


def _stand_in(v: pb.Vote) -> pb.Vote:
    stand_in = pb.Vote()
    stand_in.CopyFrom(v)
    stand_in.agent_id, stand_in.signature = WALLET_STAND_IN_KEY, WALLET_STAND_IN_SIGNATURE
    return stand_in


def local_hash(record: pb.Record) -> bytes:
    """The content hash of ``record``; for a vote left to a wallet (:func:`wallet_signs`), the
    hash of its stand-in (agent all zero), which no receipt is checked against: the stored
    vote's hash is the one the wallet's agent and sequence give."""
    if wallet_signs(record):
        return canonical.record_hash(pb.Record(vote=_stand_in(record.vote)))
    return canonical.record_hash(record)


WALLET_STAND_IN_KEY = bytes(32)
WALLET_STAND_IN_SIGNATURE = bytes(64)


def is_wallet_vote(v: pb.Vote) -> bool:
    """A vote left for a wallet to sign: no ``agent_id``, no ``signature``, ``sequence`` 0 (the
    wallet fills all three with its key's, so the stored vote's hash is not this one's)."""
    return not v.agent_id and not v.signature and v.sequence == 0


def wallet_signs(record: pb.Record) -> bool:
    """Whether ``record`` is a vote left for a wallet to sign (:func:`is_wallet_vote`)."""
    return record.WhichOneof("kind") == "vote" and is_wallet_vote(record.vote)


def prepare_batch(records: Sequence[pb.Record], request_bytes: int) -> list[bytes]:
    """Validate a batch (already NFC-normalized) against the AppendBatch limits; return every
    record's hash in order."""
    validate_batch([pb.Record(vote=_stand_in(r.vote)) if wallet_signs(r) else r for r in records],
                   request_bytes, DEFAULT_LIMITS)  # fmt: skip
    return [local_hash(r) for r in records]


def check_receipt(expected_hash: bytes | None, receipt: pb.Receipt, method: str) -> Receipt:
    """The receipt as a Receipt, after checking it carries the hash computed locally (None: a
    vote the wallet signed, whose hash the wallet decides; only its length is checked)."""
    if expected_hash is None:
        if len(receipt.hash) != 32:
            raise ReceiptMismatch(
                f"{method}: the writer returned a {len(receipt.hash)}-byte hash, not 32 bytes"
            )
    elif receipt.hash != expected_hash:
        raise ReceiptMismatch(
            f"{method}: the writer returned hash {receipt.hash.hex() or '(empty)'}, "
            f"but the record sent hashes to {expected_hash.hex()}"
        )
    if receipt.lsn < 1:
        raise ReceiptMismatch(f"{method}: the writer returned LSN {receipt.lsn}; LSNs start at 1")
    return Receipt(receipt.hash, receipt.lsn)


def check_batch_receipts(
    expected: Sequence[bytes | None], receipts: Sequence[pb.Receipt], method: str = "AppendBatch"
) -> list[Receipt]:
    """Check that receipts[i] answers records[i] and that the LSNs are consecutive."""
    if len(receipts) != len(expected):
        raise ReceiptMismatch(f"{method}: {len(receipts)} receipts for {len(expected)} records")
    out = [
        check_receipt(h, r, f"{method} receipts[{i}]")
        for i, (h, r) in enumerate(zip(expected, receipts, strict=True))
    ]
    for i in range(1, len(out)):
        if out[i].lsn != out[i - 1].lsn + 1:
            raise ReceiptMismatch(
                f"{method}: LSNs are not consecutive at receipts[{i}] "
                f"({out[i - 1].lsn} then {out[i].lsn})"
            )
    return out
