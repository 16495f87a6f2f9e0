"""Retention through the real writer: a stale consumer checkpoint no longer pins the log, and
the writer says so in its log and its metrics (issue 10 item 10, retention part)."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import ConsumerCheckpoint, WalReader, write_consumer_checkpoint
from stemedb.wal._segment import list_segments
from tests.faults.faultlib import metric_value, scrape
from tests.faults.test_writer_faults import _append
from tests.support import start_writer, wait_until


def test_writer_ignores_a_stale_consumer(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    hour_ago = time.time_ns() - 3600 * 10**9
    write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("halted-replica", 1, b"", hour_ago))
    svc = start_writer(
        wal_dir,
        "--segment-size-bytes", "4096",
        "--retention",
        "--retention-consumer-stale-seconds", "60",
        log_dir=tmp_path,
    )  # fmt: skip
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            for n in range(60):
                _append(stub, f"s-{n}", "x" * 200)
        wait_until(lambda: len(list_segments(wal_dir)) >= 3, 30, "segments rolled")
        # The only consumer is stale: ignored, and with no live consumer nothing is deleted.
        assert list_segments(wal_dir)[0][0] == 1
        metrics = scrape(svc.metrics)
        assert metric_value(metrics, "stemedb_wal_retention_ignored_consumers") == 1
        assert "ignores consumer halted-replica" in svc.log_text()
        # A live consumer appears: retention now follows it, the stale one no longer pins LSN 1.
        write_consumer_checkpoint(wal_dir, ConsumerCheckpoint("live", 50, b"", time.time_ns()))
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            for n in range(40):
                _append(stub, f"t-{n}", "x" * 200)
        first = list_segments(wal_dir)[0][0]
        assert 1 < first <= 51
        with WalReader(wal_dir) as reader:
            assert reader.first_available_lsn() == first
    finally:
        svc.kill()
