"""Framing: the byte layout of segment headers and record frames (docs/wal-format.md).

All integers are little-endian. Every frame starts at an offset that is a multiple of 8, so a
reader that lands on a frame boundary can check alignment before trusting a length field.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from blake3 import blake3

__all__ = [
    "CHECKSUM_BYTES",
    "FORMAT_VERSION",
    "RECORD_HEADER",
    "RECORD_MAGIC",
    "RECORD_PAYLOAD_BYTES_MAX",
    "SEGMENT_HEADER",
    "SEGMENT_HEADER_BYTES",
    "SEGMENT_MAGIC",
    "checksum",
    "encode_batch",
    "encode_record",
    "encode_segment_header",
    "frame_size_bytes",
    "padded_bytes",
]

FORMAT_VERSION = 1

# Record header, 32 bytes: magic, version, record type, reserved u16 (zero), payload length,
# reserved u32 (zero), LSN, writer timestamp in ns since the Unix epoch.
RECORD_MAGIC = b"SREC"
RECORD_HEADER = struct.Struct("<4sBBHIIQQ")

# 128 bits of BLAKE3: far beyond what detecting torn or rotted bytes needs, and it keeps frames
# 8-byte aligned without extra padding.
CHECKSUM_BYTES = 16

# A payload larger than this is refused when appending and treated as a damaged length field
# when reading, so a flipped bit in a length can never make a reader allocate gigabytes.
RECORD_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024

# Segment header, 24 bytes + 16 bytes checksum = 40: magic, version, reserved u16, reserved
# u32, first LSN of the segment.
SEGMENT_MAGIC = b"STEMEWAL"
SEGMENT_HEADER = struct.Struct("<8sHHIQ")
SEGMENT_HEADER_BYTES = SEGMENT_HEADER.size + CHECKSUM_BYTES

_ZEROS = bytes(8)


def checksum(data: bytes | memoryview) -> bytes:
    """The 16-byte BLAKE3 digest used everywhere in the format."""
    return blake3(data).digest(CHECKSUM_BYTES)


def padded_bytes(length: int) -> int:
    """``length`` rounded up to a multiple of 8."""
    return (length + 7) & ~7


def frame_size_bytes(payload_bytes: int) -> int:
    """Total size of one record frame carrying ``payload_bytes`` of payload."""
    return RECORD_HEADER.size + padded_bytes(payload_bytes) + CHECKSUM_BYTES


def encode_record(lsn: int, record_type: int, timestamp_ns: int, payload: bytes) -> bytes:
    """Encode one frame: header, payload, zero padding, checksum over header and payload."""
    length = len(payload)
    header = RECORD_HEADER.pack(
        RECORD_MAGIC, FORMAT_VERSION, record_type, 0, length, 0, lsn, timestamp_ns
    )
    hasher = blake3(header)
    hasher.update(payload)
    pad = _ZEROS[: padded_bytes(length) - length]
    return b"".join((header, payload, pad, hasher.digest(CHECKSUM_BYTES)))


def encode_batch(first_lsn: int, records: Sequence[tuple[int, bytes]], timestamp_ns: int) -> bytes:
    """Encode consecutive frames for ``records`` starting at ``first_lsn``, as one buffer."""
    if len(records) == 1:
        record_type, payload = records[0]
        return encode_record(first_lsn, record_type, timestamp_ns, payload)
    return b"".join(
        encode_record(first_lsn + i, record_type, timestamp_ns, payload)
        for i, (record_type, payload) in enumerate(records)
    )


def encode_segment_header(first_lsn: int) -> bytes:
    """Encode the 40-byte segment header for a segment whose first record is ``first_lsn``."""
    body = SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, 0, first_lsn)
    return body + checksum(body)
