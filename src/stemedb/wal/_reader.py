"""WalReader: tail the log in LSN order, never past WATERMARK, across segment roll-overs.

Works on a network volume: progress is discovered by polling WATERMARK (re-opened by path on
every poll, because the writer replaces the file at open) with an adaptive interval.
"""

from __future__ import annotations

import bisect
import os
import time
from pathlib import Path

from stemedb.wal._decoder import FrameError, WalRecord, decode_frame, decode_segment_header
from stemedb.wal._encoder import (
    CHECKSUM_BYTES,
    RECORD_HEADER,
    RECORD_PAYLOAD_BYTES_MAX,
    SEGMENT_HEADER_BYTES,
    frame_size_bytes,
)
from stemedb.wal._errors import WalCorruption, WalError
from stemedb.wal._segment import list_segments
from stemedb.wal._watermark import WATERMARK_NAME, read_watermark

__all__ = ["WalReader"]

_READ_CHUNK_BYTES = 1024 * 1024
_POLL_MIN_SECONDS = 0.001
_POLL_MAX_SECONDS = 0.05
_WATERMARK_READ_ATTEMPTS = 5
_HEADER_BYTES = RECORD_HEADER.size


class WalReader:
    """Reads records in order from ``from_lsn``, only up to the durable watermark."""

    def __init__(self, dir: Path, from_lsn: int = 1) -> None:
        if from_lsn < 1:
            raise ValueError(f"from_lsn must be >= 1, got {from_lsn}")
        self._dir = Path(dir)
        self._next_lsn = from_lsn
        self._fd: int | None = None
        self._path: Path | None = None
        self._offset = 0
        self._buf = b""
        self._buf_start = 0
        self._closed = False

    @property
    def next_lsn(self) -> int:
        """The LSN the next ``read_available`` returns first."""
        return self._next_lsn

    def watermark(self) -> int:
        """The durable LSN named by WATERMARK (0 before any writer created it)."""
        problem = ""
        for attempt in range(_WATERMARK_READ_ATTEMPTS):
            state = read_watermark(self._dir)
            if state.lsn is not None:
                return state.lsn
            if not (self._dir / WATERMARK_NAME).exists():
                return 0
            # The writer overwrites the 32 bytes in place; a read racing that write can see a
            # mix, which the checksum rejects. Retry briefly before calling it damage.
            problem = state.problem or "invalid"
            time.sleep(0.001 * (attempt + 1))
        raise WalCorruption(self._dir / WATERMARK_NAME, 0, None, problem)

    def read_available(self, max_records: int = 10_000) -> list[WalRecord]:
        """The next records in order, none beyond the watermark at call time; [] if caught up."""
        self._check_open()
        watermark = self.watermark()
        # Bytes cached by an earlier call may have been past the watermark then, and bytes past
        # the watermark can change (a torn group is truncated and rewritten). Start afresh.
        self._buf = b""
        records: list[WalRecord] = []
        while len(records) < max_records and self._next_lsn <= watermark:
            if self._fd is None:
                self._open_segment_for(self._next_lsn)
            record = self._read_frame()
            if record is None:
                self._advance_segment(watermark)
                continue
            records.append(record)
            self._next_lsn += 1
        return records

    def wait(self, timeout_seconds: float) -> bool:
        """Block until the watermark passes what was read, or the timeout; True if more."""
        deadline = time.monotonic() + timeout_seconds
        interval = _POLL_MIN_SECONDS
        while True:
            if self.watermark() >= self._next_lsn:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(interval, remaining))
            interval = min(interval * 2, _POLL_MAX_SECONDS)

    def record_at(self, lsn: int) -> WalRecord | None:
        """The durable record ``lsn``, or None when it is not (or no longer) in the log."""
        self._check_open()
        if lsn < 1 or lsn > self.watermark():
            return None
        segments = list_segments(self._dir)
        firsts = [first for first, _path in segments]
        index = bisect.bisect_right(firsts, lsn) - 1
        if index < 0:
            return None
        first_lsn, path = segments[index]
        data = path.read_bytes()
        self._check_header(path, data, first_lsn)
        pos = SEGMENT_HEADER_BYTES
        expected = first_lsn
        # Hop over earlier frames by their length fields only (fast), then validate the frame
        # that was asked for in full.
        while pos < len(data):
            if len(data) - pos < _HEADER_BYTES:
                break
            length = RECORD_HEADER.unpack_from(data, pos)[4]
            if expected == lsn or length > RECORD_PAYLOAD_BYTES_MAX:
                return self._decode_at(path, data, pos, expected)
            pos += frame_size_bytes(length)
            expected += 1
        raise WalCorruption(path, pos, lsn, "the segment ends before the durable LSN")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._closed = True

    def __enter__(self) -> WalReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WalError("WalReader is closed")

    @staticmethod
    def _check_header(path: Path, data: bytes, name_first_lsn: int) -> None:
        try:
            first_lsn = decode_segment_header(data[:SEGMENT_HEADER_BYTES])
        except FrameError as exc:
            raise WalCorruption(path, 0, name_first_lsn, exc.reason) from None
        if first_lsn != name_first_lsn:
            raise WalCorruption(
                path, 0, name_first_lsn, f"segment header says first LSN {first_lsn}"
            )

    def _decode_at(self, path: Path, data: bytes, pos: int, expected: int) -> WalRecord:
        try:
            lsn, record_type, timestamp_ns, length, frame_bytes = decode_frame(data, pos)
        except FrameError as exc:
            raise WalCorruption(path, pos, expected, exc.reason) from None
        if lsn != expected:
            raise WalCorruption(
                path, pos, expected, f"LSN gap: expected LSN {expected}, found {lsn}"
            )
        start = pos + _HEADER_BYTES
        end = pos + frame_bytes
        return WalRecord(
            lsn,
            record_type,
            timestamp_ns,
            bytes(data[start : start + length]),
            bytes(data[end - CHECKSUM_BYTES : end]),
            path,
            pos,
        )

    def _switch_to(self, path: Path, first_lsn: int) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            head = os.pread(fd, SEGMENT_HEADER_BYTES, 0)
            self._check_header(path, head, first_lsn)
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._path = path
        self._offset = SEGMENT_HEADER_BYTES
        self._buf = b""

    def _open_segment_for(self, lsn: int) -> None:
        segments = list_segments(self._dir)
        firsts = [first for first, _path in segments]
        index = bisect.bisect_right(firsts, lsn) - 1
        if index < 0:
            oldest = firsts[0] if firsts else None
            raise WalError(
                f"LSN {lsn} is no longer in the WAL {self._dir} (oldest segment starts at "
                f"{oldest}); it was deleted by retention"
            )
        first_lsn, path = segments[index]
        self._switch_to(path, first_lsn)
        # Skip to the requested LSN, validating every frame on the way.
        skip_lsn = first_lsn
        while skip_lsn < lsn:
            record = self._read_frame(expected=skip_lsn)
            if record is None:
                raise WalCorruption(
                    path, self._offset, skip_lsn, "segment ends before a durable LSN"
                )
            skip_lsn += 1

    def _advance_segment(self, watermark: int) -> None:
        for first_lsn, path in list_segments(self._dir):
            if first_lsn == self._next_lsn:
                self._switch_to(path, first_lsn)
                return
        raise WalCorruption(
            self._path or self._dir,
            self._offset,
            self._next_lsn,
            f"the segment ends here but WATERMARK says LSN {watermark} is durable and no "
            f"segment starts at LSN {self._next_lsn}",
        )

    def _fill(self, need_bytes: int) -> int:
        """Make ``need_bytes`` at the current offset available in the buffer if the file has
        them; returns how many are available."""
        rel = self._offset - self._buf_start
        if self._buf and rel >= 0 and len(self._buf) - rel >= need_bytes:
            return len(self._buf) - rel
        if self._fd is None:
            raise WalError("WalReader has no open segment")
        self._buf = os.pread(self._fd, max(_READ_CHUNK_BYTES, need_bytes), self._offset)
        self._buf_start = self._offset
        return len(self._buf)

    def _read_frame(self, expected: int | None = None) -> WalRecord | None:
        """Decode the frame at the current offset (it must be durable); None at segment end."""
        path = self._path if self._path is not None else self._dir
        lsn = self._next_lsn if expected is None else expected
        available = self._fill(_HEADER_BYTES)
        if available == 0:
            return None
        if available >= _HEADER_BYTES:
            length = RECORD_HEADER.unpack_from(self._buf, self._offset - self._buf_start)[4]
            if length <= RECORD_PAYLOAD_BYTES_MAX:
                self._fill(frame_size_bytes(length))
        rel = self._offset - self._buf_start
        try:
            found, record_type, timestamp_ns, length, frame_bytes = decode_frame(self._buf, rel)
        except FrameError as exc:
            raise WalCorruption(path, self._offset, lsn, exc.reason) from None
        if found != lsn:
            raise WalCorruption(
                path, self._offset, lsn, f"LSN gap: expected LSN {lsn}, found {found}"
            )
        start = rel + _HEADER_BYTES
        end = rel + frame_bytes
        record = WalRecord(
            lsn,
            record_type,
            timestamp_ns,
            self._buf[start : start + length],
            self._buf[end - CHECKSUM_BYTES : end],
            path,
            self._offset,
        )
        self._offset += frame_bytes
        return record
