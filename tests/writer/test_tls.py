"""TLS and mutual TLS, with a throwaway CA made in the test (the cryptography package)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.runtime.tlslib import ThrowawayCA, write_server_files
from tests.support import SERVING, free_port, health_status, start_writer
from tests.writer.records import assertion

_CA = ThrowawayCA  # the name tests/client/test_live_client.py imports


def _append(target: str, creds: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(target, creds) as ch:
        stub = writer_pb2_grpc.WriterServiceStub(ch)
        r = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
        return int(r.receipt.lsn)


def test_tls(tmp_path: Path) -> None:
    ca = ThrowawayCA("stemedb test CA")
    key, cert = ca.issue("localhost", server=True)
    (tmp_path / "server.key").write_bytes(key)
    (tmp_path / "server.crt").write_bytes(cert)
    svc = start_writer(tmp_path / "wal", "--tls-cert", str(tmp_path / "server.crt"),
                       "--tls-key", str(tmp_path / "server.key"))  # fmt: skip
    creds = grpc.ssl_channel_credentials(root_certificates=ca.pem)
    try:
        svc.wait_ready(credentials=creds)
        assert _append(svc.listen, creds) == 1
        # A client that does not trust the CA cannot connect.
        other = ThrowawayCA("someone else")
        with pytest.raises(grpc.RpcError) as info:
            _append(svc.listen, grpc.ssl_channel_credentials(root_certificates=other.pem))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plaintext is refused too.
        with grpc.insecure_channel(svc.listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            with pytest.raises(grpc.RpcError):
                stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=3)
    finally:
        svc.kill()


def test_mutual_tls(tmp_path: Path) -> None:
    ca = ThrowawayCA("stemedb test CA")
    key, cert = ca.issue("localhost", server=True)
    client_key, client_cert = ca.issue("agent-7", server=False)
    (tmp_path / "server.key").write_bytes(key)
    (tmp_path / "server.crt").write_bytes(cert)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    svc = start_writer(tmp_path / "wal", "--tls-cert", str(tmp_path / "server.crt"),
                       "--tls-key", str(tmp_path / "server.key"),
                       "--tls-client-ca", str(tmp_path / "ca.crt"))  # fmt: skip
    good = grpc.ssl_channel_credentials(
        root_certificates=ca.pem, private_key=client_key, certificate_chain=client_cert
    )
    try:
        svc.wait_ready(credentials=good)
        assert _append(svc.listen, good) == 1
        # Without a client certificate the handshake fails.
        with pytest.raises(grpc.RpcError) as info:
            _append(svc.listen, grpc.ssl_channel_credentials(root_certificates=ca.pem))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # A client certificate from another CA is refused.
        rogue = ThrowawayCA("rogue")
        rk, rc = rogue.issue("mallory", server=False)
        with pytest.raises(grpc.RpcError) as info:
            _append(svc.listen, grpc.ssl_channel_credentials(
                root_certificates=ca.pem, private_key=rk, certificate_chain=rc))  # fmt: skip
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        svc.kill()


@pytest.mark.parametrize(
    "extra", [(), ("--frontend-processes", "2", "--verify-workers", "0")],
    ids=["single-process", "frontends-2"],
)  # fmt: skip
def test_plaintext_health_port_with_tls(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """With front ends, each serves TLS and the health port (both shared, SO_REUSEPORT)."""
    ca = ThrowawayCA("stemedb test CA")
    cert, key = write_server_files(ca, tmp_path)
    health_listen = f"127.0.0.1:{free_port()}"
    svc = start_writer(tmp_path / "wal", "--tls-cert", str(cert), "--tls-key", str(key), *extra,
                       env={"STEMEDB_HEALTH_LISTEN": health_listen})  # fmt: skip
    creds = grpc.ssl_channel_credentials(root_certificates=ca.pem)
    try:
        svc.wait_ready(90, credentials=creds)
        # Probes that cannot speak TLS get the same answer on the health port...
        for name in ("", "stemedb.v1.WriterService"):
            assert health_status(health_listen, name) == SERVING
        assert health_status(svc.listen, "") is None  # (the main port is TLS-only)
        # ...which serves health and nothing else.
        with grpc.insecure_channel(health_listen) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            with pytest.raises(grpc.RpcError) as info:
                stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=3)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert _append(svc.listen, creds) == 1
        # SIGTERM still drains cleanly with the second server running.
        assert svc.terminate() == 0
    finally:
        svc.kill()
