"""A fatal WAL error turns the writer's health NOT_SERVING at once (issue 10, item 6).

The fault is real: the writer runs under a file-size limit (RLIMIT_FSIZE, set with prlimit).
Python ignores SIGXFSZ, so the write that would cross the limit fails with EFBIG, an I/O error
the WAL cannot recover from in place (unlike ENOSPC): it stops, and only a restart recovers.
Probes must then fail, so that Kubernetes restarts the pod instead of routing appends to it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import pytest

from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.faults.faultlib import metric_value, scrape, tmpfs
from tests.support import (
    BIN,
    NOT_SERVING,
    SERVING,
    Service,
    free_port,
    health_status,
    start_writer,
)  # fmt: skip
from tests.writer.records import assertion

FILE_SIZE_LIMIT_BYTES = 1024 * 1024


def _writer_with_file_size_limit(wal_dir: Path, *extra: str) -> Service:
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        pytest.fail("prlimit (util-linux) is needed to provoke an I/O error")
    listen, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    argv = [
        prlimit, f"--fsize={FILE_SIZE_LIMIT_BYTES}", "--", str(BIN / "stemedb-writer"),
        "--wal-dir", str(wal_dir), "--listen", listen, "--metrics-listen", metrics,
        "--verify-workers", "0", *extra,
    ]  # fmt: skip
    return Service(argv, listen, metrics, wal_dir.parent / "writer.log")


@pytest.mark.parametrize(
    "extra", [(), ("--frontend-processes", "2")], ids=["single-process", "frontends-2"]
)
def test_fatal_wal_error_turns_health_not_serving(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """With front ends, the owner tells every front end before it answers the failed append."""
    svc = _writer_with_file_size_limit(tmp_path / "wal", *extra)
    try:
        svc.wait_ready(90)
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            ok = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
            assert ok.receipt.lsn == 1
            assert metric_value(scrape(svc.metrics), "stemedb_writer_wal_fatal") == 0
            big = assertion("big")
            big.object.blob = b"\x00" * FILE_SIZE_LIMIT_BYTES  # the segment cannot hold it
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=big), timeout=10)
            assert info.value.code() == grpc.StatusCode.INTERNAL, info.value.details()
            # The health flipped before the failing call was answered.
            assert health_status(svc.listen, "") == NOT_SERVING
            assert health_status(svc.listen, "stemedb.v1.WriterService") == NOT_SERVING
            assert metric_value(scrape(svc.metrics), "stemedb_writer_wal_fatal") == 1
            # Every later append fails too, and the state stays.
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion("n")), 10)
            assert info.value.code() == grpc.StatusCode.INTERNAL
            assert health_status(svc.listen, "") == NOT_SERVING
        lines = [json.loads(line) for line in svc.log_text().splitlines() if line.startswith("{")]
        fatal = [d for d in lines if d.get("event", "").startswith("WAL unusable")]
        assert len(fatal) == 1, lines
        assert "File too large" in fatal[0]["reason"]
        assert fatal[0]["durable_lsn"] == 1
        assert svc.proc.poll() is None  # the process stays up; the probes restart it
    finally:
        svc.kill()


def test_disk_full_is_not_fatal(tmp_path: Path) -> None:
    """ENOSPC is an error the writer recovers from (appends work again once space returns):
    RESOURCE_EXHAUSTED, and health stays SERVING."""
    with tmpfs(tmp_path / "vol", "512k") as vol:
        svc = start_writer(vol / "wal", "--verify-workers", "0", log_dir=tmp_path)
        try:
            svc.wait_ready()
            with grpc.insecure_channel(svc.listen) as ch:
                stub = writer_pb2_grpc.WriterServiceStub(ch)
                big = assertion("big")
                big.object.blob = b"\x00" * (600 * 1024)  # more than the volume holds
                with pytest.raises(grpc.RpcError) as info:
                    stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=big), timeout=10)
                assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                r = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), 10)
                assert r.receipt.lsn == 1
            assert health_status(svc.listen) == SERVING
            assert metric_value(scrape(svc.metrics), "stemedb_writer_wal_fatal") == 0
        finally:
            svc.kill()
