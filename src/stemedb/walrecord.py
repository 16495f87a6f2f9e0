"""The payload of a StemeDB record in the write-ahead log (the WAL itself treats it as opaque).

WAL record type: 1 assertion, 2 vote, 3 epoch (the ``Record.kind`` that the payload holds).
Payload: the record's 32-byte content hash, then the ``stemedb.v1.Record`` protobuf message with
its signatures, as the writer received it. The hash is computed once, by the writer, over the
canonical bytes; keeping it in the payload spares every ingestor the canonical re-encoding, and
the WAL's own checksum protects both parts. ``stemedb wal dump`` shows the payload decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from stemedb.v1 import records_pb2 as pb

__all__ = [
    "KIND_OF_TYPE",
    "TYPE_OF_KIND",
    "DecodedPayload",
    "PayloadError",
    "decode_payload",
    "encode_payload",
]

TYPE_OF_KIND = {"assertion": 1, "vote": 2, "epoch": 3}
KIND_OF_TYPE = {v: k for k, v in TYPE_OF_KIND.items()}
HASH_BYTES = 32


class PayloadError(ValueError):
    """A WAL payload that does not decode to the record its type announces."""


@dataclass(frozen=True)
class DecodedPayload:
    kind: str
    content_hash: bytes
    record: pb.Record
    record_bytes: bytes  # the serialized Record, as stored


def encode_payload(content_hash: bytes, record_bytes: bytes) -> bytes:
    """Payload for a record whose serialized ``Record`` message is ``record_bytes``."""
    if len(content_hash) != HASH_BYTES:
        raise ValueError(f"content hash must be {HASH_BYTES} bytes, got {len(content_hash)}")
    return content_hash + record_bytes


def decode_payload(record_type: int, payload: bytes) -> DecodedPayload:
    """Decode and cross-check a payload; raise PayloadError with the reason."""
    kind = KIND_OF_TYPE.get(record_type)
    if kind is None:
        raise PayloadError(f"unknown record type {record_type}")
    if len(payload) < HASH_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes is shorter than a hash")
    body = payload[HASH_BYTES:]
    try:
        record = pb.Record.FromString(body)
    except DecodeError as exc:
        raise PayloadError(f"record does not decode: {exc}") from exc
    if record.WhichOneof("kind") != kind:
        raise PayloadError(
            f"record type {record_type} ({kind}) holds a {record.WhichOneof('kind')}"
        )
    return DecodedPayload(kind, payload[:HASH_BYTES], record, body)
