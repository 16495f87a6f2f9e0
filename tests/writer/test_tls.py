"""TLS and mutual TLS, with a throwaway CA made in the test (the cryptography package)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from tests.support import start_writer
from tests.writer.records import assertion


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class _CA:
    def __init__(self, cn: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, cn: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


def _append(target: str, creds: grpc.ChannelCredentials) -> int:
    with grpc.secure_channel(target, creds) as ch:
        stub = writer_pb2_grpc.WriterServiceStub(ch)
        r = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion()), timeout=10)
        return int(r.receipt.lsn)


def test_tls(tmp_path: Path) -> None:
    ca = _CA("stemedb test CA")
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
        other = _CA("someone else")
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
    ca = _CA("stemedb test CA")
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
        rogue = _CA("rogue")
        rk, rc = rogue.issue("mallory", server=False)
        with pytest.raises(grpc.RpcError) as info:
            _append(svc.listen, grpc.ssl_channel_credentials(
                root_certificates=ca.pem, private_key=rk, certificate_chain=rc))  # fmt: skip
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        svc.kill()
