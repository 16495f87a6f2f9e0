"""Disk full: a real small tmpfs, ENOSPC mid-group, nothing partial kept, recovery after."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from wal_testlib import read_all

from stemedb.wal import Wal, WalConfig, WalDiskFull, verify_wal
from tests.support import missing_tool

SEGMENT_SIZE_BYTES = 256 * 1024


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[tuple[Path, bool]]:
    """A 2 MiB tmpfs mount; (path, True). Falls back to a plain dir (path, False)."""
    mount_point = tmp_path / "vol"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)  # fmt: skip
    mounted = result.returncode == 0
    if not mounted:
        print(f"FALLBACK: could not mount tmpfs ({result.stderr.strip()}); injecting ENOSPC")
    try:
        yield mount_point, mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill_until_full(wal: Wal) -> tuple[int, WalDiskFull]:
    last = 0
    payload = os.urandom(3000)
    for _ in range(10_000):
        try:
            last = wal.append([(1, payload), (2, payload[:100])])[-1]
        except WalDiskFull as exc:
            return last, exc
    raise AssertionError("the volume never filled up")


def test_disk_full_then_space_returns(small_volume: tuple[Path, bool]) -> None:
    volume, mounted = small_volume
    directory = volume / "wal"
    filler = volume / "filler"
    config = WalConfig(dir=directory, segment_size_bytes=SEGMENT_SIZE_BYTES)
    if not mounted:
        missing_tool("tmpfs mount unavailable; see test_injected_enospc for the fallback")
    filler.write_bytes(b"\xff" * (1024 * 1024))
    wal = Wal.open(config)
    last_acked, error = _fill_until_full(wal)
    assert "no space left" in str(error)
    assert last_acked > 0 and wal.durable_lsn == last_acked
    # Still full: a second attempt fails the same clean way, with nothing kept.
    with pytest.raises(WalDiskFull):
        wal.append([(1, os.urandom(3000))])
    assert wal.durable_lsn == last_acked
    wal.close()

    # After reopen: no partial record anywhere, the log ends exactly at the last ack.
    report = verify_wal(directory)
    assert report.ok and not report.warnings, (report.errors, report.warnings)
    assert report.last_lsn == last_acked
    with Wal.open(config) as wal:
        assert wal.durable_lsn == last_acked
        filler.unlink()  # space returns
        assert wal.append([(1, b"after")]) == [last_acked + 1]
    records = read_all(directory)
    assert [r.lsn for r in records] == list(range(1, last_acked + 2))


def test_disk_full_same_instance_recovers(small_volume: tuple[Path, bool]) -> None:
    volume, mounted = small_volume
    if not mounted:
        missing_tool("tmpfs mount unavailable")
    filler = volume / "filler"
    filler.write_bytes(b"\xff" * (1024 * 1024))
    with Wal.open(WalConfig(dir=volume / "wal", segment_size_bytes=SEGMENT_SIZE_BYTES)) as wal:
        last_acked, _error = _fill_until_full(wal)
        filler.unlink()
        assert wal.append([(1, b"x" * 3000)]) == [last_acked + 1]
    assert verify_wal(volume / "wal").ok


def test_injected_enospc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fallback path and fdatasync-time ENOSPC: the group is truncated away, LSNs reused."""
    real_fdatasync = os.fdatasync
    failures = {"left": 1}

    def failing_fdatasync(fd: int) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        real_fdatasync(fd)

    with Wal.open(WalConfig(dir=tmp_path)) as wal:
        assert wal.append([(1, b"a")]) == [1]
        monkeypatch.setattr(os, "fdatasync", failing_fdatasync)
        with pytest.raises(WalDiskFull):
            wal.append([(1, b"b"), (1, b"c")])
        assert wal.append([(1, b"d")]) == [2]
    assert [(r.lsn, r.payload) for r in read_all(tmp_path)] == [(1, b"a"), (2, b"d")]
