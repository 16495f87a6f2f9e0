"""Deciding what the tail of the log is: torn write (cut it) or corruption (refuse to start).

The rule (DESIGN section 4): bytes past the durable watermark that do not form whole, valid
records are a torn write; damage at or below the watermark, damage anywhere but the last
segment, and gaps in LSNs are corruption. Whole valid records past the watermark were written but
their fsync was never confirmed; they are kept, fsynced, and the watermark advanced over them
(docs/wal-format.md explains why that is safe).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.wal._decoder import SegmentCursor, SegmentScan, scan_segment, walk_segment_chain
from stemedb.wal._errors import WalCorruption
from stemedb.wal._segment import (
    create_segment,
    fsync_dir,
    list_segments,
    read_segment_first_lsn,
    remove_stale_temporaries,
)
from stemedb.wal._watermark import (
    WATERMARK_MISSING,
    WATERMARK_NAME,
    publish_watermark_durably,
    read_watermark,
)

__all__ = ["Recovered", "TailVerdict", "inspect_tail", "recover"]

_log = logging.getLogger("stemedb.wal")


@dataclass
class TailVerdict:
    """The classification of the last segment against the watermark."""

    scan: SegmentScan
    watermark_lsn: int | None
    errors: list[WalCorruption] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    torn_offset: int | None = None  # where the torn bytes start, when there are any

    @property
    def last_lsn(self) -> int:
        return self.scan.last_lsn


def inspect_tail(directory: Path, last_first_lsn: int, last_path: Path) -> TailVerdict:
    """Scan the last segment and classify its end; never modifies anything."""
    state = read_watermark(directory)
    scan = scan_segment(last_path, last_first_lsn)
    verdict = TailVerdict(scan, state.lsn)
    if state.lsn is None:
        # Without a trustworthy watermark nothing in the last segment is known to be durable, so
        # the whole tail is treated as possibly torn. Earlier segments were fdatasynced before
        # the roll that created this one, so they stay acknowledged data.
        effective_lsn = last_first_lsn - 1
        verdict.warnings.append(
            f"{state.problem}; the whole tail of {last_path.name} is treated as possibly torn"
        )
    else:
        effective_lsn = state.lsn
    if scan.damaged and scan.damage_offset is not None and scan.damage_lsn is not None:
        if scan.damage_offset == 0 or scan.damage_lsn <= effective_lsn:
            reason = scan.damage_reason or "damaged"
            if scan.damage_offset != 0:
                reason += f" (at or below the durable watermark {effective_lsn})"
            verdict.errors.append(
                WalCorruption(last_path, scan.damage_offset, scan.damage_lsn, reason)
            )
            return verdict
        verdict.torn_offset = scan.damage_offset
        cut_bytes = scan.file_bytes - scan.damage_offset
        verdict.warnings.append(
            f"torn tail in {last_path.name}: {cut_bytes} bytes from offset "
            f"{scan.damage_offset} (from LSN {scan.damage_lsn}, past the durable watermark "
            f"{effective_lsn}) do not form a whole valid record ({scan.damage_reason}); "
            f"the next open copies them aside and truncates them"
        )
    if state.lsn is not None and state.lsn > scan.last_lsn:
        verdict.errors.append(
            WalCorruption(
                directory / WATERMARK_NAME,
                0,
                scan.last_lsn + 1,
                f"WATERMARK names durable LSN {state.lsn} but the log ends at LSN "
                f"{scan.last_lsn} ({last_path.name}, offset {scan.end_offset}): acknowledged "
                f"records are missing",
            )
        )
    elif state.lsn is not None and state.lsn < scan.last_lsn:
        verdict.warnings.append(
            f"WATERMARK ({state.lsn}) is behind the last whole record ({scan.last_lsn}): "
            f"LSNs {state.lsn + 1}..{scan.last_lsn} were written but their fsync was not "
            f"confirmed; the next open keeps them and advances the watermark"
        )
    return verdict


@dataclass(frozen=True)
class Recovered:
    """Where appending continues after a successful recovery."""

    segment_first_lsn: int
    segment_path: Path
    end_offset: int
    last_lsn: int


def check_segment_headers(segments: list[tuple[int, Path]]) -> None:
    """Every segment's header must match its name (the scan of the last one repeats this), and
    every segment but the last must end with a whole record whose LSN is one below the next
    segment's first: a truncated middle segment or a missing segment is corruption, and the
    writer must refuse to start on it rather than append after a hole.

    Only frame headers are walked here (no checksums, which `verify_wal` and every reader check),
    and the last frame of each segment is fully decoded: opening a 1 GiB log stays fast.
    """
    for index, (first_lsn, path) in enumerate(segments[:-1]):
        read_segment_first_lsn(path, first_lsn)
        next_first = segments[index + 1][0]
        last_lsn = walk_segment_chain(path, first_lsn)
        if last_lsn != next_first - 1:
            raise WalCorruption(
                path,
                path.stat().st_size,
                last_lsn + 1,
                f"segment ends at LSN {last_lsn} but the next segment starts at LSN {next_first}:"
                f" LSNs {last_lsn + 1}..{next_first - 1} are missing",
            )


def recover(directory: Path, sync: bool) -> Recovered:
    """Bring the log to a clean end (the caller holds LOCK); raises WalCorruption."""
    for path in remove_stale_temporaries(directory):
        _log.info("removed leftover temporary file %s", path)
    segments = list_segments(directory)
    if not segments:
        state = read_watermark(directory)
        if state.lsn:
            raise WalCorruption(
                directory / WATERMARK_NAME,
                0,
                state.lsn,
                f"no segment files, but WATERMARK names durable LSN {state.lsn}",
            )
        path = create_segment(directory, 1, sync)
        segments = [(1, path)]
        if state.lsn == 0 or state.problem == WATERMARK_MISSING:
            # A log created now has no watermark yet: that is not a log that lost its watermark,
            # so it gets one (LSN 0) before the tail is inspected. An unreadable WATERMARK is
            # left for inspect_tail to warn about.
            publish_watermark_durably(directory, 0, sync)
            _log.info("created a new WAL in %s", directory)
    check_segment_headers(segments)
    last_first, last_path = segments[-1]
    verdict = inspect_tail(directory, last_first, last_path)
    if verdict.errors:
        raise verdict.errors[0]
    if verdict.torn_offset is not None:
        _cut_torn_tail(last_path, verdict.torn_offset, verdict.scan.file_bytes, sync)
    for warning in verdict.warnings:
        _log.warning("WAL recovery: %s", warning)
    if sync:
        _make_tail_durable(last_path, last_first, verdict)
    publish_watermark_durably(directory, verdict.last_lsn, sync)
    return Recovered(last_first, last_path, verdict.scan.end_offset, verdict.last_lsn)


def _make_tail_durable(path: Path, first_lsn: int, verdict: TailVerdict) -> None:
    """Make the records past the old watermark durable before WATERMARK names them.

    Their bytes are never trusted as they read back: after a failed fdatasync Linux marks the
    pages clean and may keep serving their contents from the page cache, so a plain fdatasync
    here would succeed without writing anything. They are written again (which dirties the
    pages) and then synced; if the disk still fails, the open fails.
    """
    kept_from_lsn = (verdict.watermark_lsn or first_lsn - 1) + 1
    fd = os.open(path, os.O_RDWR)
    try:
        if verdict.last_lsn >= kept_from_lsn:
            start = _offset_of_lsn(path, first_lsn, kept_from_lsn)
            tail = os.pread(fd, verdict.scan.end_offset - start, start)
            if len(tail) != verdict.scan.end_offset - start:
                raise WalCorruption(path, start, kept_from_lsn, "the tail changed during recovery")
            os.pwrite(fd, tail, start)
        os.fdatasync(fd)
    finally:
        os.close(fd)


def _offset_of_lsn(path: Path, first_lsn: int, lsn: int) -> int:
    """The offset of frame ``lsn`` of a segment already scanned whole (header hops only)."""
    with path.open("rb") as fh:
        cursor = SegmentCursor(path, first_lsn, data=fh.read())
    while cursor.next_lsn < lsn:
        item = cursor.skip()
        if not isinstance(item, int):
            raise WalCorruption(
                path, cursor.offset, cursor.next_lsn, "the tail changed during recovery"
            )
    return cursor.offset


def _cut_torn_tail(path: Path, offset: int, file_bytes: int, sync: bool) -> Path:
    """Copy ``path[offset:]`` aside (``<segment>.torn.<ns>``) for forensics, then truncate."""
    aside = path.with_name(f"{path.name}.torn.{time.time_ns()}")
    with path.open("rb") as src, aside.open("wb") as dst:
        src.seek(offset)
        shutil.copyfileobj(src, dst)
        dst.flush()
        if sync:
            os.fsync(dst.fileno())
    if sync:
        fsync_dir(path.parent)
    # The copy is durable before the cut, so a crash in between loses nothing.
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, offset)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    _log.warning(
        "WAL recovery: cut a torn tail of %d bytes at offset %d of %s; copied to %s",
        file_bytes - offset,
        offset,
        path,
        aside,
    )
    return aside
