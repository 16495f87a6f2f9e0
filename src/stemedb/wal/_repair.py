"""``repair_wal``: the operator's explicit way out of real corruption.

It gives up every LSN from ``accept_loss_from`` on, and says so line by line. Nothing is
destroyed: the affected segments are copied (or moved) aside as ``<segment>.broken.<ns>``
before anything is truncated.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from stemedb.wal._consumers import read_consumer_checkpoints
from stemedb.wal._decoder import SegmentCursor, WalRecord, lsn_gap_reason, scan_segment
from stemedb.wal._errors import WalCorruption, WalError
from stemedb.wal._segment import acquire_lock, create_segment, fsync_dir, list_segments
from stemedb.wal._watermark import read_watermark, write_watermark_atomic

__all__ = ["repair_wal"]


def repair_wal(dir: Path, accept_loss_from: int) -> list[str]:
    """Truncate the log so that it ends at ``accept_loss_from - 1``; holds LOCK meanwhile."""
    directory = Path(dir)
    if accept_loss_from < 1:
        raise ValueError("--accept-loss-from must be >= 1")
    lock_fd = acquire_lock(directory)
    try:
        return _repair_locked(directory, accept_loss_from)
    finally:
        os.close(lock_fd)


def _repair_locked(directory: Path, loss_from: int) -> list[str]:
    segments = list_segments(directory)
    if not segments:
        raise WalError(f"no segment files in {directory}: nothing to repair")
    if segments[0][0] > loss_from:
        raise WalError(f"LSN {loss_from} is below the oldest segment ({segments[0][0]})")
    watermark = read_watermark(directory).lsn
    stamp = time.time_ns()
    lines: list[str] = []
    cut, drop_from = _plan(segments, loss_from)
    highest_given_up = loss_from - 1
    if cut is not None:
        path, offset, seg_last = cut
        lines += _truncate_aside(path, offset, stamp)
        highest_given_up = max(highest_given_up, seg_last)
    for first_lsn, path in segments[drop_from:]:
        highest_given_up = max(highest_given_up, scan_segment(path, first_lsn).last_lsn)
        aside = path.with_name(f"{path.name}.broken.{stamp}")
        os.rename(path, aside)
        lines.append(f"moved {path.name} aside to {aside.name} (removed from the log)")
    if drop_from == 0:
        # Everything was given up: keep an empty segment so the next LSN is still loss_from.
        create_segment(directory, loss_from, sync=True)
        lines.append(f"created empty segment starting at LSN {loss_from}")
    fsync_dir(directory)
    write_watermark_atomic(directory, loss_from - 1, sync=True)
    if watermark is not None:
        highest_given_up = max(highest_given_up, watermark)
    if highest_given_up >= loss_from:
        count = highest_given_up - loss_from + 1
        lines.insert(0, f"gave up LSNs {loss_from}..{highest_given_up} ({count} records)")
    else:
        lines.insert(0, f"gave up no whole record: only damaged bytes after LSN {loss_from - 1}")
    lines.append(f"WATERMARK rewritten to LSN {loss_from - 1}")
    return lines + _consumer_warnings(directory, loss_from)


def _plan(
    segments: list[tuple[int, Path]], loss_from: int
) -> tuple[tuple[Path, int, int] | None, int]:
    """Where to cut: ``((segment, offset, highest valid LSN in it) or None, index of the first
    segment to drop whole)``; raises when damage or a gap lies below ``loss_from``."""
    expected: int | None = None
    drop_from = len(segments)
    for index, (first_lsn, path) in enumerate(segments):
        if first_lsn >= loss_from:
            drop_from = index
            break
        if expected is not None and first_lsn != expected:
            raise WalCorruption(
                path,
                0,
                expected,
                f"{lsn_gap_reason(expected, first_lsn, ' between segments')} below "
                f"--accept-loss-from {loss_from}; choose --accept-loss-from {expected} or lower",
            )
        scan = scan_segment(path, first_lsn)
        if scan.last_lsn >= loss_from - 1:
            offset = scan.end_offset
            if scan.last_lsn >= loss_from:
                offset = _offset_of(path, first_lsn, loss_from)
            return (path, offset, scan.last_lsn), index + 1
        if scan.damaged:
            raise WalCorruption(
                path,
                scan.damage_offset or 0,
                scan.damage_lsn,
                f"{scan.damage_reason}; this is below --accept-loss-from {loss_from}: choose "
                f"--accept-loss-from {scan.damage_lsn} or lower",
            )
        expected = scan.last_lsn + 1
    log_end = (expected or 1) - 1
    if drop_from > 0 and log_end < loss_from - 1:
        raise WalError(
            f"the log's valid records end at LSN {log_end}; --accept-loss-from must be "
            f"at most {log_end + 1}"
        )
    return None, drop_from


def _truncate_aside(path: Path, offset: int, stamp: int) -> list[str]:
    """Copy ``path`` aside durably, then cut it at ``offset``; the lines that say so."""
    size = path.stat().st_size
    if offset >= size:
        return []
    aside = path.with_name(f"{path.name}.broken.{stamp}")
    shutil.copy2(path, aside)
    _fsync_file(aside)
    fsync_dir(path.parent)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return [
        f"copied {path.name} to {aside.name}",
        f"truncated {path.name} at offset {offset} ({size - offset} bytes cut)",
    ]


def _consumer_warnings(directory: Path, loss_from: int) -> list[str]:
    try:
        checkpoints = read_consumer_checkpoints(directory)
    except ValueError as exc:
        return [f"warning: {exc}"]
    return [
        f"warning: consumer {cp.name} has applied up to LSN {cp.lsn}; it will detect "
        f"that the log diverged and halt"
        for cp in checkpoints.values()
        if cp.lsn >= loss_from
    ]


def _offset_of(path: Path, first_lsn: int, lsn: int) -> int:
    """The offset of the whole valid frame ``lsn`` in the segment ``path``."""
    cursor = SegmentCursor(path, first_lsn, data=path.read_bytes())
    while cursor.next_lsn < lsn and isinstance(cursor.validate(), int):
        pass
    offset = cursor.offset
    if cursor.next_lsn == lsn and isinstance(cursor.next(), WalRecord):
        return offset
    raise WalError(f"LSN {lsn} not found in {path}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
