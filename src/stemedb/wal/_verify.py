"""Offline checks: ``verify_wal`` (the whole log, every checksum) and ``dump_wal``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.wal._decoder import Damage, FrameError, WalRecord, iter_records, scan_segment
from stemedb.wal._decoder import decode_segment_header as _decode_header
from stemedb.wal._errors import WalCorruption
from stemedb.wal._recovery import inspect_tail
from stemedb.wal._segment import list_segments
from stemedb.wal._watermark import WATERMARK_NAME, read_watermark

__all__ = ["VerifyReport", "dump_wal", "verify_wal"]


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``verify_wal``; ``ok`` is True when there is no error (warnings allowed)."""

    ok: bool
    errors: list[WalCorruption] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_lsn: int | None = None
    last_lsn: int | None = None
    watermark: int | None = None
    segments: list[Path] = field(default_factory=list)
    records: int = 0


def verify_wal(dir: Path) -> VerifyReport:
    """Check every segment header, frame, checksum, padding and LSN, and classify the tail.

    Read-only and lock-free, so it can run beside a live writer (a tail being written at that
    moment may then show up as a torn-tail warning).
    """
    directory = Path(dir)
    errors: list[WalCorruption] = []
    warnings: list[str] = []
    if not directory.is_dir():
        errors.append(WalCorruption(directory, 0, None, "not a directory"))
        return VerifyReport(False, errors)
    segments = list_segments(directory)
    state = read_watermark(directory)
    if not segments:
        if state.lsn:
            errors.append(
                WalCorruption(
                    directory / WATERMARK_NAME,
                    0,
                    state.lsn,
                    "no segment files, but WATERMARK names a durable LSN",
                )
            )
        else:
            warnings.append(f"no segment files in {directory}")
        return VerifyReport(not errors, errors, warnings, watermark=state.lsn)
    records = 0
    expected: int | None = None
    for first_lsn, path in segments[:-1]:
        scan = scan_segment(path, first_lsn)
        if expected is not None and first_lsn != expected:
            errors.append(
                WalCorruption(
                    path,
                    0,
                    expected,
                    f"LSN gap between segments: expected the segment to "
                    f"start at LSN {expected}, it starts at {first_lsn}",
                )
            )
        if scan.damaged and scan.damage_offset is not None:
            errors.append(
                WalCorruption(
                    path,
                    scan.damage_offset,
                    scan.damage_lsn,
                    f"{scan.damage_reason} (in a segment before the last)",
                )
            )
            expected = None
        else:
            expected = scan.last_lsn + 1
        records += scan.records
    last_first, last_path = segments[-1]
    if expected is not None and last_first != expected:
        errors.append(
            WalCorruption(
                last_path,
                0,
                expected,
                f"LSN gap between segments: expected the segment to start "
                f"at LSN {expected}, it starts at {last_first}",
            )
        )
    verdict = inspect_tail(directory, last_first, last_path)
    errors.extend(verdict.errors)
    warnings.extend(verdict.warnings)
    records += verdict.scan.records
    return VerifyReport(
        ok=not errors,
        errors=errors,
        warnings=warnings,
        first_lsn=segments[0][0],
        last_lsn=verdict.last_lsn,
        watermark=state.lsn,
        segments=[path for _first, path in segments],
        records=records,
    )


def dump_wal(dir: Path, from_lsn: int = 1) -> Iterator[WalRecord]:
    """Yield every whole valid record from ``from_lsn`` on, including a kept tail past the
    watermark; stops at a torn tail, raises WalCorruption on damage anywhere else."""
    directory = Path(dir)
    segments = list_segments(directory)
    state = read_watermark(directory)
    expected: int | None = None
    for index, (first_lsn, path) in enumerate(segments):
        is_last = index == len(segments) - 1
        next_first = None if is_last else segments[index + 1][0]
        if next_first is not None and next_first <= from_lsn:
            expected = None  # skipped without reading; the next segment's name is trusted
            continue
        data = path.read_bytes()
        try:
            header_lsn = _decode_header(data)
        except FrameError as exc:
            raise WalCorruption(path, 0, first_lsn, exc.reason) from None
        if header_lsn != first_lsn or (expected is not None and first_lsn != expected):
            raise WalCorruption(
                path,
                0,
                expected or first_lsn,
                "segment header or name does not continue the LSN sequence",
            )
        expected = first_lsn
        for item in iter_records(path, data, first_lsn, from_lsn):
            if isinstance(item, Damage):
                watermark = state.lsn if state.lsn is not None else first_lsn - 1
                if not is_last or item.lsn <= watermark:
                    raise WalCorruption(path, item.offset, item.lsn, item.reason)
                return  # a torn tail past the watermark: not records, nothing more to show
            expected = item.lsn + 1
            yield item
