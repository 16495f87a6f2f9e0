"""Helpers imported by the WAL tests (tests/wal is on sys.path under pytest's default mode)."""

from __future__ import annotations

from pathlib import Path

from stemedb.wal import WalReader, WalRecord


def read_all(directory: Path, from_lsn: int = 1) -> list[WalRecord]:
    """Every record up to the watermark, via WalReader."""
    records: list[WalRecord] = []
    with WalReader(directory, from_lsn) as reader:
        while batch := reader.read_available():
            records.extend(batch)
    return records


def payload_for(lsn: int, size: int = 20) -> bytes:
    return (f"record-{lsn}-".encode() * size)[:size]
