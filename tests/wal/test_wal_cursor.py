"""The one frame reader (SegmentCursor) as seen through WalReader: intact records before damage
are returned, WATERMARK is not re-read per chunk, the read buffer is kept but never trusted past
the watermark it was read under, and a reader below retention gets a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from wal_testlib import payload_for, read_all

from stemedb.wal import (
    ConsumerCheckpoint,
    Wal,
    WalConfig,
    WalCorruption,
    WalError,
    WalReader,
    write_consumer_checkpoint,
)
from stemedb.wal import _reader as reader_module
from stemedb.wal import _watermark as watermark_module
from stemedb.wal._encoder import encode_record
from stemedb.wal._errors import WalTruncated
from stemedb.wal._watermark import WatermarkPublisher, write_watermark_atomic


def build_log(directory: Path, records: int, segment_size_bytes: int = 64 * 1024 * 1024) -> None:
    with Wal.open(WalConfig(dir=directory, segment_size_bytes=segment_size_bytes)) as wal:
        for lsn in range(1, records + 1):
            assert wal.append([(1, payload_for(lsn))]) == [lsn]


def test_intact_records_before_damage_are_returned_then_the_damage(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    target = read_all(tmp_path)[6]  # LSN 7
    data = bytearray(target.segment.read_bytes())
    data[target.offset + 40] ^= 0xFF
    target.segment.write_bytes(bytes(data))
    with WalReader(tmp_path) as reader:
        records = reader.read_available(100)
        assert [r.lsn for r in records] == [1, 2, 3, 4, 5, 6]
        assert reader.next_lsn == 7
        for _attempt in range(2):  # reported on every later call, never skipped
            with pytest.raises(WalCorruption) as info:
                reader.read_available(100)
            assert (info.value.file, info.value.offset, info.value.lsn) == (
                target.segment,
                target.offset,
                7,
            )
            assert "checksum" in info.value.reason


def test_watermark_read_once_and_buffer_kept_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_log(tmp_path, 1000)
    watermark_reads: list[int] = []
    real_read = reader_module.read_watermark_bytes

    def counting_read(path: str) -> bytes | None:
        watermark_reads.append(1)
        return real_read(path)

    preads: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        preads.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(reader_module, "read_watermark_bytes", counting_read)
    with WalReader(tmp_path) as reader:
        monkeypatch.setattr(os, "pread", counting_pread)
        lsns = [r.lsn for _ in range(3) for r in reader.read_available(256)]
        assert lsns == list(range(1, 769))
        # One WATERMARK read for all three chunks; one header read and one data read in all.
        assert len(watermark_reads) == 1
        assert len(preads) == 2, preads
        assert [r.lsn for r in reader.read_available(1000)] == list(range(769, 1001))
        assert reader.read_available(10) == []


def test_buffered_bytes_past_the_watermark_are_read_again(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    records = read_all(tmp_path)
    write_watermark_atomic(tmp_path, 5, sync=False)  # LSNs 6..10 are "not yet durable"
    with WalReader(tmp_path) as reader:
        assert [r.lsn for r in reader.read_available(100)] == [1, 2, 3, 4, 5]
        # A new writer cut the undurable tail and wrote LSN 7 again with other bytes.
        seven = records[6]
        frame = encode_record(7, 2, seven.timestamp_ns, payload_for(77))
        assert len(frame) == records[7].offset - seven.offset
        fd = os.open(seven.segment, os.O_WRONLY)
        try:
            os.pwrite(fd, frame, seven.offset)
        finally:
            os.close(fd)
        write_watermark_atomic(tmp_path, 10, sync=False)
        again = reader.read_available(100)
    assert [r.lsn for r in again] == [6, 7, 8, 9, 10]
    assert (again[1].record_type, again[1].payload) == (2, payload_for(77))


def test_reader_below_retention_names_first_available_lsn(tmp_path: Path) -> None:
    config = WalConfig(dir=tmp_path, segment_size_bytes=1024, retention=True)
    build_log(tmp_path, 60, segment_size_bytes=1024)
    write_consumer_checkpoint(tmp_path, ConsumerCheckpoint("only", 50, b"", 1))
    with Wal.open(config) as wal:
        wal.append([(1, b"x")])
    with WalReader(tmp_path) as reader:
        first = reader.first_available_lsn()
        assert first is not None and 1 < first <= 51
        assert reader.has_watermark()
        with pytest.raises(WalTruncated) as info:
            reader.read_available(10)
    assert isinstance(info.value, WalError)
    assert info.value.first_available_lsn == first and info.value.lsn == 1
    message = str(info.value)
    assert f"first available LSN is {first}" in message
    assert "rebuild" in message and "docs/operations.md" in message
    assert not WalReader(tmp_path / "nothing").has_watermark()


def test_an_idle_watermark_poll_does_not_checksum_again_yet_sees_every_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle tailers poll WATERMARK many times a second: the same bytes again are not decoded
    (no BLAKE3), but an in-place overwrite and an atomic replacement are seen at once."""
    build_log(tmp_path, 10)
    decodes: list[bytes] = []
    real_decode = watermark_module.decode_watermark

    def counting_decode(data: bytes) -> int:
        decodes.append(data)
        return real_decode(data)

    monkeypatch.setattr(watermark_module, "decode_watermark", counting_decode)
    with WalReader(tmp_path) as reader:
        assert [reader.watermark() for _ in range(50)] == [10] * 50
        assert len(decodes) == 1
        publisher = WatermarkPublisher(tmp_path)  # the writer's in-place pwrite
        try:
            publisher.publish(11)
            assert reader.watermark() == 11
            publisher.publish(12)
            assert [reader.watermark() for _ in range(5)] == [12] * 5
        finally:
            publisher.close(sync=False)
        write_watermark_atomic(tmp_path, 13, sync=False)  # a writer's open replaces the file
        assert reader.watermark() == 13
        assert len(decodes) == 4


@pytest.mark.parametrize("size_bytes", [0, 35, 37, 4096])
def test_a_watermark_of_the_wrong_size_is_corruption_naming_its_size(
    tmp_path: Path, size_bytes: int
) -> None:
    build_log(tmp_path, 3)
    with WalReader(tmp_path) as reader:
        assert reader.watermark() == 3
        (tmp_path / "WATERMARK").write_bytes(b"\0" * size_bytes)
        with pytest.raises(WalCorruption) as info:
            reader.watermark()
        assert info.value.file == tmp_path / "WATERMARK"
        assert f"WATERMARK is {size_bytes} bytes" in info.value.reason
