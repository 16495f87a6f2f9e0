"""The service shell in real processes: health answers while the data path is saturated, and
the ingestor serves TLS and mutual TLS, with a plaintext health-only port for probes."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from stemedb.v1 import store_pb2, store_pb2_grpc
from tests.runtime.tlslib import ThrowawayCA, write_server_files
from tests.support import SERVING, free_port, health_status, start_ingestor, wait_until

_FAR_LSN = 10**15  # never applied: the read parks until its deadline
_WAIT_SECONDS = 60.0
_KEY = b"H:" + b"0" * 64


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    wal, db = tmp_path / "wal", tmp_path / "db"
    wal.mkdir()
    return wal, db


def test_health_answers_while_the_data_path_is_saturated(tmp_path: Path) -> None:
    limit, extra = 8, 4
    wal, db = _dirs(tmp_path)
    svc = start_ingestor(
        wal, db, "--rpcs-concurrent-max", str(limit), "--min-lsn-waiters-max", "1000"
    )
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            stub = store_pb2_grpc.StoreServiceStub(channel)
            request = store_pb2.GetRequest(key=_KEY, min_lsn=_FAR_LSN)
            calls = [stub.Get.future(request, timeout=_WAIT_SECONDS) for _ in range(limit + extra)]
            # The calls beyond the limit are refused at once; the others stay parked.
            wait_until(
                lambda: sum(c.done() for c in calls) >= extra, 30, "the extra calls to be refused"
            )
            done = [c for c in calls if c.done()]
            assert len(done) == extra
            assert {c.code() for c in done} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            # Health (the probe) and reflection still answer, promptly, on the same port.
            started = time.monotonic()
            for name in ("", "stemedb.v1.StoreService"):
                assert health_status(svc.listen, name) == SERVING
            assert time.monotonic() - started < 2.0
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == SERVING
            assert sum(c.done() for c in calls) == extra, "the parked reads are still waiting"
            assert "--rpcs-concurrent-max" in (done[0].details() or "")
            # A further data call is still refused, and none of the parked ones was dropped.
            with pytest.raises(grpc.RpcError) as info:
                stub.Get(request, timeout=5)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # The refused calls are counted as go-grpc-prometheus counts them.
            refused = _handled(_metrics_text(svc.metrics), "Get", "ResourceExhausted")
            assert refused == extra + 1
            for c in calls:
                c.cancel()
        # Once the waits are gone, data calls are served again.
        with grpc.insecure_channel(svc.listen) as channel:
            stub = store_pb2_grpc.StoreServiceStub(channel)
            wait_until(
                lambda: _get_ok(stub), 30, "a read to be served once the parked waits are cancelled"
            )
    finally:
        svc.kill()


def _metrics_text(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def _handled(metrics: str, method: str, code: str) -> float:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "grpc_server_handled_total"
                and labels.get("grpc_method") == method
                and labels.get("grpc_code") == code
            ):
                return sample.value
    return 0.0


def _get_ok(stub: store_pb2_grpc.StoreServiceStub) -> bool:
    try:
        return stub.Get(store_pb2.GetRequest(key=_KEY), timeout=5).found is False
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return False
        raise


def _get(target: str, creds: grpc.ChannelCredentials) -> store_pb2.GetResponse:
    with grpc.secure_channel(target, creds) as channel:
        stub = store_pb2_grpc.StoreServiceStub(channel)
        response: store_pb2.GetResponse = stub.Get(store_pb2.GetRequest(key=_KEY), timeout=10)
        return response


def test_ingestor_tls_with_a_plaintext_health_port(tmp_path: Path) -> None:
    ca = ThrowawayCA("stemedb test CA")
    cert, key = write_server_files(ca, tmp_path)
    health_listen = f"127.0.0.1:{free_port()}"
    wal, db = _dirs(tmp_path)
    svc = start_ingestor(
        wal, db, "--tls-cert", str(cert), "--tls-key", str(key), "--health-listen", health_listen
    )
    creds = grpc.ssl_channel_credentials(root_certificates=ca.pem)
    try:
        svc.wait_ready(credentials=creds)
        assert _get(svc.listen, creds).found is False
        # Plaintext is refused on the service port...
        with grpc.insecure_channel(svc.listen) as channel, pytest.raises(grpc.RpcError):
            store_pb2_grpc.StoreServiceStub(channel).Get(store_pb2.GetRequest(key=_KEY), timeout=3)
        # ...and a client that does not trust the CA cannot connect.
        with pytest.raises(grpc.RpcError) as info:
            _get(svc.listen, grpc.ssl_channel_credentials(ThrowawayCA("someone else").pem))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # The probe port answers health in plaintext, including the apply loop's own name...
        assert health_status(health_listen, "") == SERVING
        assert health_status(health_listen, "stemedb.v1.StoreService") == SERVING
        wait_until(
            lambda: health_status(health_listen, "stemedb.ingest") == SERVING, 30,
            "stemedb.ingest to be SERVING on the health port",
        )  # fmt: skip
        # ...and nothing else: no reads without TLS there.
        with grpc.insecure_channel(health_listen) as channel:
            with pytest.raises(grpc.RpcError) as info:
                store_pb2_grpc.StoreServiceStub(channel).Get(
                    store_pb2.GetRequest(key=_KEY), timeout=3
                )
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert '"tls": true' in svc.log_text()
    finally:
        svc.kill()


def test_ingestor_mutual_tls(tmp_path: Path) -> None:
    ca = ThrowawayCA("stemedb test CA")
    cert, key = write_server_files(ca, tmp_path)
    client_key, client_cert = ca.issue("agent-7", server=False)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    wal, db = _dirs(tmp_path)
    svc = start_ingestor(
        wal, db, "--tls-cert", str(cert), "--tls-key", str(key),
        env={"STEMEDB_TLS_CLIENT_CA": str(tmp_path / "ca.crt")},
    )  # fmt: skip
    good = grpc.ssl_channel_credentials(
        root_certificates=ca.pem, private_key=client_key, certificate_chain=client_cert
    )
    try:
        svc.wait_ready(credentials=good)
        assert _get(svc.listen, good).found is False
        # Without a client certificate the handshake fails.
        with pytest.raises(grpc.RpcError) as info:
            _get(svc.listen, grpc.ssl_channel_credentials(root_certificates=ca.pem))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # A client certificate from another CA is refused.
        rogue_key, rogue_cert = ThrowawayCA("rogue").issue("mallory", server=False)
        rogue = grpc.ssl_channel_credentials(
            root_certificates=ca.pem, private_key=rogue_key, certificate_chain=rogue_cert
        )
        with pytest.raises(grpc.RpcError) as info:
            _get(svc.listen, rogue)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Health needs the client certificate too when no --health-listen is given.
        assert health_status(svc.listen, "", grpc.ssl_channel_credentials(ca.pem)) is None
        assert health_status(svc.listen, "", good) == SERVING
    finally:
        svc.kill()


def test_ingestor_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    wal, db = _dirs(tmp_path)
    svc = start_ingestor(wal, db, "--tls-cert", str(tmp_path / "server.crt"))
    assert svc.wait_exit() == 2
    assert "--tls-cert and --tls-key go together" in svc.log_text()
