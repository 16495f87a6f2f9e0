"""Configuration of a Wal and the observer protocol through which it reports metrics."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["SyncMode", "WalConfig", "WalObserver"]


class SyncMode(enum.Enum):
    """How a group is made durable."""

    FDATASYNC = "fdatasync"
    # NONE skips every fsync: acknowledged records can vanish on power loss. Benchmarks only;
    # opening a log in this mode logs a loud warning.
    NONE = "none"


class WalObserver(Protocol):
    """Metrics hooks; the writer service wires Prometheus to them. Called on the commit thread,
    so they must be quick; an exception raised by a hook is logged and otherwise ignored."""

    def on_commit(
        self, records: int, bytes_written: int, fsync_seconds: float, durable_lsn: int
    ) -> None: ...

    def on_slow_fsync(self, fsync_seconds: float) -> None: ...

    # Optional (looked up with getattr, so older observers keep working):
    # ``on_retention_ignored(consumers: list[str]) -> None`` is called after every retention
    # pass with the consumers whose stale checkpoint it ignored (empty when none).


@dataclass(frozen=True)
class WalConfig:
    """Everything a Wal needs; every queue and batch has a bound, named with its unit."""

    dir: Path
    segment_size_bytes: int = 64 * 1024 * 1024
    sync_mode: SyncMode = SyncMode.FDATASYNC
    queue_records_max: int = 100_000  # bound on records waiting for commit
    queue_bytes_max: int = 256 * 1024 * 1024  # bound on encoded bytes waiting for commit
    group_records_max: int = 20_000  # max records in one write + fdatasync
    group_bytes_max: int = 32 * 1024 * 1024  # max encoded bytes in one write + fdatasync
    retention: bool = False  # delete segments wholly below every consumer checkpoint
    # Retention ignores a consumer whose checkpoint is behind the log and has not been updated
    # for this long (a halted or abandoned replica must not pin the log forever); None: never.
    retention_consumer_stale_seconds: float | None = None
    fsync_warn_seconds: float = 0.5  # observer/log "slow fsync" threshold
    observer: WalObserver | None = None
    # asyncio appends of one event-loop turn are handed to the commit queue together: one
    # mutex, one wake-up of the commit thread per turn. False hands each append over on its
    # own (the older path, kept for A/B benchmarks).
    gather_async: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))
        limits = {
            "segment_size_bytes": self.segment_size_bytes,
            "queue_records_max": self.queue_records_max,
            "queue_bytes_max": self.queue_bytes_max,
            "group_records_max": self.group_records_max,
            "group_bytes_max": self.group_bytes_max,
        }
        for name, value in limits.items():
            if value < 1:
                raise ValueError(f"WalConfig.{name} must be >= 1, got {value}")
        stale = self.retention_consumer_stale_seconds
        if stale is not None and stale <= 0:
            raise ValueError(f"WalConfig.retention_consumer_stale_seconds must be > 0, got {stale}")
        if self.fsync_warn_seconds <= 0:
            raise ValueError("WalConfig.fsync_warn_seconds must be > 0")
