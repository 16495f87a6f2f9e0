"""Faults injected under the real stemedb-writer process (DESIGN sections 4-6).

Library-level cases (torn tails at every offset, bit flips, disk full on the Wal object) live in
tests/wal/; here the same kinds of damage go through the service: its exit code and message,
its gRPC statuses, its metrics and its log.

* truncated segment in the middle, missing segment (a gap): refuse to start, exit 2, a message
  naming file, offset, LSN and reason; nothing on disk modified.
* deleted WATERMARK, stale WATERMARK: clean start, nothing acknowledged lost.
* disk full (a tiny tmpfs as the WAL volume): RESOURCE_EXHAUSTED, nothing partial, the writer
  keeps serving, appends succeed again once space is freed.
* slow fsync (powerfs injects a delay): the fsync histogram, the slow-fsync counter and the JSON
  "slow fsync" log line show it; a client deadline shorter than the delay gets DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import WalReader, verify_wal
from tests.faults.faultlib import Load, metric_value, missing_acked, scrape, tmpfs, wal_contents
from tests.faults.powerfs import PowerFS
from tests.support import SERVING, Service, health_status, start_writer, tree_digest, wait_until
from tests.writer.records import assertion

SEGMENT_BYTES = 4096


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, bytes]]:
    """A WAL of several small segments written by the real writer, closed cleanly."""
    wal_dir = tmp_path_factory.mktemp("template") / "wal"
    svc = start_writer(wal_dir, "--segment-size-bytes", str(SEGMENT_BYTES))
    try:
        svc.wait_ready()
        load = Load(svc.listen, threads=4, seed=7, tag="template")
        wait_until(lambda: load.count() >= 400, 60, "400 acknowledged appends")
        acked = dict(load.stop())
    finally:
        assert svc.terminate() == 0
    segments = sorted(wal_dir.glob("*.wal"))
    assert len(segments) >= 5, "the template needs segments in the middle to damage"
    return wal_dir, acked


@pytest.fixture
def wal_copy(template: tuple[Path, dict[int, bytes]], tmp_path: Path) -> Iterator[Path]:
    dst = tmp_path / "wal"
    shutil.copytree(template[0], dst)
    yield dst


def _refuses_to_start(wal_dir: Path, log_dir: Path) -> str:
    """Start the writer, expect exit code 2 before it serves; return its output."""
    before = tree_digest(wal_dir)
    svc = start_writer(wal_dir, log_dir=log_dir)
    try:
        wait_until(
            lambda: svc.proc.poll() is not None or health_status(svc.listen) == SERVING,
            60, "the writer to exit or serve",
        )  # fmt: skip
    finally:
        if svc.proc.poll() is None:
            svc.kill()
    code = svc.proc.returncode
    svc.wait_exit()
    out = svc.log_text()
    assert code == 2, f"the writer did not refuse to start (exit code {code}):\n{out}"
    assert tree_digest(wal_dir) == before, "a refused start must not modify the log"
    return out


def _corruption_fields(out: str) -> dict[str, str]:
    m = re.search(r"WAL corruption: file (\S+), offset (\d+), lsn (\d+): (.+)", out)
    assert m, f"no 'WAL corruption: file .., offset .., lsn ..: reason' message in:\n{out}"
    return {"file": m[1], "offset": m[2], "lsn": m[3], "reason": m[4]}


def _log_events(out: str) -> list[dict[str, object]]:
    events = []
    for line in out.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def _truncate_middle_segment(wal_dir: Path) -> tuple[Path, int]:
    segments = sorted(wal_dir.glob("*.wal"))
    victim = segments[len(segments) // 2]
    size = victim.stat().st_size - 100  # the last record(s) of a non-last segment cut off
    os.truncate(victim, size)
    return victim, size


def _remove_middle_segment(wal_dir: Path) -> tuple[Path, list[Path]]:
    segments = sorted(wal_dir.glob("*.wal"))
    victim = segments[len(segments) // 2]
    victim.unlink()
    return victim, segments


def test_truncated_middle_segment_is_reported_by_verify(wal_copy: Path) -> None:
    victim, size = _truncate_middle_segment(wal_copy)
    report = verify_wal(wal_copy)
    assert not report.ok
    err = report.errors[0]
    assert err.file.name == victim.name and 0 < err.offset <= size and err.lsn, err


def test_missing_segment_is_reported_by_verify(wal_copy: Path) -> None:
    victim, _ = _remove_middle_segment(wal_copy)
    report = verify_wal(wal_copy)
    assert not report.ok
    assert any(e.lsn == int(victim.name[:20]) for e in report.errors), report.errors


def test_truncated_middle_segment_refuses_to_start(wal_copy: Path, tmp_path: Path) -> None:
    victim, size = _truncate_middle_segment(wal_copy)
    out = _refuses_to_start(wal_copy, tmp_path)
    fields = _corruption_fields(out)
    assert Path(fields["file"]).name == victim.name, fields
    assert 0 < int(fields["offset"]) <= size, fields
    assert int(fields["lsn"]) >= int(victim.name[:20]), fields
    assert any(e.get("event") == "writer cannot start" for e in _log_events(out)), out


def test_missing_segment_refuses_to_start(wal_copy: Path, tmp_path: Path) -> None:
    victim, segments = _remove_middle_segment(wal_copy)
    out = _refuses_to_start(wal_copy, tmp_path)
    fields = _corruption_fields(out)
    index = segments.index(victim)
    # The gap shows at the end of the segment before it or at the start of the one after it.
    assert Path(fields["file"]).name in (segments[index - 1].name, segments[index + 1].name)
    assert int(fields["lsn"]) == int(victim.name[:20]), fields


def test_corrupt_last_segment_refuses_to_start(wal_copy: Path, tmp_path: Path) -> None:
    """What the writer does check at open: damage at or below WATERMARK in the last segment."""
    last = sorted(wal_copy.glob("*.wal"))[-1]
    data = bytearray(last.read_bytes())
    data[48] ^= 0x40  # inside the first record's header, far below the watermark
    last.write_bytes(bytes(data))
    out = _refuses_to_start(wal_copy, tmp_path)
    fields = _corruption_fields(out)
    assert Path(fields["file"]).name == last.name and fields["offset"] == "40", fields
    assert int(fields["lsn"]) == int(last.name[:20]), fields
    assert any(e.get("event") == "writer cannot start" for e in _log_events(out)), out


def _clean_start_keeps_everything(
    wal_dir: Path, acked: dict[int, bytes], log_dir: Path
) -> Service:  # fmt: skip
    svc = start_writer(wal_dir, log_dir=log_dir)
    try:
        svc.wait_ready()
        on_disk = wal_contents(wal_dir)
        assert not missing_acked(acked, on_disk), "acknowledged records lost"
        assert len(on_disk) >= max(acked)  # plus any whole record written but not acknowledged
        with grpc.insecure_channel(svc.listen) as ch:
            r = writer_pb2_grpc.WriterServiceStub(ch).AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion("after-restart")), timeout=10
            )
        assert r.receipt.lsn == len(on_disk) + 1, "appending continues at the next LSN"
        with WalReader(wal_dir) as reader:
            assert reader.watermark() == len(on_disk) + 1
        assert verify_wal(wal_dir).ok
    except BaseException:
        svc.kill()
        raise
    return svc


def test_deleted_watermark_is_a_clean_start(
    wal_copy: Path, template: tuple[Path, dict[int, bytes]], tmp_path: Path
) -> None:  # fmt: skip
    (wal_copy / "WATERMARK").unlink()
    svc = _clean_start_keeps_everything(wal_copy, template[1], tmp_path)
    try:
        assert "WATERMARK is missing" in svc.log_text()
    finally:
        svc.kill()


def test_stale_watermark_is_a_clean_start(tmp_path: Path) -> None:
    """WATERMARK put back to a value from earlier in the run (as a lost in-place update would
    leave it): the records past it are whole and valid, so they are kept."""
    wal_dir = tmp_path / "wal"
    svc = start_writer(wal_dir, "--segment-size-bytes", str(SEGMENT_BYTES))
    try:
        svc.wait_ready()
        load = Load(svc.listen, threads=4, seed=11, tag="stale")
        wait_until(lambda: load.count() >= 40, 60, "some acknowledged appends")
        stale = (wal_dir / "WATERMARK").read_bytes()
        wait_until(lambda: load.count() >= 300, 60, "more acknowledged appends")
    finally:
        svc.kill()
    acked = dict(load.stop())
    (wal_dir / "WATERMARK").write_bytes(stale)
    with WalReader(wal_dir) as reader:
        assert reader.watermark() < max(acked), "the watermark really is stale"
    svc = _clean_start_keeps_everything(wal_dir, acked, tmp_path)
    svc.kill()


def _append(stub: writer_pb2_grpc.WriterServiceStub, subject: str, text: str) -> int:
    r = stub.AppendAssertion(
        wpb.AppendAssertionRequest(assertion=assertion(subject, text=text)), timeout=10
    )
    return int(r.receipt.lsn)


def test_disk_full_through_the_writer(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "vol", "1m") as vol:
        wal_dir = vol / "wal"
        svc = start_writer(wal_dir, log_dir=tmp_path)
        try:
            svc.wait_ready()
            filler = vol / "filler"
            free = shutil.disk_usage(vol).free
            filler.write_bytes(b"\0" * (free - 96 * 1024))  # leave ~96 KiB for the log
            acked: dict[int, bytes] = {}
            text = "x" * 3000
            with grpc.insecure_channel(svc.listen) as ch:
                stub = writer_pb2_grpc.WriterServiceStub(ch)
                full = None
                for n in range(1000):
                    try:
                        resp = stub.AppendBatch(
                            wpb.AppendBatchRequest(records=[
                                pb.Record(assertion=assertion(f"full-{n}-{j}", text=text))
                                for j in range(3)
                            ]), timeout=10,
                        )  # fmt: skip
                    except grpc.RpcError as exc:
                        full = exc
                        break
                    acked.update((r.lsn, r.hash) for r in resp.receipts)
                assert full is not None, "the volume never filled up"
                assert full.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, full
                assert "space" in (full.details() or "").lower(), full.details()
                assert acked, "some appends fit before the disk was full"
                # Nothing partial: the log holds exactly the acknowledged records.
                report = verify_wal(wal_dir)
                assert report.ok and not report.warnings, report
                assert wal_contents(wal_dir) == acked
                # Still serving, still refusing cleanly while full.
                assert health_status(svc.listen) == SERVING
                with pytest.raises(grpc.RpcError) as again:
                    _append(stub, "still-full", text * 20)
                assert again.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                # Space returns: appends succeed again, at the next LSN.
                filler.unlink()
                lsn = _append(stub, "space-back", text)
                assert lsn == max(acked) + 1
                for i in range(20):
                    _append(stub, f"space-back-{i}", text)
            assert verify_wal(wal_dir).ok
            assert len(wal_contents(wal_dir)) == max(acked) + 21
        finally:
            svc.kill()


def test_slow_fsync_shows_in_metrics_logs_and_deadlines(powerfs: PowerFS, tmp_path: Path) -> None:
    wal_dir = powerfs.mountpoint / "wal"
    svc = start_writer(wal_dir, "--fsync-warn-seconds", "0.05", log_dir=tmp_path)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            _append(stub, "fast", "warm-up")
            before = scrape(svc.metrics)
            assert metric_value(before, "stemedb_wal_slow_fsyncs_total") == 0
            powerfs.set_fsync_delay(0.3)
            started = time.monotonic()
            lsn = _append(stub, "slow", "slow fsync")
            assert time.monotonic() - started >= 0.3
            after = scrape(svc.metrics)
            assert metric_value(after, "stemedb_wal_slow_fsyncs_total") >= 1
            count = metric_value(after, "stemedb_wal_fsync_duration_seconds_count")
            le = re.findall(
                r'stemedb_wal_fsync_duration_seconds_bucket\{le="([^"]+)"\} (\S+)', after
            )
            under_quarter = max(float(v) for b, v in le if b != "+Inf" and float(b) <= 0.25)
            assert count - under_quarter >= 1, "the histogram holds an fsync slower than 0.25 s"
            assert metric_value(after, "stemedb_wal_fsync_duration_seconds_sum") >= 0.3
            # A deadline shorter than the fsync: DEADLINE_EXCEEDED, and the service goes on.
            powerfs.set_fsync_delay(1.0)
            with pytest.raises(grpc.RpcError) as late:
                stub.AppendAssertion(
                    wpb.AppendAssertionRequest(assertion=assertion("late")), timeout=0.2
                )
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            powerfs.set_fsync_delay(0)
            time.sleep(1.2)  # let the slow commit finish
            next_lsn = _append(stub, "after", "delay removed")
            assert next_lsn in (lsn + 1, lsn + 2)  # the late record may have been committed
        slow = [e for e in _log_events(svc.log_text()) if e.get("event") == "slow fsync"]
        assert slow and float(str(slow[0]["fsync_seconds"])) >= 0.3, svc.log_text()
        assert slow[0]["level"] == "warning"
    finally:
        svc.kill()
    assert verify_wal(wal_dir).ok
    contents = wal_contents(wal_dir)
    assert len(contents) == next_lsn
