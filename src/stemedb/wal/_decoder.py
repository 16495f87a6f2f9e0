"""Reading frames back: validation of every field, checksum and padding, torn-write detection.

Nothing here trusts a length before comparing it with the bytes that remain, so a damaged
length field produces a clear error instead of a huge allocation.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from stemedb.wal._encoder import (
    CHECKSUM_BYTES,
    FORMAT_VERSION,
    RECORD_HEADER,
    RECORD_MAGIC,
    RECORD_PAYLOAD_BYTES_MAX,
    SEGMENT_HEADER,
    SEGMENT_HEADER_BYTES,
    SEGMENT_MAGIC,
    checksum,
    frame_size_bytes,
)
from stemedb.wal._errors import WalCorruption

__all__ = [
    "Damage",
    "FrameError",
    "SegmentScan",
    "WalRecord",
    "decode_frame",
    "decode_segment_header",
    "iter_records",
    "scan_segment",
    "walk_segment_chain",
]

_HEADER_BYTES = RECORD_HEADER.size


@dataclass(frozen=True)
class WalRecord:
    """One record read back from the log, with where it lives."""

    lsn: int
    record_type: int
    timestamp_ns: int
    payload: bytes
    checksum: bytes  # the stored 16-byte BLAKE3 checksum; consumers keep it in their checkpoint
    segment: Path
    offset: int


class FrameError(Exception):
    """A frame (or segment header) that is not whole and valid; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_frame(buf: bytes | memoryview, pos: int) -> tuple[int, int, int, int, int]:
    """Validate the frame at ``buf[pos:]``.

    Returns ``(lsn, record_type, timestamp_ns, payload_bytes, frame_bytes)``; raises FrameError.
    """
    remaining = len(buf) - pos
    if remaining < _HEADER_BYTES:
        raise FrameError(f"incomplete record header: only {remaining} bytes left")
    magic, version, record_type, reserved16, length, reserved32, lsn, timestamp_ns = (
        RECORD_HEADER.unpack_from(buf, pos)
    )
    if magic != RECORD_MAGIC:
        raise FrameError(f"bad record magic {bytes(magic)!r}")
    if version != FORMAT_VERSION:
        raise FrameError(f"unknown record format version {version}")
    if reserved16 != 0 or reserved32 != 0:
        raise FrameError("nonzero reserved field in record header")
    if record_type == 0:
        raise FrameError("record type 0 is not allowed")
    if length > RECORD_PAYLOAD_BYTES_MAX:
        raise FrameError(f"payload length {length} exceeds the maximum {RECORD_PAYLOAD_BYTES_MAX}")
    frame_bytes = frame_size_bytes(length)
    if frame_bytes > remaining:
        raise FrameError(f"record of {frame_bytes} bytes is cut short: only {remaining} bytes left")
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    payload_end = pos + _HEADER_BYTES + length
    stored = view[pos + frame_bytes - CHECKSUM_BYTES : pos + frame_bytes]
    if blake3(view[pos:payload_end]).digest(CHECKSUM_BYTES) != stored:
        raise FrameError("checksum mismatch")
    padding = view[payload_end : pos + frame_bytes - CHECKSUM_BYTES]
    if any(padding):
        raise FrameError("nonzero padding after payload")
    return lsn, record_type, timestamp_ns, length, frame_bytes


def decode_segment_header(buf: bytes | memoryview) -> int:
    """Validate a segment header and return its first LSN; raises FrameError."""
    if len(buf) < SEGMENT_HEADER_BYTES:
        raise FrameError(f"incomplete segment header: only {len(buf)} bytes")
    body = bytes(buf[: SEGMENT_HEADER.size])
    if checksum(body) != bytes(buf[SEGMENT_HEADER.size : SEGMENT_HEADER_BYTES]):
        raise FrameError("segment header checksum mismatch")
    magic, version, reserved16, reserved32, first_lsn = SEGMENT_HEADER.unpack(body)
    if magic != SEGMENT_MAGIC:
        raise FrameError(f"bad segment magic {magic!r}")
    if version != FORMAT_VERSION:
        raise FrameError(f"unknown segment format version {version}")
    if reserved16 != 0 or reserved32 != 0 or first_lsn < 1:
        raise FrameError("invalid segment header fields")
    return int(first_lsn)


@dataclass(frozen=True)
class SegmentScan:
    """What a full scan of one segment found: the valid prefix and the first damage, if any."""

    path: Path
    first_lsn: int
    file_bytes: int
    records: int
    last_lsn: int  # first_lsn - 1 when the segment holds no valid record
    end_offset: int  # end of the valid prefix
    damage_offset: int | None = None
    damage_lsn: int | None = None  # the LSN expected at the damaged offset
    damage_reason: str | None = None

    @property
    def damaged(self) -> bool:
        return self.damage_offset is not None


def scan_segment(path: Path, name_first_lsn: int, data: bytes | None = None) -> SegmentScan:
    """Validate every frame of a segment; stops at the first damage and reports it."""
    if data is None:
        data = path.read_bytes()
    try:
        first_lsn = decode_segment_header(data)
    except FrameError as exc:
        return SegmentScan(
            path, name_first_lsn, len(data), 0, name_first_lsn - 1, 0, 0, name_first_lsn, exc.reason
        )
    if first_lsn != name_first_lsn:
        return SegmentScan(
            path,
            name_first_lsn,
            len(data),
            0,
            name_first_lsn - 1,
            0,
            0,
            name_first_lsn,
            f"segment header says first LSN {first_lsn}, file name says {name_first_lsn}",
        )
    view = memoryview(data)
    pos = SEGMENT_HEADER_BYTES
    expected = first_lsn
    size = len(data)

    def damaged(reason: str) -> SegmentScan:
        return SegmentScan(
            path, first_lsn, size, expected - first_lsn, expected - 1, pos, pos, expected, reason
        )

    while pos < size:
        try:
            lsn, _type, _ts, _length, frame_bytes = decode_frame(view, pos)
        except FrameError as exc:
            return damaged(exc.reason)
        if lsn != expected:
            return damaged(f"LSN gap: expected LSN {expected}, found {lsn}")
        expected += 1
        pos += frame_bytes
    return SegmentScan(path, first_lsn, size, expected - first_lsn, expected - 1, pos)


@dataclass(frozen=True)
class Damage:
    """The first damaged frame met by ``iter_records``: where, which LSN was expected, why."""

    offset: int
    lsn: int
    reason: str


def iter_records(
    path: Path, data: bytes, first_lsn: int, from_lsn: int = 1
) -> Iterator[WalRecord | Damage]:
    """Yield the records of a segment whose header was already checked, in order.

    On damage the last item yielded is a ``Damage``; the caller decides whether it is a torn tail
    or corruption, because only the caller knows the watermark.
    """
    view = memoryview(data)
    pos = SEGMENT_HEADER_BYTES
    expected = first_lsn
    while pos < len(data):
        try:
            lsn, record_type, timestamp_ns, length, frame_bytes = decode_frame(view, pos)
            if lsn != expected:
                raise FrameError(f"LSN gap: expected LSN {expected}, found {lsn}")
        except FrameError as exc:
            yield Damage(pos, expected, exc.reason)
            return
        if lsn >= from_lsn:
            start = pos + _HEADER_BYTES
            yield WalRecord(
                lsn=lsn,
                record_type=record_type,
                timestamp_ns=timestamp_ns,
                payload=bytes(view[start : start + length]),
                checksum=bytes(view[pos + frame_bytes - CHECKSUM_BYTES : pos + frame_bytes]),
                segment=path,
                offset=pos,
            )
        expected += 1
        pos += frame_bytes


def walk_segment_chain(path: Path, first_lsn: int) -> int:
    """Walk a closed segment's frame headers; return its last LSN or raise WalCorruption.

    Checks that LSNs follow each other from ``first_lsn`` and that the file ends exactly at a
    frame boundary (a segment that ends mid-record before the last one is corruption). The last
    frame is fully decoded, checksum included; other frames' checksums are left to readers and
    to ``verify_wal``, which is what keeps opening a large log cheap.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= SEGMENT_HEADER_BYTES:
            return first_lsn - 1
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            pos = SEGMENT_HEADER_BYTES
            expected = first_lsn
            last_pos = pos
            unpack = RECORD_HEADER.unpack_from
            while pos < size:
                if size - pos < _HEADER_BYTES:
                    raise WalCorruption(path, pos, expected, "segment ends inside a record header")
                magic, _v, _t, _r16, length, _r32, lsn, _ts = unpack(view, pos)
                if magic != RECORD_MAGIC or length > RECORD_PAYLOAD_BYTES_MAX:
                    raise WalCorruption(path, pos, expected, "damaged record header")
                if lsn != expected:
                    raise WalCorruption(
                        path, pos, expected, f"found LSN {lsn}, expected {expected}"
                    )
                frame = frame_size_bytes(length)
                if pos + frame > size:
                    raise WalCorruption(
                        path, pos, expected, "segment ends mid-record before the last segment"
                    )
                last_pos = pos
                pos += frame
                expected += 1
            try:
                decode_frame(view[last_pos:pos], 0)
            except FrameError as exc:
                raise WalCorruption(path, last_pos, expected - 1, exc.reason) from exc
    return expected - 1
