"""Torn tails, corruption at or below the watermark, bit flips, WATERMARK damage, repair, CLI."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
from wal_testlib import payload_for, read_all

from stemedb.wal import (
    Wal,
    WalConfig,
    WalCorruption,
    WalReader,
    add_wal_commands,
    dump_wal,
    repair_wal,
    verify_wal,
)
from stemedb.wal._segment import list_segments
from stemedb.wal._watermark import WATERMARK_NAME, write_watermark_atomic


def build_log(directory: Path, records: int, segment_size_bytes: int = 64 * 1024 * 1024) -> None:
    with Wal.open(WalConfig(dir=directory, segment_size_bytes=segment_size_bytes)) as wal:
        for lsn in range(1, records + 1):
            assert wal.append([(1, payload_for(lsn))]) == [lsn]


def last_frame(directory: Path) -> tuple[Path, int, int]:
    """(segment, offset, size) of the last whole record's frame, watermark or not."""
    last = list(dump_wal(directory))[-1]
    return last.segment, last.offset, last.segment.stat().st_size - last.offset


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stemedb")
    add_wal_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_torn_tail_past_watermark_cut_at_every_offset(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    build_log(pristine, 5)
    write_watermark_atomic(pristine, 4, sync=False)  # record 5 written, fsync "not confirmed"
    segment, offset, size = last_frame(pristine)
    for cut in range(size):
        work = tmp_path / f"cut{cut}"
        shutil.copytree(pristine, work)
        seg = work / segment.name
        with seg.open("r+b") as fh:
            fh.truncate(offset + cut)
        report = verify_wal(work)
        assert report.ok, report.errors
        assert (cut == 0) or any("torn tail" in w for w in report.warnings)
        with Wal.open(WalConfig(dir=work)) as wal:
            assert wal.durable_lsn == 4
            assert wal.append([(1, b"after")]) == [5]
        torn = list(work.glob(f"{segment.name}.torn.*"))
        if cut:
            assert len(torn) == 1 and torn[0].read_bytes() == segment.read_bytes()[offset:][:cut]
        assert [r.lsn for r in read_all(work)] == [1, 2, 3, 4, 5]
        assert read_all(work)[-1].payload == b"after"
        shutil.rmtree(work)


def test_whole_record_past_watermark_is_kept(tmp_path: Path) -> None:
    build_log(tmp_path, 5)
    write_watermark_atomic(tmp_path, 3, sync=False)
    assert any("behind" in w for w in verify_wal(tmp_path).warnings)
    with Wal.open(WalConfig(dir=tmp_path)) as wal:
        assert wal.durable_lsn == 5


def test_same_damage_at_or_below_watermark_is_corruption(tmp_path: Path) -> None:
    build_log(tmp_path, 5)
    segment, offset, size = last_frame(tmp_path)
    for cut in (1, size // 2, size - 1):
        work = tmp_path / f"cut{cut}"
        work.mkdir()
        for item in tmp_path.iterdir():
            if item.is_file() and item.name != "LOCK":
                shutil.copy(item, work / item.name)
        with (work / segment.name).open("r+b") as fh:
            fh.truncate(offset + cut)
        with pytest.raises(WalCorruption) as info:
            Wal.open(WalConfig(dir=work))
        assert info.value.file == work / segment.name
        assert info.value.offset == offset and info.value.lsn == 5
        assert "at or below the durable watermark" in str(info.value)
        report = verify_wal(work)
        assert not report.ok and report.errors[0].offset == offset
        assert not list(work.glob("*.torn.*"))  # nothing was cut
        assert (work / segment.name).stat().st_size == offset + cut


def test_truncated_whole_record_below_watermark_is_corruption(tmp_path: Path) -> None:
    build_log(tmp_path, 5)
    segment, offset, _size = last_frame(tmp_path)
    with segment.open("r+b") as fh:
        fh.truncate(offset)  # record 5 vanished entirely, WATERMARK still says 5
    with pytest.raises(WalCorruption, match="acknowledged records are missing"):
        Wal.open(WalConfig(dir=tmp_path))


def test_bit_flips_before_the_tail_are_reported_at_the_right_place(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    build_log(pristine, 60, segment_size_bytes=1024)  # several segments
    records = read_all(pristine)
    # A record in a middle segment, and one in the last segment below the watermark.
    targets = [records[20], records[-2]]
    for target in targets:
        frame_size = records[target.lsn].offset - target.offset if target.lsn < 60 else 0
        if frame_size <= 0:
            frame_size = target.segment.stat().st_size - target.offset
        for byte in range(frame_size):
            work = tmp_path / "work"
            shutil.copytree(pristine, work)
            seg = work / target.segment.name
            data = bytearray(seg.read_bytes())
            data[target.offset + byte] ^= 0x10
            seg.write_bytes(bytes(data))
            report = verify_wal(work)
            assert not report.ok, (target.lsn, byte)
            error = report.errors[0]
            assert (error.file, error.offset, error.lsn) == (seg, target.offset, target.lsn)
            with pytest.raises(WalCorruption) as info, WalReader(work) as reader:
                while reader.read_available():
                    pass
            assert (info.value.file, info.value.offset) == (seg, target.offset)
            assert info.value.lsn == target.lsn
            shutil.rmtree(work)
    # A flipped segment header is reported at offset 0 of that segment.
    work = tmp_path / "work"
    shutil.copytree(pristine, work)
    seg = list_segments(work)[2][1]
    data = bytearray(seg.read_bytes())
    data[5] ^= 1
    seg.write_bytes(bytes(data))
    errors = verify_wal(work).errors
    assert (errors[0].file, errors[0].offset) == (seg, 0)


def test_damage_in_last_segment_below_watermark_refuses_open(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    records = read_all(tmp_path)
    target = records[4]
    data = bytearray(target.segment.read_bytes())
    data[target.offset + 40] ^= 0xFF
    target.segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruption) as info:
        Wal.open(WalConfig(dir=tmp_path))
    assert (info.value.offset, info.value.lsn) == (target.offset, 5)
    assert "checksum" in info.value.reason


def test_missing_watermark_treats_whole_tail_as_possibly_torn(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    records = read_all(tmp_path)
    (tmp_path / WATERMARK_NAME).unlink()
    target = records[6]  # damage in the middle of the only segment
    data = bytearray(target.segment.read_bytes())
    data[target.offset + 3] ^= 0xFF
    target.segment.write_bytes(bytes(data))
    report = verify_wal(tmp_path)
    assert report.ok
    assert any("WATERMARK is missing" in w for w in report.warnings)
    with Wal.open(WalConfig(dir=tmp_path)) as wal:
        assert wal.durable_lsn == 6  # the tail from the damage on was treated as torn
    assert [r.lsn for r in read_all(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_corrupt_and_stale_watermark_detected(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    watermark = tmp_path / WATERMARK_NAME
    good = watermark.read_bytes()
    watermark.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    report = verify_wal(tmp_path)
    assert report.ok and report.watermark is None
    assert any("checksum mismatch" in w for w in report.warnings)
    with pytest.raises(WalCorruption, match="WATERMARK"), WalReader(tmp_path) as reader:
        reader.watermark()
    # Stale in the dangerous direction: naming LSNs that are not in the log.
    write_watermark_atomic(tmp_path, 15, sync=False)
    report = verify_wal(tmp_path)
    assert not report.ok and "log ends at LSN 10" in report.errors[0].reason
    with pytest.raises(WalCorruption, match="acknowledged records are missing"):
        Wal.open(WalConfig(dir=tmp_path))


def test_reader_never_passes_the_watermark(tmp_path: Path) -> None:
    build_log(tmp_path, 10)
    write_watermark_atomic(tmp_path, 6, sync=False)  # records 7..10 are on disk, not durable
    segment = list_segments(tmp_path)[-1][1]
    with segment.open("ab") as fh:
        fh.write(b"\x07" * 13)  # and a torn partial frame after them
    with WalReader(tmp_path) as reader:
        assert [r.lsn for r in reader.read_available()] == [1, 2, 3, 4, 5, 6]
        assert reader.read_available() == []
        assert reader.next_lsn == 7
        assert reader.wait(0.05) is False
        assert reader.record_at(8) is None
        write_watermark_atomic(tmp_path, 9, sync=False)
        assert reader.wait(1.0) is True
        assert [r.lsn for r in reader.read_available()] == [7, 8, 9]


def test_reader_follows_a_live_writer(tmp_path: Path) -> None:
    with (
        Wal.open(WalConfig(dir=tmp_path, segment_size_bytes=1024)) as wal,
        WalReader(tmp_path) as reader,
    ):
        seen: list[int] = []
        for lsn in range(1, 80):
            wal.append([(1, payload_for(lsn, 40))])
            if lsn % 7 == 0:
                assert reader.wait(1.0)
                batch = reader.read_available()
                assert all(r.lsn <= wal.durable_lsn for r in batch)
                seen.extend(r.lsn for r in batch)
        seen.extend(r.lsn for r in reader.read_available())
    assert seen == list(range(1, 80))


def test_cli_verify_dump_repair(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path, 30, segment_size_bytes=1024)
    assert run_cli(["wal", "verify", str(tmp_path)]) == 0
    assert "ok, 30 records" in capsys.readouterr().out

    assert run_cli(["wal", "dump", str(tmp_path), "--from", "28"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["lsn"] for line in lines] == [28, 29, 30]
    assert lines[0]["payload_length"] == 20 and len(lines[0]["checksum"]) == 32
    assert {"type", "timestamp_ns", "payload_base64", "segment", "offset"} <= set(lines[0])

    # A torn tail past the watermark: warning on stderr, exit 0.
    write_watermark_atomic(tmp_path, 29, sync=False)
    segment, offset, _size = last_frame(tmp_path)
    with segment.open("r+b") as fh:
        fh.truncate(offset + 9)
    assert run_cli(["wal", "verify", str(tmp_path)]) == 0
    assert "warning: torn tail" in capsys.readouterr().err

    # Corruption in an earlier segment: non-zero, with file, offset, lsn and reason.
    target = read_all(tmp_path)[10]
    data = bytearray(target.segment.read_bytes())
    data[target.offset + 35] ^= 0x01
    target.segment.write_bytes(bytes(data))
    assert run_cli(["wal", "verify", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"file {target.segment}" in err and f"offset {target.offset}" in err
    assert "lsn 11" in err and "checksum mismatch" in err
    assert run_cli(["wal", "dump", str(tmp_path)]) == 1

    # Repair below the damage refuses; repair from the damaged LSN gives it up explicitly.
    assert run_cli(["wal", "repair", str(tmp_path), "--accept-loss-from", "20"]) == 1
    assert "choose --accept-loss-from 11 or lower" in capsys.readouterr().err
    assert run_cli(["wal", "repair", str(tmp_path), "--accept-loss-from", "11"]) == 0
    out = capsys.readouterr().out
    assert "gave up LSNs 11..29 (19 records)" in out
    assert "WATERMARK rewritten to LSN 10" in out
    assert list(tmp_path.glob("*.broken.*"))
    report = verify_wal(tmp_path)
    assert report.ok and report.last_lsn == 10 and not report.warnings
    with Wal.open(WalConfig(dir=tmp_path)) as wal:
        assert wal.append([(1, b"new")]) == [11]
        # Repair must hold LOCK: refused while a writer is running.
        with pytest.raises(Exception, match="locked"):
            repair_wal(tmp_path, 5)
    assert [r.lsn for r in dump_wal(tmp_path)] == list(range(1, 12))


def test_brand_new_log_says_created_not_missing_watermark(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal_dir = tmp_path / "wal"
    with caplog.at_level("INFO", logger="stemedb.wal"), Wal.open(WalConfig(dir=wal_dir)) as wal:
        assert wal.durable_lsn == 0
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", f"created a new WAL in {wal_dir}") in messages
    assert not [m for level, m in messages if level == "WARNING"], messages
    assert (wal_dir / WATERMARK_NAME).is_file()
    caplog.clear()
    with caplog.at_level("INFO", logger="stemedb.wal"), Wal.open(WalConfig(dir=wal_dir)):
        pass  # the second open finds the log it created: nothing to announce
    assert not [r for r in caplog.records if "created a new WAL" in r.getMessage()]


def test_lost_watermark_still_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build_log(tmp_path, 3)
    (tmp_path / WATERMARK_NAME).unlink()
    caplog.clear()  # only what this open logs
    with caplog.at_level("INFO", logger="stemedb.wal"), Wal.open(WalConfig(dir=tmp_path)):
        pass
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("WATERMARK is missing" in w and "possibly torn" in w for w in warnings)
    assert not [r for r in caplog.records if "created a new WAL" in r.getMessage()]
