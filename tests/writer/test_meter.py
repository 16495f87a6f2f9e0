"""The meter against a real writer process: budgets, RetryInfo, value refusals, SIGHUP, the WAL's
job envelope, fairness between agents, GetBudget (DESIGN section 12)."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from stemedb import canonical, signing
from stemedb.v1 import meter_pb2, meter_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import dump_wal
from stemedb.walrecord import decode_payload
from tests.support import Service, start_writer, tree_digest, wait_until
from tests.writer.records import KEYS

Stub = writer_pb2_grpc.WriterServiceStub
# One signed assertion request is well under 1 KiB: 1 record + 1 KiB + 1 signature = 3 units.
UNIT_COST = 3


def _signed(key_index: int, text: str) -> pb.Assertion:
    a = pb.Assertion(
        subject="Q1", predicate="p", object=pb.Value(text=text), confidence=0.5,
        source_hash=b"\x07" * 32,
    )  # fmt: skip
    digest = canonical.content_hash(canonical.assertion_bytes(a))
    a.signatures.append(signing.signature_entry(KEYS[key_index], digest))
    return a


def _agent(key_index: int) -> str:
    return signing.public_key_of(KEYS[key_index]).hex()


def _config(path: Path, rate: float, burst: float, **agents: dict[str, float]) -> Path:
    body: dict[str, Any] = {"default": {"rate": rate, "burst": burst}}
    if agents:
        body["agents"] = {_agent(int(k[1:])): v for k, v in agents.items()}
    path.write_text(json.dumps(body))
    return path


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[tuple[Service, Path]]:
    cfg = _config(tmp_path / "meter.json", rate=30.0, burst=9.0)
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    try:
        svc.wait_ready()
        yield svc, cfg
    finally:
        svc.kill()


def _append(stub: Stub, a: pb.Assertion, **job: float) -> wpb.AppendAssertionResponse:
    req = wpb.AppendAssertionRequest(assertion=a)
    if job:
        req.job.CopyFrom(meter_pb2.JobInfo(**job))  # type: ignore[arg-type]
    return stub.AppendAssertion(req, timeout=10)


def _retry_info(err: grpc.RpcError) -> error_details_pb2.RetryInfo | None:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info
    return None


def _wal_dir(svc: Service) -> Path:
    return Path(svc.argv[svc.argv.index("--wal-dir") + 1])


def test_over_value_is_failed_precondition_and_writes_nothing(
    metered: tuple[Service, Path],
) -> None:
    svc, _cfg = metered
    with grpc.insecure_channel(svc.listen) as ch:
        stub = Stub(ch)
        before = tree_digest(_wal_dir(svc))
        with pytest.raises(grpc.RpcError) as err:
            _append(stub, _signed(0, "cheap"), value=UNIT_COST - 1)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "exceeds the declared value" in (err.value.details() or "")
        assert tree_digest(_wal_dir(svc)) == before
        # a declared value at the cost passes; the refusal consumed nothing (3 x 3 = burst 9)
        for i in range(3):
            _append(stub, _signed(0, f"worth it {i}"), value=UNIT_COST)


def test_over_budget_carries_retry_info_then_passes(metered: tuple[Service, Path]) -> None:
    svc, _cfg = metered
    with grpc.insecure_channel(svc.listen) as ch:
        stub = Stub(ch)
        for i in range(3):  # the burst of 9 units
            _append(stub, _signed(0, f"burst {i}"))
        before = tree_digest(_wal_dir(svc))
        with pytest.raises(grpc.RpcError) as err:
            _append(stub, _signed(0, "one too many"))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        info = _retry_info(err.value)
        assert info is not None, "RESOURCE_EXHAUSTED from the meter must carry RetryInfo"
        delay = info.retry_delay.ToTimedelta().total_seconds()
        assert 0 < delay <= UNIT_COST / 30.0 + 0.01
        assert tree_digest(_wal_dir(svc)) == before
        refused_at = time.monotonic()
        wait_until(lambda: _try(stub, _signed(0, "after the wait")), 5.0, "the budget to refill")
        assert time.monotonic() - refused_at >= delay * 0.5  # not before the bucket refilled


def _try(stub: Stub, a: pb.Assertion) -> bool:
    try:
        _append(stub, a)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise
        return False
    return True


def test_over_burst_can_never_pass_and_has_no_retry_info(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "meter.json", rate=1000.0, burst=UNIT_COST - 1)
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch, pytest.raises(grpc.RpcError) as err:
            _append(Stub(ch), _signed(0, "too big for any budget"))
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "can never pass" in (err.value.details() or "")
        assert _retry_info(err.value) is None
    finally:
        svc.kill()


def test_sighup_reloads_and_a_bad_file_keeps_the_old_config(tmp_path: Path) -> None:
    cfg = _config(tmp_path / "meter.json", rate=0.001, burst=UNIT_COST - 1)
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = Stub(ch)
            assert not _try(stub, _signed(0, "refused"))
            _config(cfg, rate=1000.0, burst=100.0)
            svc.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: _try(stub, _signed(0, "after reload")), 10.0, "the reload")
            cfg.write_text('{"default": {"rate": 5}}')  # burst missing: refused, old one stays
            svc.proc.send_signal(signal.SIGHUP)
            wait_until(
                lambda: 'stemedb_writer_meter_reloads_total{result="failed"} 1.0'
                in _metrics(svc), 10.0, "the failed reload to be counted",
            )  # fmt: skip
            assert _try(stub, _signed(0, "old config still in force"))
        assert "default.burst: missing" in svc.log_text()
    finally:
        svc.kill()


def _metrics(svc: Service) -> str:
    with urllib.request.urlopen(f"http://{svc.metrics}/metrics", timeout=5) as resp:
        text: str = resp.read().decode()
    return text


def test_the_job_travels_with_the_first_record_of_each_request(
    metered: tuple[Service, Path],
) -> None:
    svc, _cfg = metered
    with grpc.insecure_channel(svc.listen) as ch:
        stub = Stub(ch)
        _append(stub, _signed(1, "single"), tokens=1200, compute_seconds=1.5, value=10)
        batch = wpb.AppendBatchRequest(
            records=[pb.Record(assertion=_signed(1, "b1")), pb.Record(assertion=_signed(2, "b2"))]
        )
        stub.AppendBatch(batch, timeout=10)
    decoded = [decode_payload(r.record_type, r.payload) for r in dump_wal(_wal_dir(svc))]
    jobs = [d.job for d in decoded]
    assert jobs[0] is not None and jobs[0].agent == _agent(1)
    assert (jobs[0].records, jobs[0].units, jobs[0].tokens) == (1, UNIT_COST, 1200)
    assert (jobs[0].compute_seconds, jobs[0].value) == (1.5, 10.0)
    # a batch is charged once, to its first record's first signer: 2 records + 1 KiB + 2 sigs
    assert jobs[1] is not None and jobs[1].agent == _agent(1) and jobs[1].records == 2
    assert jobs[1].units == 2 + 1 + 2
    assert jobs[2] is None


def test_unmetered_writer_keeps_v1_payloads_and_says_so(tmp_path: Path) -> None:
    svc = start_writer(tmp_path / "wal")
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            _append(Stub(ch), _signed(0, "free"), tokens=5, value=0.5)  # no meter: no refusal
            budget = meter_pb2_grpc.MeterServiceStub(ch).GetBudget(
                meter_pb2.GetBudgetRequest(agent="anonymous"), timeout=5
            )
        assert not budget.metered
        (rec,) = list(dump_wal(tmp_path / "wal"))
        assert rec.record_type == 1 and decode_payload(rec.record_type, rec.payload).job is None
    finally:
        svc.kill()


def test_get_budget_shows_the_live_bucket(metered: tuple[Service, Path]) -> None:
    svc, _cfg = metered
    with grpc.insecure_channel(svc.listen) as ch:
        _append(Stub(ch), _signed(3, "spend"))
        meter = meter_pb2_grpc.MeterServiceStub(ch)
        b = meter.GetBudget(meter_pb2.GetBudgetRequest(agent=_agent(3)), timeout=5)
        assert b.metered and b.rate == 30.0 and b.burst == 9.0
        assert 9.0 - UNIT_COST <= b.tokens < 9.0
        with pytest.raises(grpc.RpcError) as err:
            meter.GetBudget(meter_pb2.GetBudgetRequest(agent=""), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_malformed_config_refuses_to_start_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "meter.json"
    cfg.write_text('{"agents": {"x": {"rate": -1, "burst": 5}}}')
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    assert svc.wait_exit() == 2
    assert "agents.x.rate" in svc.log_text()


def test_one_flooding_agent_does_not_slow_another(tmp_path: Path) -> None:
    """Agent 0 floods from 8 threads; agent 1 writes at 30 units/s against its 50 units/s."""
    rate, burst = 50.0, 10.0
    cfg = _config(tmp_path / "meter.json", rate=rate, burst=burst)
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    stop = threading.Event()
    flood = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as ch:
            stub = Stub(ch)

            def flooder(t: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    ok = _try(stub, _signed(0, f"flood {t} {n}"))
                    with lock:
                        flood["ok" if ok else "refused"] += 1

            threads = [threading.Thread(target=flooder, args=(t,)) for t in range(8)]
            started = time.monotonic()
            for t in threads:
                t.start()
            steady, refused = 0, 0
            for i in range(20):  # 3 units every 0.1 s = 30 units/s
                deadline = started + 0.1 * (i + 1)
                if _try(stub, _signed(1, f"steady {i}")):
                    steady += 1
                else:
                    refused += 1
                time.sleep(max(0.0, deadline - time.monotonic()))
            stop.set()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
        bound = (burst + rate * elapsed) / UNIT_COST + 1
        print(
            f"fairness: {elapsed:.2f} s; flooding agent admitted {flood['ok']} "
            f"(bound {bound:.0f}), refused {flood['refused']}; steady agent {steady}/20 admitted"
        )
        assert steady == 20 and refused == 0
        assert flood["refused"] > 0 and flood["ok"] <= bound
    finally:
        stop.set()
        svc.kill()


def test_mtls_identities_are_budgeted_separately(tmp_path: Path) -> None:
    from tests.runtime.tlslib import ThrowawayCA, write_server_files

    ca = ThrowawayCA("stemedb test CA")
    cert, key = write_server_files(ca, tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    # An unsigned assertion costs 2 units: each identity's burst holds one.
    cfg = _config(tmp_path / "meter.json", rate=0.001, burst=2.0)
    svc = start_writer(tmp_path / "wal", "--tls-cert", str(cert), "--tls-key", str(key),
                       "--tls-client-ca", str(tmp_path / "ca.crt"),
                       "--meter-config", str(cfg))  # fmt: skip

    def creds(cn: str) -> grpc.ChannelCredentials:
        client_key, client_cert = ca.issue(cn, server=False)
        return grpc.ssl_channel_credentials(
            root_certificates=ca.pem, private_key=client_key, certificate_chain=client_cert
        )

    unsigned = pb.Assertion(
        subject="Q2", predicate="p", object=pb.Value(text="x"), confidence=0.5,
        source_hash=b"\x07" * 32,
    )  # fmt: skip
    alice, bob = creds("agent-alice"), creds("agent-bob")
    try:
        svc.wait_ready(credentials=alice)
        with grpc.secure_channel(svc.listen, alice) as ch:
            _append(Stub(ch), unsigned)
            with pytest.raises(grpc.RpcError) as err:
                _append(Stub(ch), unsigned)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "agent-alice" in (err.value.details() or "")
            spent = meter_pb2_grpc.MeterServiceStub(ch).GetBudget(
                meter_pb2.GetBudgetRequest(agent="agent-alice"), timeout=5
            )
            assert spent.tokens < 2.0
        with grpc.secure_channel(svc.listen, bob) as ch:
            _append(Stub(ch), unsigned)  # bob's own bucket is full
        decoded = [decode_payload(r.record_type, r.payload) for r in dump_wal(_wal_dir(svc))]
        assert [d.job.agent for d in decoded if d.job] == ["agent-alice", "agent-bob"]
    finally:
        svc.kill()
