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
from stemedb.wal._decoder import WalRecord, iter_records, scan_segment
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
    expected: int | None = None
    cut: tuple[Path, int, int] | None = None  # (segment, offset, highest valid LSN in it)
    drop_from = len(segments)
    for index, (first_lsn, path) in enumerate(segments):
        if first_lsn >= loss_from:
            drop_from = index
            break
        scan = scan_segment(path, first_lsn)
        if expected is not None and first_lsn != expected:
            raise WalCorruption(
                path,
                0,
                expected,
                f"LSN gap below --accept-loss-from {loss_from}; choose "
                f"--accept-loss-from {expected} or lower",
            )
        if scan.last_lsn >= loss_from - 1:
            offset = scan.end_offset
            if scan.last_lsn >= loss_from:
                offset = _offset_of(path, first_lsn, loss_from)
            cut = (path, offset, scan.last_lsn)
            drop_from = index + 1
            break
        if scan.damaged:
            raise WalCorruption(
                path,
                scan.damage_offset or 0,
                scan.damage_lsn,
                f"{scan.damage_reason}; this is below --accept-loss-from "
                f"{loss_from}: choose --accept-loss-from {scan.damage_lsn} "
                f"or lower",
            )
        expected = scan.last_lsn + 1
    if cut is None and drop_from > 0:
        log_end = (expected or 1) - 1
        if log_end < loss_from - 1:
            raise WalError(
                f"the log's valid records end at LSN {log_end}; --accept-loss-from must be "
                f"at most {log_end + 1}"
            )
    highest_given_up = loss_from - 1
    if cut is not None:
        path, offset, seg_last = cut
        size = path.stat().st_size
        if offset < size:
            aside = path.with_name(f"{path.name}.broken.{stamp}")
            shutil.copy2(path, aside)
            _fsync_file(aside)
            fsync_dir(directory)
            fd = os.open(path, os.O_WRONLY)
            try:
                os.ftruncate(fd, offset)
                os.fsync(fd)
            finally:
                os.close(fd)
            lines.append(f"copied {path.name} to {aside.name}")
            lines.append(f"truncated {path.name} at offset {offset} ({size - offset} bytes cut)")
        highest_given_up = max(highest_given_up, seg_last)
    for first_lsn, path in segments[drop_from:]:
        scan = scan_segment(path, first_lsn)
        highest_given_up = max(highest_given_up, scan.last_lsn)
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
    try:
        checkpoints = read_consumer_checkpoints(directory)
    except ValueError as exc:
        lines.append(f"warning: {exc}")
        checkpoints = {}
    for cp in checkpoints.values():
        if cp.lsn >= loss_from:
            lines.append(
                f"warning: consumer {cp.name} has applied up to LSN {cp.lsn}; it will detect "
                f"that the log diverged and halt"
            )
    return lines


def _offset_of(path: Path, first_lsn: int, lsn: int) -> int:
    for item in iter_records(path, path.read_bytes(), first_lsn, lsn):
        if isinstance(item, WalRecord) and item.lsn == lsn:
            return item.offset
        break
    raise WalError(f"LSN {lsn} not found in {path}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
