"""WalReader: tail the log in LSN order, never past WATERMARK, across segment roll-overs.

Works on a network volume: progress is discovered by polling WATERMARK (re-opened by path on
every poll, because the writer replaces the file at open, with plain os calls; bytes equal to
the last valid ones are not checksummed again) with an adaptive interval. Frames are
decoded by the one ``SegmentCursor`` (``_decoder.py``), which keeps its read buffer across calls.
The reader owns the WAL's file names: callers ask it (``has_watermark``,
``first_available_lsn``) instead of looking for files themselves.
"""

from __future__ import annotations

import bisect
import os
import time
from pathlib import Path
from typing import TypeVar

from stemedb.wal._decoder import Damage, SegmentCursor, WalRecord, check_segment_header
from stemedb.wal._encoder import SEGMENT_HEADER_BYTES
from stemedb.wal._errors import WalCorruption, WalError, WalTruncated
from stemedb.wal._segment import list_segments
from stemedb.wal._watermark import WATERMARK_NAME, read_watermark_bytes, watermark_state_of

__all__ = ["WalReader"]

_T = TypeVar("_T")
_POLL_MIN_SECONDS = 0.001
_POLL_MAX_SECONDS = 0.05
_WATERMARK_READ_ATTEMPTS = 5


class WalReader:
    """Reads records in order from ``from_lsn``, only up to the durable watermark."""

    def __init__(self, dir: Path, from_lsn: int = 1) -> None:
        if from_lsn < 1:
            raise ValueError(f"from_lsn must be >= 1, got {from_lsn}")
        self._dir = Path(dir)
        self._next_lsn = from_lsn
        self._fd: int | None = None
        self._cursor: SegmentCursor | None = None
        self._known_watermark = 0  # the highest WATERMARK value read so far
        self._watermark_path = os.path.join(self._dir, WATERMARK_NAME)
        # The last valid WATERMARK bytes and their LSN: the same bytes again (an idle poll)
        # need no checksum.
        self._watermark_seen: tuple[bytes, int] | None = None
        # Damage met after intact records were returned: raised by the next read_available.
        self._pending: WalError | None = None
        self._closed = False

    @property
    def next_lsn(self) -> int:
        """The LSN the next ``read_available`` returns first."""
        return self._next_lsn

    def has_watermark(self) -> bool:
        """True once a writer has created WATERMARK in the directory."""
        return (self._dir / WATERMARK_NAME).exists()

    def first_available_lsn(self) -> int | None:
        """The oldest LSN the log still holds (the first segment's), None without segments.

        Below it, records were deleted by retention."""
        segments = list_segments(self._dir)
        return segments[0][0] if segments else None

    def watermark(self) -> int:
        """The durable LSN named by WATERMARK (0 before any writer created it)."""
        problem = ""
        for attempt in range(_WATERMARK_READ_ATTEMPTS):
            data = read_watermark_bytes(self._watermark_path)
            if data is None:
                return 0
            seen = self._watermark_seen
            if seen is not None and data == seen[0]:
                return seen[1]
            state = watermark_state_of(data)
            if state.lsn is not None:
                self._watermark_seen = (data, state.lsn)
                self._note_watermark(state.lsn)
                return state.lsn
            # The writer overwrites the 32 bytes in place; a read racing that write can see a
            # mix, which the checksum rejects. Retry briefly before calling it damage.
            problem = state.problem or "invalid"
            time.sleep(0.001 * (attempt + 1))
        raise WalCorruption(self._dir / WATERMARK_NAME, 0, None, problem)

    def read_available(self, max_records: int = 10_000) -> list[WalRecord]:
        """The next records in order, none beyond the watermark; [] if caught up.

        WATERMARK is read at most once per call, and not at all while records below the last
        value read remain. When damage (or a missing segment) ends a read, the intact records
        before it are returned and the next call raises the error.
        """
        self._check_open()
        if self._pending is not None:
            raise self._pending
        refreshed = False
        records: list[WalRecord] = []
        while len(records) < max_records:
            if self._next_lsn > self._known_watermark:
                if refreshed:
                    break
                self.watermark()
                refreshed = True
                if self._next_lsn > self._known_watermark:
                    break
            try:
                self._read_into(records, max_records)
            except WalError as exc:
                if not records:
                    raise
                self._pending = exc
                break
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
        index = bisect.bisect_right([first for first, _path in segments], lsn) - 1
        if index < 0:
            return None
        first_lsn, path = segments[index]
        data = path.read_bytes()
        damage = check_segment_header(path, data, first_lsn)
        if damage is not None:
            raise damage.error()
        cursor = SegmentCursor(path, first_lsn, data=data)
        # Hop over earlier frames by their headers only (fast), then validate the one asked for.
        while cursor.next_lsn < lsn:
            _intact(cursor, cursor.skip(), "the segment ends before the durable LSN")
        return _intact(cursor, cursor.next(), "the segment ends before the durable LSN")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._cursor = None
        self._closed = True

    def __enter__(self) -> WalReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise WalError("WalReader is closed")

    def _note_watermark(self, lsn: int) -> None:
        if lsn > self._known_watermark:
            self._known_watermark = lsn
            if self._cursor is not None:
                self._cursor.trust_up_to(lsn)

    def _read_into(self, records: list[WalRecord], max_records: int) -> None:
        """Append durable records of the current segment; step to the next one at its end."""
        cursor = self._cursor
        if cursor is None:
            cursor = self._open_segment_for(self._next_lsn)
        batch, damage = cursor.read(max_records - len(records), self._known_watermark)
        records.extend(batch)
        self._next_lsn = cursor.next_lsn
        if damage is not None:
            raise damage.error()
        if len(records) < max_records and self._next_lsn <= self._known_watermark:
            self._advance_segment()

    def _switch_to(self, path: Path, first_lsn: int) -> SegmentCursor:
        fd = os.open(path, os.O_RDONLY)
        try:
            damage = check_segment_header(path, os.pread(fd, SEGMENT_HEADER_BYTES, 0), first_lsn)
            if damage is not None:
                raise damage.error()
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._cursor = SegmentCursor(path, first_lsn, fd=fd)
        self._cursor.trust_up_to(self._known_watermark)
        return self._cursor

    def _open_segment_for(self, lsn: int) -> SegmentCursor:
        segments = list_segments(self._dir)
        firsts = [first for first, _path in segments]
        index = bisect.bisect_right(firsts, lsn) - 1
        if index < 0:
            raise WalTruncated(self._dir, lsn, firsts[0] if firsts else None)
        first_lsn, path = segments[index]
        cursor = self._switch_to(path, first_lsn)
        # Skip to the requested LSN, validating every frame on the way.
        while cursor.next_lsn < lsn:
            _intact(cursor, cursor.validate(), "segment ends before a durable LSN")
        return cursor

    def _advance_segment(self) -> None:
        for first_lsn, path in list_segments(self._dir):
            if first_lsn == self._next_lsn:
                self._switch_to(path, first_lsn)
                return
        raise WalCorruption(
            self._cursor.path if self._cursor is not None else self._dir,
            self._cursor.offset if self._cursor is not None else 0,
            self._next_lsn,
            f"the segment ends here but WATERMARK says LSN {self._known_watermark} is durable "
            f"and no segment starts at LSN {self._next_lsn}",
        )


def _intact(cursor: SegmentCursor, item: _T | Damage | None, reason: str) -> _T:
    """``item`` when the cursor read a frame; raise the WalCorruption for damage, or for an end
    of segment (``reason``) where a durable frame must be."""
    if isinstance(item, Damage):
        raise item.error()
    if item is None:
        raise WalCorruption(cursor.path, cursor.offset, cursor.next_lsn, reason)
    return item
