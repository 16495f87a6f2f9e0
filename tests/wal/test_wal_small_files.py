"""Small files (segment headers, WATERMARK, consumer checkpoints) go through stemedb.fsio, and
the committer refuses a group that does not continue the log's LSNs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wal_testlib import read_all

from stemedb import fsio
from stemedb.wal import ConsumerCheckpoint, Wal, WalConfig, WalError, write_consumer_checkpoint
from stemedb.wal._errors import WalSequenceError
from stemedb.wal._segment import create_segment
from stemedb.wal._watermark import WATERMARK_NAME, write_watermark_atomic


def _fsync_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_consumer_checkpoint_honours_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fsync_calls(monkeypatch)
    cp = ConsumerCheckpoint("c", 1, b"\x00" * 16, 1)
    write_consumer_checkpoint(tmp_path, cp, sync=False)
    assert calls == []
    write_consumer_checkpoint(tmp_path, cp)
    assert len(calls) >= 2  # the file and the directory


@pytest.mark.parametrize("writer", ["segment", "watermark", "consumer"])
def test_failed_small_file_write_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "injected EIO")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    (tmp_path / "consumers").mkdir()
    with pytest.raises(OSError, match="injected"):
        if writer == "segment":
            create_segment(tmp_path, 1, sync=True)
        elif writer == "watermark":
            write_watermark_atomic(tmp_path, 5, sync=True)
        else:
            write_consumer_checkpoint(tmp_path, ConsumerCheckpoint("c", 1, b"", 1))
    left = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert left == [], left
    assert not (tmp_path / WATERMARK_NAME).exists()


def test_wal_modules_share_the_fsio_helpers() -> None:
    from stemedb.wal import _segment

    assert _segment.fsync_dir is fsio.fsync_dir
    assert _segment.write_all is fsio.write_all


def test_commit_refuses_an_lsn_gap(tmp_path: Path) -> None:
    wal = Wal.open(WalConfig(dir=tmp_path))
    try:
        assert wal.append([(1, b"a")]) == [1]
        wal._next_lsn += 3  # simulate a numbering bug (e.g. a wrong renumbering after ENOSPC)
        with pytest.raises(WalSequenceError, match="LSN 5 where LSN 2 must come next"):
            wal.append([(1, b"b")])
        with pytest.raises(WalError):
            wal.append([(1, b"c")])  # the log stopped
    finally:
        wal.close()
    assert [r.lsn for r in read_all(tmp_path)] == [1]
    reopened = Wal.open(WalConfig(dir=tmp_path))
    try:
        assert reopened.append([(1, b"b")]) == [2]
    finally:
        reopened.close()
