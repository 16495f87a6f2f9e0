"""Retention and stale consumers: a consumer whose checkpoint is behind the log and has not
been updated for retention_consumer_stale_seconds no longer pins the log."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from wal_testlib import payload_for

from stemedb.wal import ConsumerCheckpoint, Wal, WalConfig, write_consumer_checkpoint
from stemedb.wal._segment import list_segments

HOUR_NS = 3600 * 10**9


class _Observer:
    def __init__(self) -> None:
        self.ignored: list[list[str]] = []

    def on_commit(
        self, records: int, bytes_written: int, fsync_seconds: float, durable_lsn: int
    ) -> None:
        pass

    def on_slow_fsync(self, fsync_seconds: float) -> None:
        pass

    def on_retention_ignored(self, consumers: list[str]) -> None:
        self.ignored.append(consumers)


def _log_with(wal_dir: Path, checkpoints: list[ConsumerCheckpoint]) -> None:
    with Wal.open(WalConfig(dir=wal_dir, segment_size_bytes=1024)) as wal:
        for lsn in range(1, 101):
            wal.append([(1, payload_for(lsn, 50))])
    for cp in checkpoints:
        write_consumer_checkpoint(wal_dir, cp)


def _roll(wal_dir: Path, stale_seconds: float | None, observer: _Observer | None = None) -> int:
    config = WalConfig(
        dir=wal_dir,
        segment_size_bytes=1024,
        retention=True,
        retention_consumer_stale_seconds=stale_seconds,
        observer=observer,
    )
    with Wal.open(config) as wal:
        for lsn in range(101, 121):
            wal.append([(1, payload_for(lsn, 50))])
    return list_segments(wal_dir)[0][0]


@pytest.mark.parametrize("stale_seconds", [None, 60.0])
def test_stale_consumer_is_ignored_only_when_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, stale_seconds: float | None
) -> None:
    now = time.time_ns()
    _log_with(
        tmp_path,
        [
            ConsumerCheckpoint("fast", 90, b"", now),
            ConsumerCheckpoint("halted", 10, b"", now - HOUR_NS),
        ],
    )
    observer = _Observer()
    with caplog.at_level(logging.WARNING, logger="stemedb.wal"):
        first = _roll(tmp_path, stale_seconds, observer)
    if stale_seconds is None:
        assert first <= 11  # the halted consumer's next record is kept
        assert "ignores consumer" not in caplog.text
        assert all(ignored == [] for ignored in observer.ignored)
        return
    assert 11 < first <= 91  # retention went on up to the live consumer
    assert "ignores consumer halted" in caplog.text and "LSN 10" in caplog.text
    assert ["halted"] in observer.ignored


def test_stale_but_caught_up_or_all_stale(tmp_path: Path) -> None:
    old = time.time_ns() - HOUR_NS
    # Caught up with the log (nothing to read): idle, not stale; it keeps its segments.
    _log_with(tmp_path / "a", [ConsumerCheckpoint("idle", 100, b"", old)])
    assert _roll(tmp_path / "a", 60.0) > 1
    assert (tmp_path / "a" / "consumers" / "idle.json").exists()
    # Every consumer stale: no live floor, nothing is deleted.
    _log_with(tmp_path / "b", [ConsumerCheckpoint("gone", 10, b"", old)])
    assert _roll(tmp_path / "b", 60.0) == 1


def test_stale_seconds_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="retention_consumer_stale_seconds"):
        WalConfig(dir=tmp_path, retention_consumer_stale_seconds=0)


def test_writer_flag_sets_the_wal_field(tmp_path: Path) -> None:
    from stemedb.writer._config import config_from_args

    cfg = config_from_args(["--wal-dir", str(tmp_path), "--retention-consumer-stale-seconds", "30"])
    assert cfg.retention_consumer_stale_seconds == 30.0
    assert config_from_args(["--wal-dir", str(tmp_path)]).retention_consumer_stale_seconds is None
