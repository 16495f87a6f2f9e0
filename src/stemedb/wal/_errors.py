"""Errors raised by the write-ahead log.

The hierarchy (under ``stemedb.errors.StemeError``, like every error of the package)::

    WalError                 base of every error this package raises
    ├── WalCorruption        acknowledged data is damaged, missing or out of order
    ├── WalLocked            another process holds the directory's LOCK
    ├── WalOverloaded        the commit queue stayed full past the caller's deadline
    ├── WalDiskFull          ENOSPC / EDQUOT while writing or syncing a group
    ├── WalClosed            the log was closed (or is closing) before the append was queued
    ├── WalSequenceError     a group about to be written does not continue the log's LSNs (a bug)
    └── WalTruncated         the LSN a reader needs was deleted by retention

Foreign errors (``OSError`` from the storage path) are translated into these in one place, the
committer in ``_log.py``; everything else raises them directly.
"""

from __future__ import annotations

from pathlib import Path

from stemedb.errors import StemeError

__all__ = [
    "WalClosed",
    "WalCorruption",
    "WalDiskFull",
    "WalError",
    "WalLocked",
    "WalOverloaded",
    "WalSequenceError",
    "WalTruncated",
]


class WalError(StemeError):
    """Base class of every error raised by ``stemedb.wal``."""


class WalCorruption(WalError):
    """Damage to data the log had acknowledged, or a log that is not contiguous."""

    def __init__(self, file: Path, offset: int, lsn: int | None, reason: str) -> None:
        self.file = Path(file)
        self.offset = offset
        self.lsn = lsn
        self.reason = reason
        lsn_text = "unknown" if lsn is None else str(lsn)
        super().__init__(
            f"WAL corruption: file {self.file}, offset {offset}, lsn {lsn_text}: {reason}"
        )

    def __reduce__(self) -> tuple[type[WalCorruption], tuple[Path, int, int | None, str]]:
        # Keep the four attributes when the error crosses a process boundary (pickle).
        return (type(self), (self.file, self.offset, self.lsn, self.reason))


class WalLocked(WalError):
    """Another writer holds the exclusive LOCK on the WAL directory."""


class WalOverloaded(WalError):
    """The bounded commit queue stayed full until the caller's deadline."""


class WalDiskFull(WalError):
    """The disk (or quota) ran out of space while writing a group; nothing of it remains."""


class WalClosed(WalError):
    """The log is closed; no further appends are accepted."""


class WalSequenceError(WalError):
    """A group about to be committed does not continue the log's LSNs: nothing of it is written.

    Only a bug can cause it (e.g. queued tickets renumbered wrongly after a disk-full group was
    cut); the log stops rather than write a gap that recovery would later call corruption.
    """


class WalTruncated(WalError):
    """The LSN a reader asked for is below the oldest segment: retention deleted it.

    ``first_available_lsn`` is the oldest LSN the log still holds (None when it holds none).
    """

    def __init__(self, directory: Path, lsn: int, first_available_lsn: int | None) -> None:
        self.directory = Path(directory)
        self.lsn = lsn
        self.first_available_lsn = first_available_lsn
        oldest = "none" if first_available_lsn is None else str(first_available_lsn)
        super().__init__(
            f"LSN {lsn} is no longer in the WAL {directory}: retention deleted it (the first "
            f"available LSN is {oldest}). This replica cannot catch up from the log; rebuild "
            f"it from scratch (empty data directory) as described in docs/operations.md, "
            f"'A replica whose WAL segments are gone'"
        )

    def __reduce__(self) -> tuple[type[WalTruncated], tuple[Path, int, int | None]]:
        return (type(self), (self.directory, self.lsn, self.first_available_lsn))
