"""Offline checks: ``verify_wal`` (the whole log, every checksum) and ``dump_wal``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.wal._decoder import (
    Damage,
    WalRecord,
    check_segment_header,
    iter_records,
    lsn_gap_reason,
    scan_segment,
)
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
    if not directory.is_dir():
        return VerifyReport(False, [WalCorruption(directory, 0, None, "not a directory")])
    segments = list_segments(directory)
    state = read_watermark(directory)
    if not segments:
        return _verify_empty(directory, state.lsn)
    errors: list[WalCorruption] = []
    records, expected = _verify_closed_segments(segments[:-1], errors)
    last_first, last_path = segments[-1]
    gap = _segment_gap(last_path, expected, last_first)
    if gap is not None:
        errors.append(gap)
    verdict = inspect_tail(directory, last_first, last_path)
    errors.extend(verdict.errors)
    return VerifyReport(
        ok=not errors,
        errors=errors,
        warnings=list(verdict.warnings),
        first_lsn=segments[0][0],
        last_lsn=verdict.last_lsn,
        watermark=state.lsn,
        segments=[path for _first, path in segments],
        records=records + verdict.scan.records,
    )


def _verify_empty(directory: Path, watermark: int | None) -> VerifyReport:
    if watermark:
        error = WalCorruption(
            directory / WATERMARK_NAME,
            0,
            watermark,
            "no segment files, but WATERMARK names a durable LSN",
        )
        return VerifyReport(False, [error], watermark=watermark)
    return VerifyReport(True, [], [f"no segment files in {directory}"], watermark=watermark)


def _verify_closed_segments(
    segments: list[tuple[int, Path]], errors: list[WalCorruption]
) -> tuple[int, int | None]:
    """Scan every segment but the last in full; returns (records, the LSN the next segment
    must start at, None when unknown after damage) and appends what is wrong to ``errors``."""
    records = 0
    expected: int | None = None
    for first_lsn, path in segments:
        gap = _segment_gap(path, expected, first_lsn)
        if gap is not None:
            errors.append(gap)
        scan = scan_segment(path, first_lsn)
        records += scan.records
        if scan.damaged and scan.damage_offset is not None:
            reason = f"{scan.damage_reason} (in a segment before the last)"
            errors.append(WalCorruption(path, scan.damage_offset, scan.damage_lsn, reason))
            expected = None
        else:
            expected = scan.last_lsn + 1
    return records, expected


def _segment_gap(path: Path, expected: int | None, first_lsn: int) -> WalCorruption | None:
    """The error when a segment does not start where the previous one ended."""
    if expected is None or first_lsn == expected:
        return None
    return WalCorruption(
        path, 0, expected, lsn_gap_reason(expected, first_lsn, " between segments")
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
        damage = check_segment_header(path, data, first_lsn)
        if damage is not None:
            raise damage.error()
        gap = _segment_gap(path, expected, first_lsn)
        if gap is not None:
            raise gap
        expected = first_lsn
        for item in iter_records(path, data, first_lsn, from_lsn):
            if isinstance(item, Damage):
                watermark = state.lsn if state.lsn is not None else first_lsn - 1
                if not is_last or item.lsn <= watermark:
                    raise item.error()
                return  # a torn tail past the watermark: not records, nothing more to show
            expected = item.lsn + 1
            yield item
