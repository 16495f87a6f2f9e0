"""The one frame reader: every path that reads frames back (recovery, verify, repair, dump, the
tailing ``WalReader``) goes through ``SegmentCursor``.

A cursor decodes the frames of one segment in order. It checks the segment header against the
file name, each frame's header fields, length, checksum and padding, and that LSNs follow each
other. When it meets damage it does not throw away what it read: it hands back the intact
records so far and a ``Damage`` (file, offset, expected LSN, reason); the caller decides whether
that is a torn tail or corruption, because only the caller knows the watermark.

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
    "SegmentCursor",
    "SegmentScan",
    "WalRecord",
    "check_segment_header",
    "decode_frame",
    "decode_segment_header",
    "iter_records",
    "lsn_gap_reason",
    "scan_segment",
    "walk_segment_chain",
]

_HEADER_BYTES = RECORD_HEADER.size
_READ_CHUNK_BYTES = 1024 * 1024  # bytes per pread of a cursor over a file descriptor


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


@dataclass(frozen=True)
class Damage:
    """The first damage a cursor met: where, which LSN was expected there, and why."""

    file: Path
    offset: int
    lsn: int
    reason: str

    def error(self, note: str = "") -> WalCorruption:
        """This damage as the WalCorruption to raise, ``note`` appended to the reason."""
        return WalCorruption(self.file, self.offset, self.lsn, self.reason + note)


def lsn_gap_reason(expected: int, found: int, where: str = "") -> str:
    """The one wording of an LSN gap (inside a segment, or ``where`` e.g. between segments)."""
    return f"LSN gap{where}: expected LSN {expected}, found {found}"


def _parse_header(
    buf: bytes | memoryview | mmap.mmap, pos: int, buf_bytes: int | None = None
) -> tuple[int, int, int, int, int]:
    """Check a frame's header fields and that the frame fits in ``buf_bytes`` (default: the
    buffer's length); raises FrameError."""
    remaining = (len(buf) if buf_bytes is None else buf_bytes) - pos
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
    return lsn, record_type, timestamp_ns, length, frame_bytes


def decode_frame(buf: bytes | memoryview | mmap.mmap, pos: int) -> tuple[int, int, int, int, int]:
    """Validate the frame at ``buf[pos:]``.

    Returns ``(lsn, record_type, timestamp_ns, payload_bytes, frame_bytes)``; raises FrameError.
    """
    lsn, record_type, timestamp_ns, length, frame_bytes = _parse_header(buf, pos)
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


def check_segment_header(
    path: Path, head: bytes | memoryview, name_first_lsn: int
) -> Damage | None:
    """The one header-versus-file-name check: None when the header is valid and agrees."""
    try:
        first_lsn = decode_segment_header(head[:SEGMENT_HEADER_BYTES])
    except FrameError as exc:
        return Damage(path, 0, name_first_lsn, exc.reason)
    if first_lsn != name_first_lsn:
        return Damage(
            path,
            0,
            name_first_lsn,
            f"segment header says first LSN {first_lsn}, file name says {name_first_lsn}",
        )
    return None


class SegmentCursor:
    """Decodes the frames of one segment in LSN order, from a buffer or a file descriptor.

    Over a buffer (``data``: the whole file, bytes or an mmap) every byte is trusted as read.
    Over a descriptor (``fd``) the file may still be growing: bytes are read in chunks, and bytes
    read while the watermark was W are only used for frames with LSN <= W (``trust_up_to``);
    a frame above that is read again, because bytes past the watermark can still change (a torn
    group is cut and rewritten by the next writer).
    """

    def __init__(
        self,
        path: Path,
        first_lsn: int,
        *,
        data: bytes | mmap.mmap | None = None,
        fd: int | None = None,
        offset: int = SEGMENT_HEADER_BYTES,
        next_lsn: int | None = None,
    ) -> None:
        if (data is None) == (fd is None):
            raise ValueError("SegmentCursor needs exactly one of data and fd")
        self.path = path
        self.first_lsn = first_lsn
        self.offset = offset
        self.next_lsn = first_lsn if next_lsn is None else next_lsn
        self._fd = fd
        self._buf: bytes | mmap.mmap = b"" if data is None else data
        self._buf_start = 0
        self._trusted_lsn = 0 if fd is not None else 2**64  # frames the buffer may serve
        self._buf_trusted_lsn = self._trusted_lsn

    def trust_up_to(self, watermark: int) -> None:
        """Bytes read from now on may serve frames up to LSN ``watermark`` (fd cursors)."""
        self._trusted_lsn = max(self._trusted_lsn, watermark)

    def _fill(self, need_bytes: int) -> tuple[bytes | mmap.mmap, int]:
        """The buffer and the position of ``offset`` in it, with ``need_bytes`` there when the
        file has them."""
        if self._fd is None:
            return self._buf, self.offset
        rel = self.offset - self._buf_start
        fresh = self.next_lsn <= self._buf_trusted_lsn
        if fresh and rel >= 0 and len(self._buf) - rel >= need_bytes:
            return self._buf, rel
        self._buf = os.pread(self._fd, max(_READ_CHUNK_BYTES, need_bytes), self.offset)
        self._buf_start = self.offset
        self._buf_trusted_lsn = self._trusted_lsn
        return self._buf, 0

    def skip(self) -> int | Damage | None:
        """Hop over the next frame checking its header fields and LSN but not its checksum
        (cheap); returns its LSN, a Damage, or None at the end."""
        decoded = self._decode(full=False)
        if decoded is None or isinstance(decoded, Damage):
            return decoded
        return self._advance(decoded[2])

    def validate(self) -> int | Damage | None:
        """Fully validate the next frame without building its record; its LSN, a Damage, or
        None at the end."""
        decoded = self._decode(full=True)
        if decoded is None or isinstance(decoded, Damage):
            return decoded
        return self._advance(decoded[2])

    def next(self) -> WalRecord | Damage | None:
        """Decode and fully validate the next frame: its record, a Damage, or None at the end."""
        decoded = self._decode(full=True)
        if decoded is None or isinstance(decoded, Damage):
            return decoded
        buf, rel, (lsn, record_type, timestamp_ns, length, frame_bytes) = decoded
        start = rel + _HEADER_BYTES
        end = rel + frame_bytes
        # Slicing bytes or an mmap already copies: no bytes() around it.
        record = WalRecord(
            lsn,
            record_type,
            timestamp_ns,
            buf[start : start + length],
            buf[end - CHECKSUM_BYTES : end],
            self.path,
            self.offset,
        )
        self.offset += frame_bytes
        self.next_lsn += 1
        return record

    def _decode(
        self, full: bool
    ) -> tuple[bytes | mmap.mmap, int, tuple[int, int, int, int, int]] | Damage | None:
        buf, rel = self._fill(_HEADER_BYTES)
        available = len(buf) - rel
        if available == 0:
            return None
        if available >= _HEADER_BYTES:
            length = RECORD_HEADER.unpack_from(buf, rel)[4]
            if length <= RECORD_PAYLOAD_BYTES_MAX:
                buf, rel = self._fill(frame_size_bytes(length) if full else _HEADER_BYTES)
        try:
            fields = decode_frame(buf, rel) if full else _parse_header(buf, rel, self._size(buf))
        except FrameError as exc:
            return Damage(self.path, self.offset, self.next_lsn, exc.reason)
        if fields[0] != self.next_lsn:
            return Damage(
                self.path, self.offset, self.next_lsn, lsn_gap_reason(self.next_lsn, fields[0])
            )
        return buf, rel, fields

    def _size(self, buf: bytes | mmap.mmap) -> int | None:
        # Over a buffer the whole file is there; over a descriptor a header-only hop must check
        # that the frame fits against the file's size, not against the chunk read.
        if self._fd is None:
            return None
        return os.fstat(self._fd).st_size - self._buf_start

    def _advance(self, fields: tuple[int, int, int, int, int]) -> int:
        self.offset += fields[4]
        self.next_lsn += 1
        return fields[0]

    def read(
        self, max_records: int, until_lsn: int | None = None
    ) -> tuple[list[WalRecord], Damage | None]:
        """Up to ``max_records`` records (none above ``until_lsn``) and the damage that ended
        the read early, if any: intact records are never thrown away because of later damage."""
        records: list[WalRecord] = []
        while len(records) < max_records and (until_lsn is None or self.next_lsn <= until_lsn):
            item = self.next()
            if item is None:
                break
            if isinstance(item, Damage):
                return records, item
            records.append(item)
        return records, None


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
    damage = check_segment_header(path, data, name_first_lsn)
    cursor = SegmentCursor(path, name_first_lsn, data=data)
    while damage is None:
        item = cursor.validate()
        if item is None:
            break
        if isinstance(item, Damage):
            damage = item
    last_lsn = cursor.next_lsn - 1
    records = cursor.next_lsn - name_first_lsn
    if damage is None:
        return SegmentScan(path, name_first_lsn, len(data), records, last_lsn, cursor.offset)
    return SegmentScan(
        path,
        name_first_lsn,
        len(data),
        records,
        last_lsn,
        damage.offset,
        damage.offset,
        damage.lsn,
        damage.reason,
    )


def iter_records(
    path: Path, data: bytes, first_lsn: int, from_lsn: int = 1
) -> Iterator[WalRecord | Damage]:
    """Yield the records of a segment whose header was already checked, in order.

    On damage the last item yielded is a ``Damage``; the caller decides whether it is a torn tail
    or corruption, because only the caller knows the watermark.
    """
    cursor = SegmentCursor(path, first_lsn, data=data)
    while True:
        item = cursor.next() if cursor.next_lsn >= from_lsn else cursor.validate()
        if item is None:
            return
        if isinstance(item, WalRecord | Damage):
            yield item
            if isinstance(item, Damage):
                return


def walk_segment_chain(path: Path, first_lsn: int) -> int:
    """Walk a closed segment's frame headers; return its last LSN or raise WalCorruption.

    Checks that LSNs follow each other from ``first_lsn`` and that the file ends exactly at a
    frame boundary (a segment that ends mid-record before the last one is corruption). The last
    frame is fully decoded, checksum included; other frames' checksums are left to readers and
    to ``verify_wal``, which is what keeps opening a large log cheap.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size <= SEGMENT_HEADER_BYTES:
            return first_lsn - 1
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            cursor = SegmentCursor(path, first_lsn, data=view)
            last_offset = cursor.offset
            damage: Damage | None = None
            while True:
                here = cursor.offset
                item = cursor.skip()
                if item is None:
                    break
                if isinstance(item, Damage):
                    damage = item
                    break
                last_offset = here
            last_lsn = cursor.next_lsn - 1
            if damage is None and last_lsn >= first_lsn:
                last = SegmentCursor(
                    path, first_lsn, data=view, offset=last_offset, next_lsn=last_lsn
                )
                item = last.validate()
                damage = item if isinstance(item, Damage) else None
    if damage is not None:
        raise damage.error(" (in a segment before the last)")
    return last_lsn
