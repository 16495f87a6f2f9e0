"""The frames between writer front ends and the WAL owner (``--frontend-processes``).

One Unix stream connection per front end carries length-prefixed, checksummed frames
(docs/writer.md, "Front-end processes"). Every frame is a 20-byte header, then its body::

    magic "SWF1" (4) | kind u8 | 3 zero bytes | records u32 | body_bytes u32 | crc32(body) u32

All integers are little-endian. ``records`` is the number of records the body carries (0 for
frames that carry none). A frame whose magic, kind, reserved bytes, sizes, checksum or body
layout is wrong raises :class:`FrameError` with the reason; the reader drops the connection
(the owner logs it and the front end is restarted), it never guesses.

Bodies:

- ``HELLO`` (front end -> owner): the 32-byte token the owner gave the front end, its index u32
  and its pid u32.
- ``READY`` (front end -> owner): empty; its gRPC server is serving.
- ``APPEND`` (front end -> owner): requests back to back, each ``request_id u64 | count u32 |
  metered u8``, with ``metered`` 1 the meter's view of the request (``MeterAsk``:
  ``request_bytes u32 | signatures u32 | tokens u64 | compute_seconds f64 | value f64 |
  agent_bytes u16 | agent``), then ``count`` records ``type u8 | payload_bytes u32 |
  suffix_bytes u32 | payload | suffix``: the WAL payload (``stemedb.walrecord``) and the
  verifiable log's leaf suffix of the record.
- ``RESULT`` (owner -> front end): answers one APPEND, request by request: ``request_id u64 |
  status u8``, then for status 0 ``tree_size u64 | count u32 | count x lsn u64``, else
  ``grpc_code u32 | message_bytes u32 | details_bytes u32 | message (UTF-8) | details`` (a
  serialized ``google.rpc.Status`` when the error has details, e.g. the meter's RetryInfo).
- ``BUDGET_ASK`` (front end -> owner): ``ask_id u64 | agent (UTF-8)``; ``BUDGET`` (owner ->
  front end): ``ask_id u64 | GetBudgetResponse`` (serialized): MeterService on a front end.
- ``STATE`` (owner -> front end): ``wal_fatal u8`` (1: the WAL is unusable); the front end
  sets its health and answers ``STATE_SEEN`` (empty), which the owner awaits (bounded) before
  it answers the append that failed, so no front end still says SERVING by then.
- ``METRICS_ASK`` (owner -> front end): ``ask_id u64``; ``METRICS`` (front end -> owner):
  ``ask_id u64`` then a JSON snapshot of the front end's metric families.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from stemedb.walrecord import HASH_BYTES, KIND_OF_TYPE
from stemedb.writer._meter import MeterAsk

__all__ = [
    "APPEND",
    "BUDGET",
    "BUDGET_ASK",
    "FRAMES_IN_FLIGHT_MAX",
    "FRAME_BYTES_MAX",
    "FRAME_RECORDS_MAX",
    "HEADER",
    "HELLO",
    "METRICS",
    "METRICS_ASK",
    "READY",
    "RESULT",
    "STATE",
    "STATE_SEEN",
    "TOKEN_BYTES",
    "AppendRequest",
    "FrameError",
    "Header",
    "Outcome",
    "append_size",
    "check_body",
    "decode_append",
    "decode_header",
    "decode_hello",
    "decode_result",
    "encode_append",
    "encode_frame",
    "encode_hello",
    "encode_result",
    "read_frame",
]

MAGIC = b"SWF1"
HEADER = struct.Struct("<4sB3sIII")
HELLO, READY, APPEND, RESULT, STATE, METRICS_ASK, METRICS, STATE_SEEN = 1, 2, 3, 4, 5, 6, 7, 8
BUDGET_ASK, BUDGET = 9, 10
_KINDS = {
    HELLO, READY, APPEND, RESULT, STATE, METRICS_ASK, METRICS, STATE_SEEN, BUDGET_ASK, BUDGET,
}  # fmt: skip
# A frame holds every request of one front-end event-loop turn, split where one more request
# would pass a bound. One request always fits: an AppendBatch is at most 10,000 records and
# 16 MiB (validation), its payloads and leaf suffixes at most about twice that.
FRAME_RECORDS_MAX = 20_000  # the WAL's group_records_max: one frame, one group commit
FRAME_BYTES_MAX = 48 * 1024 * 1024
# APPEND frames one front end may have unanswered; requests arriving meanwhile queue for the
# next frame, so under load a frame carries many calls (one read, one group commit and one
# answer in the owner for all of them), and idle, a call is sent at once. The owner refuses
# (drops) a front end that sends more.
FRAMES_IN_FLIGHT_MAX = 1
TOKEN_BYTES = 32
_REQUEST = struct.Struct("<QIB")
_METER = struct.Struct("<IIQddH")
_RECORD = struct.Struct("<BII")
_HELLO = struct.Struct("<II")
_OK = struct.Struct("<QBQI")
_ERROR = struct.Struct("<QBIII")
_STATUS_OK, _STATUS_ERROR = 0, 1


class FrameError(ValueError):
    """A malformed frame; the message says what is wrong and where."""


@dataclass(frozen=True, slots=True)
class Header:
    kind: int
    records: int
    body_bytes: int
    crc: int


def encode_frame(kind: int, body: bytes, records: int = 0) -> bytes:
    return HEADER.pack(MAGIC, kind, b"\0\0\0", records, len(body), zlib.crc32(body)) + body


def decode_header(data: bytes) -> Header:
    """Check a frame header against the format and the bounds."""
    magic, kind, reserved, records, body_bytes, crc = HEADER.unpack(data)
    if magic != MAGIC:
        raise FrameError(f"frame header: magic {magic!r}, expected {MAGIC!r}")
    if kind not in _KINDS:
        raise FrameError(f"frame header: unknown kind {kind}")
    if reserved != b"\0\0\0":
        raise FrameError(f"frame header: reserved bytes {reserved.hex()} are not zero")
    if records > FRAME_RECORDS_MAX:
        raise FrameError(f"frame header: {records} records, the bound is {FRAME_RECORDS_MAX}")
    if body_bytes > FRAME_BYTES_MAX:
        raise FrameError(f"frame header: {body_bytes} body bytes, the bound is {FRAME_BYTES_MAX}")
    return Header(kind, records, body_bytes, crc)


def check_body(header: Header, body: bytes) -> None:
    if zlib.crc32(body) != header.crc:
        raise FrameError(
            f"frame kind {header.kind}: body checksum {zlib.crc32(body):08x}, header says "
            f"{header.crc:08x}"
        )


async def read_frame(reader: asyncio.StreamReader) -> tuple[Header, bytes] | None:
    """The next frame, checked; None at a clean end of the stream (between frames)."""
    try:
        head = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FrameError(f"frame header truncated after {len(exc.partial)} bytes") from None
    header = decode_header(head)
    try:
        body = await reader.readexactly(header.body_bytes)
    except asyncio.IncompleteReadError as exc:
        raise FrameError(
            f"frame kind {header.kind}: body truncated after {len(exc.partial)} of "
            f"{header.body_bytes} bytes"
        ) from None
    check_body(header, body)
    return header, body


def encode_hello(token: bytes, index: int, pid: int) -> bytes:
    return encode_frame(HELLO, token + _HELLO.pack(index, pid))


def decode_hello(body: bytes) -> tuple[bytes, int, int]:
    if len(body) != TOKEN_BYTES + _HELLO.size:
        raise FrameError(f"HELLO: {len(body)} bytes, expected {TOKEN_BYTES + _HELLO.size}")
    index, pid = _HELLO.unpack_from(body, TOKEN_BYTES)
    return body[:TOKEN_BYTES], index, pid


@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One request's records, ready for the WAL: (type, payload) entries and leaf suffixes."""

    request_id: int
    entries: Sequence[tuple[int, bytes]]
    suffixes: Sequence[bytes]
    meter: MeterAsk | None = None  # with --meter-config: what the owner's meter charges


def append_size(request: AppendRequest) -> int:
    """The bytes ``request`` takes in an APPEND body."""
    meter = 0 if request.meter is None else _METER.size + len(request.meter.agent) * 4
    return (
        _REQUEST.size
        + meter
        + _RECORD.size * len(request.entries)
        + sum(len(p) for _, p in request.entries)
        + sum(len(s) for s in request.suffixes)
    )


def encode_append(requests: Sequence[AppendRequest]) -> bytes:
    parts: list[bytes] = []
    records = 0
    for r in requests:
        parts.append(_REQUEST.pack(r.request_id, len(r.entries), r.meter is not None))
        if r.meter is not None:
            m = r.meter
            agent = m.agent.encode("utf-8")
            parts.append(_METER.pack(m.request_bytes, m.signatures, m.tokens, m.compute_seconds,
                                     m.value, len(agent)))  # fmt: skip
            parts.append(agent)
        for (record_type, payload), suffix in zip(r.entries, r.suffixes, strict=True):
            parts.append(_RECORD.pack(record_type, len(payload), len(suffix)))
            parts.append(payload)
            parts.append(suffix)
        records += len(r.entries)
    return encode_frame(APPEND, b"".join(parts), records)


def decode_append(header: Header, body: bytes) -> list[AppendRequest]:
    """The requests of an APPEND body; every length is checked against the body and the
    header's record count, and every record type against the WAL's."""
    out: list[AppendRequest] = []
    pos, total, end = 0, 0, len(body)
    view = memoryview(body)
    while pos < end:
        if pos + _REQUEST.size > end:
            raise FrameError(f"APPEND: request header truncated at body offset {pos}")
        request_id, count, metered = _REQUEST.unpack_from(body, pos)
        pos += _REQUEST.size
        if count == 0 or total + count > header.records or metered > 1:
            raise FrameError(
                f"APPEND: request {request_id} at body offset {pos - _REQUEST.size} has "
                f"{count} records (the header {header.records} in all), metered {metered}"
            )
        total += count
        meter = None
        if metered:
            if pos + _METER.size > end:
                raise FrameError(f"APPEND: meter fields truncated at body offset {pos}")
            request_bytes, signatures, tokens, seconds, value, agent_bytes = _METER.unpack_from(
                body, pos
            )
            pos += _METER.size
            if pos + agent_bytes > end:
                raise FrameError(f"APPEND: meter agent truncated at body offset {pos}")
            try:
                agent = body[pos : pos + agent_bytes].decode("utf-8")
            except UnicodeDecodeError:
                raise FrameError(f"APPEND: meter agent at body offset {pos} is not UTF-8") from None
            pos += agent_bytes
            meter = MeterAsk(agent, count, request_bytes, signatures, tokens, seconds, value)
        entries: list[tuple[int, bytes]] = []
        suffixes: list[bytes] = []
        for _ in range(count):
            if pos + _RECORD.size > end:
                raise FrameError(f"APPEND: record header truncated at body offset {pos}")
            record_type, payload_bytes, suffix_bytes = _RECORD.unpack_from(body, pos)
            if record_type not in KIND_OF_TYPE:
                raise FrameError(f"APPEND: record type {record_type} at body offset {pos}")
            start = pos + _RECORD.size
            stop = start + payload_bytes + suffix_bytes
            if payload_bytes <= HASH_BYTES or stop > end:
                raise FrameError(
                    f"APPEND: record at body offset {pos}: payload {payload_bytes} and suffix "
                    f"{suffix_bytes} bytes do not fit the body of {end}"
                )
            entries.append((record_type, bytes(view[start : start + payload_bytes])))
            suffixes.append(bytes(view[start + payload_bytes : stop]))
            pos = stop
        out.append(AppendRequest(request_id, entries, suffixes, meter))
    if total != header.records:
        raise FrameError(f"APPEND: {total} records in the body, the header says {header.records}")
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's answer: its LSNs and tree size, or a gRPC status code and message."""

    request_id: int
    lsns: Sequence[int] = ()
    tree_size: int = 0
    code: int = 0  # grpc.StatusCode value; 0 (OK) with lsns
    message: str = ""
    details: bytes = b""  # a serialized google.rpc.Status, when the error has details


def encode_result(outcomes: Sequence[Outcome]) -> bytes:
    parts: list[bytes] = []
    for o in outcomes:
        if o.code == 0:
            parts.append(_OK.pack(o.request_id, _STATUS_OK, o.tree_size, len(o.lsns)))
            parts.append(struct.pack(f"<{len(o.lsns)}Q", *o.lsns))
        else:
            text = o.message.encode("utf-8")
            parts.append(
                _ERROR.pack(o.request_id, _STATUS_ERROR, o.code, len(text), len(o.details))
            )
            parts.append(text)
            parts.append(o.details)
    return encode_frame(RESULT, b"".join(parts))


def decode_result(body: bytes) -> list[Outcome]:
    out: list[Outcome] = []
    pos, end = 0, len(body)
    while pos < end:
        if pos + 9 > end:
            raise FrameError(f"RESULT: answer truncated at body offset {pos}")
        status = body[pos + 8]
        if status == _STATUS_OK:
            if pos + _OK.size > end:
                raise FrameError(f"RESULT: answer truncated at body offset {pos}")
            request_id, _, tree_size, count = _OK.unpack_from(body, pos)
            pos += _OK.size
            if pos + 8 * count > end:
                raise FrameError(f"RESULT: {count} LSNs do not fit at body offset {pos}")
            lsns = struct.unpack_from(f"<{count}Q", body, pos)
            pos += 8 * count
            out.append(Outcome(request_id, lsns, tree_size))
        elif status == _STATUS_ERROR:
            if pos + _ERROR.size > end:
                raise FrameError(f"RESULT: answer truncated at body offset {pos}")
            request_id, _, code, length, details_bytes = _ERROR.unpack_from(body, pos)
            pos += _ERROR.size
            if code == 0 or pos + length + details_bytes > end:
                raise FrameError(f"RESULT: error answer at body offset {pos} is malformed")
            message = body[pos : pos + length].decode("utf-8", "replace")
            pos += length
            details = body[pos : pos + details_bytes]
            pos += details_bytes
            out.append(Outcome(request_id, code=code, message=message, details=details))
        else:
            raise FrameError(f"RESULT: status {status} at body offset {pos + 8}")
    return out
