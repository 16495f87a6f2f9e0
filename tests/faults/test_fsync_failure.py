"""A failed fdatasync (issue 10 item 7), injected by powerfs the way Linux fails one: the error
is reported once and the dirty pages are marked clean, their new contents dropped ("drop") or
still served from the page cache although they never reached the disk ("keep").

The promise under test: no acknowledged record is lost and WATERMARK never names a record whose
bytes are not durable, whether the writer restarts before or after a power cut.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from stemedb.fsio import fsync_dir
from stemedb.merkle import CompactRange
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import Wal, WalConfig, WalError, WalReader, verify_wal
from stemedb.wal._encoder import encode_batch
from stemedb.wal._segment import list_segments
from tests.faults.faultlib import missing_acked, wal_contents
from tests.faults.powerfs import PowerFS
from tests.faults.test_writer_faults import _append
from tests.support import start_writer, wait_until


def _tree_size(wal_dir: Path) -> int:
    """The size TREE holds (written after CHECKPOINT, so both have it then); 0 if none yet."""
    try:
        return CompactRange.from_bytes((wal_dir / "TREE").read_bytes()).size
    except (FileNotFoundError, ValueError):
        return 0


def _write(path: Path, data: bytes, *, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


@pytest.mark.parametrize("pages", ["drop", "keep"])
def test_powerfs_fails_one_fsync_the_linux_way(powerfs: PowerFS, pages: str) -> None:
    path = powerfs.mountpoint / "f"
    _write(path, b"durable", fsync=True)
    fsync_dir(powerfs.mountpoint)
    _write(path, b"-volatile", fsync=False)
    powerfs.fail_fsyncs(1, pages)
    fd = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(OSError) as failed:
            os.fdatasync(fd)
        assert failed.value.errno == 5  # EIO
        os.fdatasync(fd)  # reported once: the retry "succeeds", writing nothing
    finally:
        os.close(fd)
    seen = path.read_bytes()
    if pages == "drop":
        assert seen == b"durable" + bytes(9)  # reads now see what is on disk
    else:
        assert seen == b"durable-volatile"  # clean in the cache, never written back
    assert powerfs.stats()["failed_fsyncs"] == 1
    powerfs.remount()
    assert path.read_bytes() == b"durable" + bytes(9)


def test_recovery_rewrites_a_tail_that_only_reads_back_clean(powerfs: PowerFS) -> None:
    """A writer wrote LSNs 6..8, its fdatasync failed (pages kept in the cache) and it died
    before cutting them. The next open must not name them in WATERMARK on the strength of a
    no-op fdatasync: after a power cut they would be gone below the watermark."""
    wal_dir = powerfs.mountpoint / "wal"
    with Wal.open(WalConfig(dir=wal_dir)) as wal:
        for n in range(1, 6):
            assert wal.append([(1, f"acked-{n}".encode())]) == [n]
    segment = list_segments(wal_dir)[-1][1]
    unsynced = encode_batch(6, [(1, f"unsynced-{n}".encode()) for n in range(6, 9)], 1)
    fd = os.open(segment, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, unsynced)
        powerfs.fail_fsyncs(1, "keep")
        with pytest.raises(OSError):
            os.fdatasync(fd)
    finally:
        os.close(fd)
    with Wal.open(WalConfig(dir=wal_dir)) as wal:  # recovery keeps 6..8 and names them
        assert wal.durable_lsn == 8
        assert wal.append([(1, b"after")]) == [9]
    powerfs.remount()  # power cut
    report = verify_wal(wal_dir)
    assert report.ok, report.errors
    with WalReader(wal_dir) as reader:
        payloads = [r.payload for r in reader.read_available(100)]
    assert payloads[:5] == [f"acked-{n}".encode() for n in range(1, 6)]
    assert payloads[5:] == [b"unsynced-6", b"unsynced-7", b"unsynced-8", b"after"]


def test_wal_cuts_back_to_the_durable_offset_on_fsync_failure(powerfs: PowerFS) -> None:
    wal_dir = powerfs.mountpoint / "wal"
    wal = Wal.open(WalConfig(dir=wal_dir))
    try:
        wal.append([(1, b"one"), (1, b"two")])
        segment = list_segments(wal_dir)[-1][1]
        durable_size = segment.stat().st_size
        powerfs.fail_fsyncs(1, "keep")
        with pytest.raises(WalError, match="I/O error"):
            wal.append([(1, b"three")])
        assert segment.stat().st_size == durable_size
        assert wal.durable_lsn == 2
    finally:
        wal.close()
    with WalReader(wal_dir) as reader:
        assert reader.watermark() == 2


@pytest.mark.parametrize("restart_before_cut", [False, True])
def test_writer_fsync_failure_loses_nothing_acknowledged(
    powerfs: PowerFS, tmp_path: Path, restart_before_cut: bool
) -> None:
    wal_dir = powerfs.mountpoint / "wal"
    acked: dict[int, bytes] = {}
    svc = start_writer(wal_dir, log_dir=tmp_path)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            for n in range(10):
                _append(stub, f"before-{n}", "acknowledged")
            acked = wal_contents(wal_dir)
            assert sorted(acked) == list(range(1, 11))
            # The writer's tree head files are fsynced too: let them settle at size 10 first, so
            # the one failing fsync is the WAL's (docs/verifiable-log.md: TREE follows CHECKPOINT).
            wait_until(lambda: _tree_size(wal_dir) == 10, 30, "the tree head to reach 10")
            segment = list_segments(wal_dir)[-1][1]
            durable_size = segment.stat().st_size
            powerfs.fail_fsyncs(1, "keep")
            with pytest.raises(grpc.RpcError):
                _append(stub, "failed", "its fsync fails")
        # Cut back before going fatal; WATERMARK still names the last durable record.
        assert segment.stat().st_size == durable_size
        with WalReader(wal_dir) as reader:
            assert reader.watermark() == 10
    finally:
        svc.kill()
    if restart_before_cut:
        # The page cache survives a process restart; the restarted writer must not trust it.
        svc = start_writer(wal_dir, log_dir=tmp_path)
        try:
            svc.wait_ready()
            with grpc.insecure_channel(svc.listen) as ch:
                stub = writer_pb2_grpc.WriterServiceStub(ch)
                lsn = _append(stub, "after-restart", "acknowledged")
            acked = wal_contents(wal_dir)
            assert lsn == max(acked) == 11
        finally:
            svc.kill()
    powerfs.remount()  # power cut
    report = verify_wal(wal_dir)
    assert report.ok, report.errors
    on_disk = wal_contents(wal_dir)
    assert missing_acked(acked, on_disk) == []
    with WalReader(wal_dir) as reader:
        assert reader.watermark() <= max(on_disk)
    svc = start_writer(wal_dir, log_dir=tmp_path)
    try:
        svc.wait_ready()
    finally:
        svc.kill()
