"""Unit tests of the WAL: framing, appends, LSNs, locking, queue bounds, group commit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wal_testlib import payload_for, read_all

import stemedb.wal as wal_pkg
from stemedb.wal import (
    ConsumerCheckpoint,
    Wal,
    WalClosed,
    WalConfig,
    WalLocked,
    WalOverloaded,
    WalReader,
    read_consumer_checkpoints,
    verify_wal,
    write_consumer_checkpoint,
)
from stemedb.wal._decoder import FrameError, decode_frame
from stemedb.wal._encoder import CHECKSUM_BYTES, RECORD_HEADER, encode_record, frame_size_bytes
from stemedb.wal._segment import list_segments


def test_public_names_are_pinned() -> None:
    assert sorted(wal_pkg.__all__) == sorted([
        "ConsumerCheckpoint", "SyncMode", "VerifyReport", "Wal", "WalClosed", "WalConfig",
        "WalCorruption", "WalDiskFull", "WalError", "WalLocked", "WalObserver", "WalOverloaded",
        "WalReader", "WalRecord", "add_wal_commands", "dump_wal", "read_consumer_checkpoints",
        "repair_wal", "verify_wal", "write_consumer_checkpoint",
    ])  # fmt: skip
    for name in wal_pkg.__all__:
        assert hasattr(wal_pkg, name)


@settings(max_examples=200, deadline=None)
@given(
    lsn=st.integers(1, 2**64 - 1),
    record_type=st.integers(1, 255),
    timestamp_ns=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=300),
)
def test_encode_decode_round_trip(lsn: int, record_type: int, timestamp_ns: int,
                                  payload: bytes) -> None:  # fmt: skip
    frame = encode_record(lsn, record_type, timestamp_ns, payload)
    assert len(frame) % 8 == 0
    assert len(frame) == frame_size_bytes(len(payload))
    assert decode_frame(frame, 0) == (lsn, record_type, timestamp_ns, len(payload), len(frame))


def test_nonzero_padding_is_rejected() -> None:
    frame = bytearray(encode_record(1, 1, 0, b"abc"))  # 3 bytes payload, 5 bytes padding
    frame[RECORD_HEADER.size + 3] = 1
    with pytest.raises(FrameError, match="padding"):
        decode_frame(bytes(frame), 0)


def test_short_buffer_and_huge_length_are_rejected_before_allocating() -> None:
    frame = encode_record(1, 1, 0, b"payload")
    with pytest.raises(FrameError, match="cut short"):
        decode_frame(frame[:-1], 0)
    huge = bytearray(frame)
    huge[8:12] = (2**32 - 1).to_bytes(4, "little")
    with pytest.raises(FrameError, match="exceeds the maximum"):
        decode_frame(bytes(huge), 0)
    with pytest.raises(FrameError, match="checksum"):
        decode_frame(frame[:-CHECKSUM_BYTES] + bytes(CHECKSUM_BYTES), 0)


def test_lsns_contiguous_from_one_and_reopen_continues(wal_dir: Path) -> None:
    with Wal.open(WalConfig(dir=wal_dir)) as wal:
        assert wal.append([(1, b"a")]) == [1]
        assert wal.append([(2, b"b"), (3, b"c"), (4, b"")]) == [2, 3, 4]
        assert wal.append([]) == []
        assert wal.durable_lsn == wal.last_lsn == 4
    with Wal.open(WalConfig(dir=wal_dir)) as wal:
        assert wal.durable_lsn == 4
        assert wal.append([(5, b"d")]) == [5]
    records = read_all(wal_dir)
    assert [r.lsn for r in records] == [1, 2, 3, 4, 5]
    assert [(r.record_type, r.payload) for r in records] == [
        (1, b"a"), (2, b"b"), (3, b"c"), (4, b""), (5, b"d")
    ]  # fmt: skip
    assert all(len(r.checksum) == 16 and r.offset % 8 == 0 for r in records)


def test_invalid_records_are_refused(open_wal: Wal) -> None:
    with pytest.raises(ValueError):
        open_wal.append([(0, b"x")])
    with pytest.raises(ValueError):
        open_wal.append([(256, b"x")])
    with pytest.raises(TypeError):
        open_wal.append([(1, "text")])  # type: ignore[list-item]


def test_roll_over_follows_segments(wal_dir: Path) -> None:
    config = WalConfig(dir=wal_dir, segment_size_bytes=1024)
    with Wal.open(config) as wal:
        for lsn in range(1, 201):
            assert wal.append([(1, payload_for(lsn, 50))]) == [lsn]
    segments = list_segments(wal_dir)
    assert len(segments) > 10
    assert all(path.stat().st_size <= 1024 for _first, path in segments)
    assert segments[0][0] == 1
    records = read_all(wal_dir)
    assert [r.lsn for r in records] == list(range(1, 201))
    assert all(r.payload == payload_for(r.lsn, 50) for r in records)
    report = verify_wal(wal_dir)
    assert report.ok and report.last_lsn == 200 and report.records == 200
    with WalReader(wal_dir, from_lsn=150) as reader:
        assert reader.read_available(5)[0].lsn == 150
        record = reader.record_at(77)
        assert record is not None and record.payload == payload_for(77, 50)
        assert reader.record_at(201) is None


def test_second_opener_gets_walLocked(open_wal: Wal, wal_dir: Path) -> None:
    with pytest.raises(WalLocked, match=str(wal_dir)):
        Wal.open(WalConfig(dir=wal_dir))
    code = (
        "import sys; from pathlib import Path; from stemedb.wal import Wal, WalConfig, WalLocked\n"
        "try:\n    Wal.open(WalConfig(dir=Path(sys.argv[1])))\n"
        "except WalLocked as e:\n    print('LOCKED', e); sys.exit(3)\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code, str(wal_dir)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "LOCKED" in result.stdout and str(wal_dir) in result.stdout
    assert time.monotonic() - started < 30  # fails at once, does not wait for the lock


def test_append_async(open_wal: Wal) -> None:
    async def run() -> list[list[int]]:
        return await asyncio.gather(
            *(open_wal.append_async([(1, b"x"), (2, b"y")]) for _ in range(50))
        )

    results = asyncio.run(run())
    flat = sorted(lsn for lsns in results for lsn in lsns)
    assert flat == list(range(1, 101))
    assert all(lsns[1] == lsns[0] + 1 for lsns in results)


def test_overloaded_past_the_deadline(wal_dir: Path) -> None:
    wal = Wal.open(WalConfig(dir=wal_dir, queue_records_max=1))
    # Test hook: hold the commit lock so nothing drains and the one-record queue stays full.
    wal._commit_lock.acquire()
    first: list[int] = []
    blocker = threading.Thread(target=lambda: first.extend(wal.append([(1, b"first")])))
    blocker.start()
    deadline = time.monotonic() + 10
    while wal._queued_records == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    with pytest.raises(WalOverloaded, match="queue full"):
        wal.append([(1, b"second")], timeout_seconds=0.2)
    assert 0.15 < time.monotonic() - started < 5
    wal._commit_lock.release()
    blocker.join(10)
    assert first == [1]
    assert wal.append([(1, b"third")], timeout_seconds=5) == [2]
    wal.close()


def test_closed_wal_refuses_appends(wal_dir: Path) -> None:
    wal = Wal.open(WalConfig(dir=wal_dir))
    wal.append([(1, b"x")])
    wal.close()
    wal.close()  # idempotent
    with pytest.raises(WalClosed):
        wal.append([(1, b"y")])
    with pytest.raises(WalClosed):
        asyncio.run(wal.append_async([(1, b"y")]))
    with Wal.open(WalConfig(dir=wal_dir)) as again:  # LOCK was released
        assert again.append([(1, b"z")]) == [2]


class _Observer:
    def __init__(self) -> None:
        self.groups: list[int] = []
        self.durable: list[int] = []
        self.lock = threading.Lock()

    def on_commit(self, records: int, bytes_written: int, fsync_seconds: float,
                  durable_lsn: int) -> None:  # fmt: skip
        with self.lock:
            self.groups.append(records)
            self.durable.append(durable_lsn)

    def on_slow_fsync(self, fsync_seconds: float) -> None:
        pass


def test_group_commit_is_real(wal_dir: Path) -> None:
    observer = _Observer()
    threads_count, appends_each = 32, 60
    results: list[int] = []
    results_lock = threading.Lock()
    with Wal.open(WalConfig(dir=wal_dir, observer=observer)) as wal:

        def producer() -> None:
            for _ in range(appends_each):
                lsns = wal.append([(1, b"p" * 100)])
                with results_lock:
                    results.extend(lsns)

        threads = [threading.Thread(target=producer) for _ in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    total = threads_count * appends_each
    assert sorted(results) == list(range(1, total + 1))
    assert sum(observer.groups) == total
    assert max(observer.groups) > 1
    assert len(observer.groups) < total  # fewer fdatasyncs than records
    assert observer.durable == sorted(observer.durable)
    print(f"{total} records in {len(observer.groups)} groups, largest {max(observer.groups)}")


@pytest.mark.parametrize("gather_async", [True, False])
def test_one_loop_turn_of_async_appends_is_one_group(wal_dir: Path, gather_async: bool) -> None:
    """The appends of one event-loop turn reach the commit thread together: one group, one
    fdatasync, LSNs in call order. Handed over one by one (gather_async=False), the commit
    thread, woken by the first, takes a group before the rest are queued."""
    observer = _Observer()
    calls = 64

    async def run(wal: Wal) -> list[list[int]]:
        return await asyncio.gather(*(wal.append_async([(1, b"a" * 50)]) for _ in range(calls)))

    interval = sys.getswitchinterval()
    # Hand the GIL over at once, so that a commit thread woken by the first append runs while
    # the loop is still making the others (as it does on a busy server).
    sys.setswitchinterval(1e-6)
    try:
        config = WalConfig(dir=wal_dir, observer=observer, gather_async=gather_async)
        with Wal.open(config) as wal:
            results = asyncio.run(run(wal))
    finally:
        sys.setswitchinterval(interval)
    assert results == [[i + 1] for i in range(calls)]
    assert sum(observer.groups) == calls
    if gather_async:
        assert observer.groups == [calls]
    print(f"gather_async={gather_async}: groups {observer.groups}")


def test_gathered_appends_past_a_full_queue_wait_for_space(wal_dir: Path) -> None:
    """A loop turn's appends beyond the queue bound wait for space off the loop, and all of
    them commit, LSNs contiguous, in groups within the bound."""
    observer = _Observer()

    async def run(wal: Wal) -> list[list[int]]:
        return await asyncio.gather(*(wal.append_async([(1, b"q" * 30)]) for _ in range(40)))

    with Wal.open(WalConfig(dir=wal_dir, observer=observer, queue_records_max=8)) as wal:
        results = asyncio.run(run(wal))
    assert sorted(lsn for lsns in results for lsn in lsns) == list(range(1, 41))
    assert sum(observer.groups) == 40
    assert max(observer.groups) <= 8
    assert [r.lsn for r in read_all(wal_dir)] == list(range(1, 41))


def test_consumer_checkpoints_round_trip(wal_dir: Path) -> None:
    wal_dir.mkdir()
    cp = ConsumerCheckpoint(name="ingestor-0", lsn=42, checksum=b"\x01" * 16, updated_ns=7)
    write_consumer_checkpoint(wal_dir, cp)
    write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("b", 3, b"\x02" * 16, 8))
    assert read_consumer_checkpoints(wal_dir) == {
        "ingestor-0": cp, "b": ConsumerCheckpoint("b", 3, b"\x02" * 16, 8)
    }  # fmt: skip
    path = wal_dir / "consumers" / "b.json"
    path.write_text(path.read_text().replace('"lsn": 3', '"lsn": 4'))
    with pytest.raises(ValueError, match="checksum"):
        read_consumer_checkpoints(wal_dir)
    with pytest.raises(ValueError):
        write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("../x", 1, b"", 0))


@pytest.mark.parametrize("retention", [False, True])
def test_retention_deletes_only_below_every_consumer(wal_dir: Path, retention: bool) -> None:
    config = WalConfig(dir=wal_dir, segment_size_bytes=1024, retention=retention)
    with Wal.open(config) as wal:
        for lsn in range(1, 101):
            wal.append([(1, payload_for(lsn, 50))])
    before = list_segments(wal_dir)
    write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("fast", 90, b"", 1))
    write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("slow", 40, b"", 1))
    with Wal.open(config) as wal:
        for lsn in range(101, 121):  # rolls segments, which applies retention too
            wal.append([(1, payload_for(lsn, 50))])
    after = list_segments(wal_dir)
    if not retention:
        assert after[: len(before)] == before
        return
    firsts = [first for first, _path in after]
    # Every deleted segment ended at or below LSN 40; the one holding LSN 41 survives.
    assert firsts[0] <= 41
    assert firsts[0] > 1
    kept_from = firsts[0]
    records = read_all(wal_dir, from_lsn=kept_from)
    assert [r.lsn for r in records] == list(range(kept_from, 121))
    with WalReader(wal_dir) as reader:
        assert reader.record_at(1) is None
    assert verify_wal(wal_dir).ok
