"""The payload of a StemeDB record in the write-ahead log (the WAL itself treats it as opaque).

WAL record type: 1 assertion, 2 vote, 3 epoch (the ``Record.kind`` that the payload holds).
Payload: the record's 32-byte content hash, then the ``stemedb.v1.Record`` protobuf message with
its signatures, as the writer received it.

Types 0x11 assertion, 0x12 vote, 0x13 epoch (payload version 2) carry the meter's **job
envelope** between the hash and the record: ``u16`` length ``j``, then ``j`` bytes of
:class:`JobEnvelope` (see ``docs/wal-format.md``). The writer puts it on the first record of each
metered request only, so an ingestor counts each request's usage exactly once. Types 1-3 stay
valid forever: logs written before the meter read unchanged.

The hash is computed once, by the writer, over the canonical bytes; keeping it in the payload
spares every ingestor the canonical re-encoding, and the WAL's own checksum protects both parts.
``stemedb wal dump`` shows the payload decoded.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import NamedTuple

from google.protobuf.message import DecodeError

from stemedb.v1 import records_pb2 as pb

__all__ = [
    "KIND_OF_TYPE",
    "TYPE_OF_KIND",
    "TYPE_WITH_JOB_OF_KIND",
    "DecodedPayload",
    "JobEnvelope",
    "PayloadError",
    "decode_payload",
    "encode_payload",
    "encode_payload_with_job",
]

TYPE_OF_KIND = {"assertion": 1, "vote": 2, "epoch": 3}
KIND_OF_TYPE = {v: k for k, v in TYPE_OF_KIND.items()}
TYPE_WITH_JOB_OF_KIND = {"assertion": 0x11, "vote": 0x12, "epoch": 0x13}
_KIND_OF_JOB_TYPE = {v: k for k, v in TYPE_WITH_JOB_OF_KIND.items()}
HASH_BYTES = 32
_JOB_VERSION = 1
# version u8, records u32, units f64, tokens u64, compute_seconds f64, value f64, agent length u16
_JOB_HEAD = struct.Struct("<BIdQddH")
_AGENT_BYTES_MAX = 1024


class PayloadError(ValueError):
    """A WAL payload that does not decode to the record its type announces."""


class JobEnvelope(NamedTuple):
    """A metered request, as the writer charged it: carried by the request's first record.

    A NamedTuple, not a frozen dataclass: the writer builds one per metered request, and a
    tuple is several times cheaper to construct."""

    agent: str
    records: int  # records in the request
    units: float  # cost charged
    tokens: int = 0  # JobInfo.tokens as declared
    compute_seconds: float = 0.0
    value: float = 0.0

    def encode(self) -> bytes:
        agent = self.agent.encode("utf-8")
        if not 0 < len(agent) <= _AGENT_BYTES_MAX:
            raise ValueError(f"job agent must be 1..{_AGENT_BYTES_MAX} bytes, got {len(agent)}")
        head = _JOB_HEAD.pack(
            _JOB_VERSION, self.records, self.units, self.tokens, self.compute_seconds,
            self.value, len(agent),
        )  # fmt: skip
        return head + agent

    @classmethod
    def decode(cls, data: bytes) -> JobEnvelope:
        if len(data) < _JOB_HEAD.size:
            raise PayloadError(f"job envelope of {len(data)} bytes is too short")
        version, records, units, tokens, seconds, value, n = _JOB_HEAD.unpack_from(data)
        if version != _JOB_VERSION:
            raise PayloadError(f"job envelope version {version} is not {_JOB_VERSION}")
        if len(data) != _JOB_HEAD.size + n or n == 0:
            raise PayloadError(f"job envelope agent length {n} does not fit {len(data)} bytes")
        if not all(math.isfinite(x) and x >= 0 for x in (units, seconds, value)):
            raise PayloadError("job envelope holds a negative or non-finite figure")
        try:
            agent = data[_JOB_HEAD.size :].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"job envelope agent is not UTF-8: {exc}") from None
        return cls(agent, records, units, tokens, seconds, value)


@dataclass(frozen=True)
class DecodedPayload:
    kind: str
    content_hash: bytes
    record: pb.Record
    record_bytes: bytes  # the serialized Record, as stored
    job: JobEnvelope | None = None  # set on the first record of a metered request


def encode_payload(content_hash: bytes, record_bytes: bytes) -> bytes:
    """Payload for a record whose serialized ``Record`` message is ``record_bytes``."""
    if len(content_hash) != HASH_BYTES:
        raise ValueError(f"content hash must be {HASH_BYTES} bytes, got {len(content_hash)}")
    return content_hash + record_bytes


def encode_payload_with_job(content_hash: bytes, record_bytes: bytes, job: JobEnvelope) -> bytes:
    """Payload of type ``TYPE_WITH_JOB_OF_KIND[kind]``: hash, job envelope, record."""
    envelope = job.encode()
    return encode_payload(content_hash, struct.pack("<H", len(envelope)) + envelope + record_bytes)


def decode_payload(record_type: int, payload: bytes) -> DecodedPayload:
    """Decode and cross-check a payload; raise PayloadError with the reason."""
    kind = KIND_OF_TYPE.get(record_type)
    with_job = kind is None and record_type in _KIND_OF_JOB_TYPE
    if with_job:
        kind = _KIND_OF_JOB_TYPE[record_type]
    if kind is None:
        raise PayloadError(f"unknown record type {record_type}")
    if len(payload) < HASH_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes is shorter than a hash")
    body = payload[HASH_BYTES:]
    job: JobEnvelope | None = None
    if with_job:
        if len(body) < 2:
            raise PayloadError("payload ends before its job envelope")
        (j,) = struct.unpack_from("<H", body)
        if len(body) < 2 + j:
            raise PayloadError(f"job envelope of {j} bytes runs past the payload")
        job = JobEnvelope.decode(body[2 : 2 + j])
        body = body[2 + j :]
    try:
        record = pb.Record.FromString(body)
    except DecodeError as exc:
        raise PayloadError(f"record does not decode: {exc}") from exc
    if record.WhichOneof("kind") != kind:
        raise PayloadError(
            f"record type {record_type} ({kind}) holds a {record.WhichOneof('kind')}"
        )
    return DecodedPayload(kind, payload[:HASH_BYTES], record, body, job)
