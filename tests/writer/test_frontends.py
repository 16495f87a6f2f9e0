"""``--frontend-processes``: front-end processes feeding the one WAL owner, on real processes.

The contract subset runs against a writer with 2 front ends (and, for comparison of the exact
answers, the single-process writer); the lifecycle tests SIGKILL the owner and one front end
under load and drain on SIGTERM, checking that every acknowledged record is in the WAL.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from stemedb import canonical
from stemedb.v1 import meter_pb2, meter_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import dump_wal
from stemedb.walrecord import decode_payload
from stemedb.writer import _frames as fr
from tests.faults.faultlib import metric_value, scrape
from tests.support import (
    NOT_SERVING,
    SERVING,
    Service,
    health_status,
    missing_tool,
    start_writer,
    wait_until,
)
from tests.writer.records import assertion, epoch, vote
from tests.writer.test_lifecycle import _check_wal_holds, _children, _Load

# Front ends verify inline here (each would start its own verify workers: two more
# interpreters to start per front end on a loaded 2-core machine).
FRONTENDS = ("--frontend-processes", "2", "--verify-workers", "0")
START_SECONDS = 90.0  # three interpreters start on a loaded 2-core machine


def _metrics(svc: Service) -> str:
    return scrape(svc.metrics)


def _frontend_pids(svc: Service) -> list[int]:
    return _children(svc.proc.pid) if svc.proc.poll() is None else []


def _started(tmp: Path, *extra: str) -> Service:
    svc = start_writer(tmp / "wal", *FRONTENDS, *extra)
    svc.wait_ready(START_SECONDS)
    # Health answers once one front end serves; the owner logs "writer started" once all do.
    wait_until(lambda: '"event": "writer started"' in svc.log_text(), START_SECONDS,
               "every front end to serve")  # fmt: skip
    return svc


@pytest.fixture(scope="module")
def fe_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = _started(tmp_path_factory.mktemp("fe2"))
    try:
        yield svc
    finally:
        svc.kill()


@pytest.fixture(scope="module")
def single_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = start_writer(tmp_path_factory.mktemp("fe0") / "wal")
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.kill()


@pytest.fixture(scope="module", params=["single_writer", "fe_writer"],
                ids=["single-process", "frontends-2"])  # fmt: skip
def writer_of(request: pytest.FixtureRequest) -> Service:
    svc: Service = request.getfixturevalue(request.param)
    return svc


@pytest.fixture(scope="module")
def stub_of(writer_of: Service) -> Iterator[writer_pb2_grpc.WriterServiceStub]:
    with grpc.insecure_channel(writer_of.listen) as channel:
        yield writer_pb2_grpc.WriterServiceStub(channel)


def _last_lsn(svc: Service) -> int:
    return int(metric_value(_metrics(svc), "stemedb_wal_last_lsn"))


def test_receipts_of_every_rpc(writer_of: Service, stub_of: writer_pb2_grpc.WriterServiceStub
                               ) -> None:  # fmt: skip
    first = _last_lsn(writer_of) + 1
    a = assertion("fe-receipts", signers=1)
    ra = stub_of.AppendAssertion(wpb.AppendAssertionRequest(assertion=a), timeout=10).receipt
    assert ra.hash == canonical.content_hash(canonical.assertion_bytes(a))
    v = vote(ra.hash)
    rv = stub_of.AppendVote(wpb.AppendVoteRequest(vote=v), timeout=10).receipt
    assert rv.hash == canonical.content_hash(canonical.vote_bytes(v))
    e = epoch("fe epoch")
    re_ = stub_of.AppendEpoch(wpb.AppendEpochRequest(epoch=e), timeout=10).receipt
    assert re_.hash == canonical.content_hash(canonical.epoch_bytes(e))
    recs = [pb.Record(assertion=assertion(f"fe-batch-{i}")) for i in range(7)]
    rb = stub_of.AppendBatch(wpb.AppendBatchRequest(records=recs), timeout=10).receipts
    assert [r.hash for r in rb] == [
        canonical.content_hash(canonical.assertion_bytes(r.assertion)) for r in recs
    ]
    lsns = [ra.lsn, rv.lsn, re_.lsn, *(r.lsn for r in rb)]
    assert lsns == list(range(first, first + 10)), lsns
    for r in (ra, rv, re_, *rb):
        assert r.tree_size >= r.lsn


def test_concurrent_calls_get_distinct_consecutive_lsns(
    writer_of: Service, stub_of: writer_pb2_grpc.WriterServiceStub
) -> None:
    first = _last_lsn(writer_of) + 1
    got: list[int] = []
    lock = threading.Lock()

    def run(t: int) -> None:
        # One channel per thread: with front ends, the kernel spreads the connections.
        with grpc.insecure_channel(writer_of.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            for i in range(15):
                if i % 5 == 0:
                    recs = [pb.Record(assertion=assertion(f"c{t}-{i}-{j}")) for j in range(4)]
                    resp = stub.AppendBatch(wpb.AppendBatchRequest(records=recs), timeout=10)
                    batch = [r.lsn for r in resp.receipts]
                    assert batch == list(range(batch[0], batch[0] + 4))
                else:
                    r = stub.AppendAssertion(
                        wpb.AppendAssertionRequest(assertion=assertion(f"c{t}-{i}")), timeout=10
                    )
                    batch = [r.receipt.lsn]
                with lock:
                    got.extend(batch)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(got) == list(range(first, first + len(got))), "LSNs distinct and contiguous"
    assert len(got) == 6 * (12 + 3 * 4)


@pytest.mark.parametrize(
    ("request_", "code", "details"),
    [
        (wpb.AppendBatchRequest(records=[pb.Record(assertion=assertion("ok")),
                                         pb.Record(assertion=pb.Assertion(subject="x"))]),
         grpc.StatusCode.INVALID_ARGUMENT, "records[1].assertion."),
        (wpb.AppendAssertionRequest(), grpc.StatusCode.INVALID_ARGUMENT, "assertion: is required"),
    ],
    ids=["batch-record-1-invalid", "assertion-missing"],
)  # fmt: skip
def test_validation_errors_name_the_field_and_write_nothing(
    writer_of: Service, stub_of: writer_pb2_grpc.WriterServiceStub, request_: object,
    code: grpc.StatusCode, details: str,
) -> None:  # fmt: skip
    before = _last_lsn(writer_of)
    method = (
        stub_of.AppendBatch if isinstance(request_, wpb.AppendBatchRequest)
        else stub_of.AppendAssertion
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        method(request_, timeout=10)
    assert err.value.code() == code
    assert details in (err.value.details() or ""), err.value.details()
    assert _last_lsn(writer_of) == before


def test_bad_signature_is_refused_naming_it(
    writer_of: Service, stub_of: writer_pb2_grpc.WriterServiceStub
) -> None:
    before = _last_lsn(writer_of)
    a = assertion("fe-badsig", signers=1)
    a.signatures[0].signature = bytes(64)
    recs = [pb.Record(assertion=assertion("fe-fine")), pb.Record(assertion=a)]
    with pytest.raises(grpc.RpcError) as err:
        stub_of.AppendBatch(wpb.AppendBatchRequest(records=recs), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "records[1].assertion.signatures[0].signature" in (err.value.details() or "")
    assert _last_lsn(writer_of) == before


def test_health_and_reflection(writer_of: Service) -> None:
    assert health_status(writer_of.listen, "") == SERVING
    assert health_status(writer_of.listen, "stemedb.v1.WriterService") == SERVING
    with grpc.insecure_channel(writer_of.listen) as ch:
        responses = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"stemedb.v1.WriterService", "stemedb.v1.MeterService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names  # fmt: skip


def test_metrics_count_front_end_calls_and_are_promtool_clean(
    writer_of: Service, stub_of: writer_pb2_grpc.WriterServiceStub
) -> None:
    handled = ('grpc_server_handled_total{grpc_code="OK",grpc_method="AppendAssertion",'
               'grpc_service="stemedb.v1.WriterService",grpc_type="unary"}')  # fmt: skip
    ok = 'stemedb_writer_records_total{kind="assertion",outcome="ok"}'
    before = _metrics(writer_of)
    calls0 = metric_value(before, handled) if handled + " " in before else 0.0
    records0 = metric_value(before, ok)
    for i in range(5):
        stub_of.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion(f"m{i}")),
                                timeout=10)  # fmt: skip
    text = _metrics(writer_of)
    # Every call is counted at once, whichever front end served it (asked at scrape time).
    assert metric_value(text, handled) == calls0 + 5
    assert metric_value(text, ok) == records0 + 5
    assert "grpc_server_handling_seconds_bucket" in text
    assert "stemedb_wal_fsync_duration_seconds_bucket" in text
    if "--frontend-processes" in writer_of.argv:
        assert metric_value(text, "stemedb_writer_frontend_processes") == 2
        assert metric_value(text, "stemedb_writer_frontend_frames_total") >= 5
        assert metric_value(text, "stemedb_writer_frontend_records_total") >= 5
    else:
        assert "stemedb_writer_frontend" not in text  # the single process is unchanged
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_tool("promtool is not installed")
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr


@pytest.mark.parametrize("extra", [(), FRONTENDS], ids=["single-process", "frontends-2"])
def test_the_meter_is_one_for_all_front_ends(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """One agent's bucket is the owner's: calls spread over both front ends draw from it, and
    the answers (codes, RetryInfo, GetBudget, the WAL's job envelopes) equal the single
    process's."""
    meter = tmp_path / "meter.json"
    costs = {"record": 1, "kib": 0, "signature": 0}
    meter.write_text(json.dumps({"costs": costs, "default": {"rate": 0.001, "burst": 10}}))
    svc = start_writer(tmp_path / "wal", *extra, "--meter-config", str(meter))
    try:
        svc.wait_ready(START_SECONDS)
        if extra:
            wait_until(lambda: '"event": "writer started"' in svc.log_text(), START_SECONDS,
                       "every front end to serve")  # fmt: skip
        codes = []
        for i in range(14):
            with grpc.insecure_channel(svc.listen) as ch:  # a new connection each: both fronts
                stub = writer_pb2_grpc.WriterServiceStub(ch)
                try:
                    stub.AppendAssertion(
                        wpb.AppendAssertionRequest(assertion=assertion(f"metered-{i}")), timeout=10
                    )
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())
                    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
                    assert status is not None and status.details, "RetryInfo expected"
                    info = error_details_pb2.RetryInfo()
                    assert status.details[0].Unpack(info)
                    assert info.retry_delay.ToTimedelta().total_seconds() > 0
        assert codes == [grpc.StatusCode.OK] * 10 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 4
        with grpc.insecure_channel(svc.listen) as ch:
            budget = meter_pb2_grpc.MeterServiceStub(ch).GetBudget(  # type: ignore[no-untyped-call]
                meter_pb2.GetBudgetRequest(agent="anonymous"), timeout=10
            )
        assert budget.metered and budget.burst == 10 and budget.tokens < 1
        text = _metrics(svc)
        assert metric_value(text, 'stemedb_writer_meter_requests_total{outcome="admitted"}') == 10
        assert metric_value(text, 'stemedb_writer_meter_requests_total{outcome="over_budget"}') == 4
        assert metric_value(text, "stemedb_writer_meter_units_total") == 10
        # SIGHUP to the writer (the owner) reloads the config; front ends ignore SIGHUP.
        meter.write_text(json.dumps({"costs": costs, "default": {"rate": 1000, "burst": 20}}))
        # With front ends (and no verify workers, which SIGHUP ends in either mode) to the
        # whole process group: the front ends must survive it.
        (os.killpg if extra else os.kill)(svc.proc.pid, signal.SIGHUP)
        wait_until(lambda: '"event": "meter config reloaded"' in svc.log_text(), 10,
                   "the reload")  # fmt: skip
        with grpc.insecure_channel(svc.listen) as ch:
            r = writer_pb2_grpc.WriterServiceStub(ch).AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion("after-reload")), timeout=10
            )
        assert r.receipt.lsn == 11
        assert svc.proc.poll() is None
        if extra:
            assert len(_frontend_pids(svc)) == 2
            assert "writer front end exited" not in svc.log_text()
    finally:
        svc.kill()
    jobs = [decode_payload(r.record_type, r.payload).job for r in dump_wal(tmp_path / "wal")]
    assert [(j.agent, j.records, j.units) if j else None for j in jobs] == [
        ("anonymous", 1, 1)
    ] * 11


def test_malformed_frame_is_refused_and_the_owner_carries_on(fe_writer: Service) -> None:
    svc = fe_writer
    refused0 = metric_value(_metrics(svc), "stemedb_writer_frontend_malformed_frames_total")
    before = _last_lsn(svc)
    started = next(json.loads(line) for line in svc.log_text().splitlines()
                   if '"event": "writer started"' in line)  # fmt: skip
    path = started["frontend_socket"]
    assert (os.stat(path).st_mode & 0o777) == 0o600
    assert (os.stat(os.path.dirname(path)).st_mode & 0o777) == 0o700
    body = b"garbage"
    bad = [
        b"NOPE" + bytes(16),  # wrong magic
        struct.pack("<4sB3sIII", b"SWF1", fr.APPEND, b"\0\0\0", 1, len(body), 0) + body,
        struct.pack("<4sB3sIII", b"SWF1", fr.HELLO, b"\0\0\0", 0, 1 << 30, 0),  # too big
        fr.encode_hello(b"\0" * 32, 0, 1),  # wrong token
    ]
    for frame in bad:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(path)
            s.sendall(frame)
            assert s.recv(1) == b""  # the owner hangs up
    wait_until(lambda: svc.log_text().count("frame refused") >= len(bad), 10,
               "every malformed frame to be logged")  # fmt: skip
    assert svc.proc.poll() is None
    with grpc.insecure_channel(svc.listen) as ch:
        r = writer_pb2_grpc.WriterServiceStub(ch).AppendAssertion(
            wpb.AppendAssertionRequest(assertion=assertion("after")), timeout=10
        )
    assert r.receipt.lsn == before + 1
    refused = metric_value(_metrics(svc), "stemedb_writer_frontend_malformed_frames_total")
    assert refused == refused0 + len(bad)


def test_sigkill_of_the_owner_under_load_loses_nothing_acknowledged(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    svc = _started(tmp_path)
    fronts = _frontend_pids(svc)
    assert len(fronts) == 2, fronts
    load = _Load(svc.listen, threads=4, seed=seed, reconnect=True)
    wait_until(lambda: len(load.acked) > 50, 60, "acknowledged appends")
    time.sleep(rng.uniform(0, 0.2))  # a random moment under load, bounded
    svc.kill()
    # PR_SET_PDEATHSIG: the front ends die with the owner, answering nothing more.
    wait_until(lambda: not any(Path(f"/proc/{p}/stat").exists() and
                               Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"
                               for p in fronts), 10, "the front ends to exit")  # fmt: skip
    load.stop()
    total = _check_wal_holds(tmp_path / "wal", load.acked)
    assert total >= len(load.acked)
    # A restart (single process) recovers and appends at the next LSN.
    again = start_writer(tmp_path / "wal")
    try:
        again.wait_ready()
        with grpc.insecure_channel(again.listen) as ch:
            r = writer_pb2_grpc.WriterServiceStub(ch).AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion("next")), timeout=10
            )
        assert r.receipt.lsn == total + 1
    finally:
        again.kill()


def test_sigkill_of_a_front_end_restarts_it_then_sigterm_drains(tmp_path: Path, seed: int) -> None:
    """One front end SIGKILLed under load: clients reconnect to its sibling, the owner starts
    it again; then SIGTERM under load drains both front ends before the log closes. Every
    acknowledged record is in the WAL."""
    svc = _started(tmp_path)
    try:
        load = _Load(svc.listen, threads=4, seed=seed, reconnect=True)
        wait_until(lambda: len(load.acked) > 50, 60, "acknowledged appends")
        victim = _frontend_pids(svc)[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: "writer front end restarting" in svc.log_text(), 30,
                   "the owner to restart the front end")  # fmt: skip
        wait_until(lambda: svc.log_text().count("writer front end serving") >= 3, START_SECONDS,
                   "the new front end to serve")  # fmt: skip
        fronts = _frontend_pids(svc)
        assert len(fronts) == 2 and victim not in fronts, fronts
        acked = len(load.acked)
        wait_until(lambda: len(load.acked) > acked + 50, 60, "appends after the restart")
        assert metric_value(_metrics(svc), "stemedb_writer_frontend_restarts_total") == 1
        with grpc.insecure_channel(svc.listen) as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            assert next(watch).status == SERVING
            started = time.monotonic()
            code = svc.terminate(timeout_seconds=30)
            statuses = [msg.status for msg in watch]
        elapsed = time.monotonic() - started
        load.stop()
    finally:
        svc.kill()
    print(f"exit after SIGTERM under load: {elapsed:.2f} s")
    assert code == 0, svc.log_text()
    assert statuses == [NOT_SERVING], statuses
    assert set(load.errors) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    log = svc.log_text()
    assert log.count('"event": "writer front end stopped"') == 2, log
    assert log.rindex("writer front end stopped") < log.index('"event": "writer stopped"')
    assert not any(Path(f"/proc/{p}").exists() for p in fronts)
    _check_wal_holds(tmp_path / "wal", load.acked)


def test_frames_refuse_what_is_malformed() -> None:
    requests = [fr.AppendRequest(7, [(1, b"h" * 32 + b"rec")], [b"suffix"])]
    frame = fr.encode_append(requests)
    header = fr.decode_header(frame[: fr.HEADER.size])
    body = frame[fr.HEADER.size :]
    assert fr.decode_append(header, body) == requests
    flipped = body[:-1] + bytes([body[-1] ^ 1])
    with pytest.raises(fr.FrameError, match="checksum"):
        fr.check_body(header, flipped)
    with pytest.raises(fr.FrameError, match="record type 9"):
        fr.decode_append(header, body[:13] + b"\x09" + body[14:])
    with pytest.raises(fr.FrameError, match="do not fit"):
        fr.decode_append(header, body[:-3])
    with pytest.raises(fr.FrameError, match="the header says"):
        fr.decode_append(fr.Header(fr.APPEND, 2, len(body), zlib.crc32(body)), body)
    with pytest.raises(fr.FrameError, match="bound"):
        fr.decode_header(struct.pack("<4sB3sIII", b"SWF1", fr.APPEND, b"\0\0\0",
                                     fr.FRAME_RECORDS_MAX + 1, 0, 0))  # fmt: skip
    outcomes = [fr.Outcome(1, (5, 6), 6), fr.Outcome(2, code=3, message="records[0]: bad")]
    result = fr.encode_result(outcomes)
    assert fr.decode_result(result[fr.HEADER.size :]) == outcomes
    with pytest.raises(fr.FrameError):
        fr.decode_result(result[fr.HEADER.size : -2])


def test_a_front_end_that_keeps_dying_stops_the_writer(tmp_path: Path) -> None:
    """Restarts are bounded: past 5 within 60 s the owner drains the rest and exits 1."""
    svc = _started(tmp_path)
    try:
        killed: set[int] = set()
        while svc.proc.poll() is None and len(killed) < 20:
            fresh = [p for p in _frontend_pids(svc) if p not in killed]
            for pid in fresh[:1]:
                with contextlib.suppress(ProcessLookupError):  # it exited by itself (drain)
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            if not fresh:
                time.sleep(0.02)  # polling for the next process the owner starts
        assert svc.wait_exit(60) == 1, svc.log_text()
    finally:
        svc.kill()
    log = svc.log_text()
    assert log.count('"event": "writer front end restarting"') == 5, log
    assert "writer front end cannot be kept running: stopping the writer" in log
    assert '"event": "writer stopped"' in log
