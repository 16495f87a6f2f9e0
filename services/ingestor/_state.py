"""State shared between the apply thread (the only writer) and the event loop (readers).

Each field is replaced by one assignment, which is atomic under the GIL; readers never need
a consistent view of two fields at once. ``applied_lsn`` is published only after the
WriteBatch that holds it has been written, so a read that samples ``applied_lsn`` first and
then reads RocksDB sees at least everything up to that LSN.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ApplyState", "HaltInfo"]


@dataclass(frozen=True)
class HaltInfo:
    """Why the apply loop stopped for good (until an operator intervenes and restarts it)."""

    cause: str  # "corruption", "undecodable", "diverged", "wal", "error"
    reason: str  # full human-readable reason
    lsn: int | None = None  # the record that could not be applied, when known
    file: str = ""
    offset: int | None = None

    def message(self, applied_lsn: int) -> str:
        return f"apply loop halted at applied LSN {applied_lsn}: {self.reason}"


class ApplyState:
    """Progress of the apply loop."""

    def __init__(self, applied_lsn: int, applied_checksum: bytes) -> None:
        self.applied_lsn = applied_lsn
        self.applied_checksum = applied_checksum
        self.watermark_lsn = 0
        # WAL timestamp of the oldest durable record not yet applied (None when caught up).
        self.oldest_unapplied_ns: int | None = None
        self.halt: HaltInfo | None = None
        self.ingesting = False  # the loop tails the WAL (it exists and the checkpoint verified)
        self.ready = False  # ingesting, not halted, and the lag within --ready-lag-records-max
