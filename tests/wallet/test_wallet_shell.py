"""The wallet on the service shell: mutual TLS on loopback TCP, the data-path limit sparing
health, the shell's flags and variables, the unix-socket settings."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import wallet_pb2 as wpb
from stemedb.v1 import wallet_pb2_grpc, writer_pb2, writer_pb2_grpc
from stemedb.wallet._config import WalletConfig, config_from_args
from tests.runtime.tlslib import ThrowawayCA, write_server_files
from tests.support import (
    SERVING,
    free_port,
    health_status,
    missing_tool,
    start_writer,
    wait_until,
)
from tests.wallet.wallet_testlib import start_wallet


def _list_keys(target: str, credentials: grpc.ChannelCredentials) -> wpb.ListKeysResponse:
    with grpc.secure_channel(target, credentials) as channel:
        stub = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
        return stub.ListKeys(wpb.ListKeysRequest(), timeout=5)  # type: ignore[no-any-return]


def test_loopback_tcp_with_mutual_tls(tmp_path: Path, sock_dir: Path) -> None:
    ca = ThrowawayCA("wallet test CA")
    cert, key = write_server_files(ca, tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    client_key, client_cert = ca.issue("agent-1", server=False)
    port = free_port()
    svc = start_wallet(
        tmp_path / "ks", sock_dir, "--listen", f"127.0.0.1:{port}",
        "--tls-cert", str(cert), "--tls-key", str(key),
        env={"STEMEDB_TLS_CLIENT_CA": str(tmp_path / "ca.crt")},
    )  # fmt: skip
    svc.listen = f"127.0.0.1:{port}"
    good = grpc.ssl_channel_credentials(ca.pem, client_key, client_cert)
    try:
        svc.wait_ready(credentials=good)
        assert list(_list_keys(svc.listen, good).keys) == []
        for bad in (
            grpc.ssl_channel_credentials(ca.pem),  # no client certificate
            grpc.ssl_channel_credentials(ca.pem, *ThrowawayCA("rogue").issue("m", server=False)),
        ):
            with pytest.raises(grpc.RpcError) as info:
                _list_keys(svc.listen, bad)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with grpc.insecure_channel(svc.listen) as channel, pytest.raises(grpc.RpcError):
            wallet_pb2_grpc.WalletServiceStub(channel).ListKeys(  # type: ignore[no-untyped-call]
                wpb.ListKeysRequest(), timeout=3
            )
        assert '"mtls": true' in svc.log_text()
    finally:
        svc.kill()


def test_the_inflight_limit_refuses_more_and_spares_health(tmp_path: Path, sock_dir: Path) -> None:
    # A "writer" that accepts TCP connections (the kernel's backlog) and never answers: a
    # forwarded append parks until its deadline.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    writer = f"127.0.0.1:{silent.getsockname()[1]}"
    svc = start_wallet(tmp_path / "ks", sock_dir, "--inflight-requests-max", "1", writer=writer)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            wallet = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
            proxy = writer_pb2_grpc.WriterServiceStub(channel)  # type: ignore[no-untyped-call]
            vote = pb.Vote(assertion_hash=b"\x01" * 32, weight=1.0)
            parked = proxy.AppendVote.future(writer_pb2.AppendVoteRequest(vote=vote), timeout=60)

            def refused() -> bool:
                try:
                    wallet.ListKeys(wpb.ListKeysRequest(), timeout=5)
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                    assert "--inflight-requests-max" in (exc.details() or "")
                    return True
                return False  # the parked call had not arrived yet

            wait_until(refused, 30, "a second call refused over the bound of 1")
            assert health_status(svc.listen) == SERVING, "health is exempt from the limit"
            assert not parked.done()
            parked.cancel()
    finally:
        svc.kill()
        silent.close()


def test_shell_flags_and_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = config_from_args([])
    assert (str(cfg.keystore), cfg.listen, cfg.writer, cfg.metrics_listen) == (
        "data/wallet", "unix:./data/wallet.sock", "127.0.0.1:50051", "127.0.0.1:9104",
    )  # fmt: skip
    assert cfg.unix_socket == Path("./data/wallet.sock")
    assert cfg.inflight_requests_max == 1024 and cfg.tls_cert is None
    monkeypatch.setenv("STEMEDB_KEYS_MAX", "7")
    monkeypatch.setenv("STEMEDB_LISTEN", "127.0.0.1:50090")
    cfg = config_from_args(["--sequence-block-votes", "5", "--passphrase-file", "p"])
    assert (cfg.limits.keys_max, cfg.limits.sequence_block_votes) == (7, 5)
    assert cfg.listen == "127.0.0.1:50090" and cfg.unix_socket is None
    assert cfg.passphrase_file == Path("p")
    with pytest.raises(ValueError, match="loopback only"):
        WalletConfig(listen="10.0.0.1:50090")
    with pytest.raises(ValueError, match="needs a path"):
        WalletConfig(listen="unix:")
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        WalletConfig(tls_cert=tmp_path / "c")
    with pytest.raises(ValueError, match="kdf_opslimit"):
        WalletConfig(kdf_opslimit=0)
    with pytest.raises(SystemExit) as info:
        config_from_args(["--keys-max", "0"])
    assert info.value.code == 2


_UNKNOWN = b"\xa0\x06\x01"  # field 100, varint 1: a field no StemeDB schema has


def _wrap(field_number: int, inner: bytes) -> bytes:
    """A length-delimited field (inner < 128 bytes)."""
    assert len(inner) < 128
    return bytes([field_number << 3 | 2, len(inner)]) + inner


def test_unknown_fields_are_refused_before_signing(tmp_path: Path, sock_dir: Path) -> None:
    svc = start_wallet(tmp_path / "ks", sock_dir)
    vote = pb.Vote(assertion_hash=b"\x01" * 32, weight=1.0).SerializeToString() + _UNKNOWN
    sign_vote = _wrap(wpb.SignVoteRequest.DESCRIPTOR.fields_by_name["vote"].number, vote)
    record = _wrap(pb.Record.DESCRIPTOR.fields_by_name["vote"].number, vote)
    batch = _wrap(writer_pb2.AppendBatchRequest.DESCRIPTOR.fields_by_name["records"].number,
                  record)  # fmt: skip
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            wallet = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
            for method, data, field in (
                ("/stemedb.v1.WalletService/SignVote", sign_vote, "vote"),
                ("/stemedb.v1.WriterService/AppendBatch", batch, "records[0].vote"),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    channel.unary_unary(method)(data, timeout=10)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
                assert info.value.details().startswith(f"{field}: unknown field 100"), (  # type: ignore[attr-defined]
                    info.value.details()  # type: ignore[attr-defined]
                )
            # Nothing was signed and no sequence was taken.
            signed = wallet.SignVote(
                wpb.SignVoteRequest(vote=pb.Vote(assertion_hash=b"\x01" * 32, weight=1.0)),
                timeout=10,
            )
            assert signed.vote.sequence == 1
    finally:
        svc.kill()
    assert '"records": 1' in svc.log_text() and svc.log_text().count('"event": "signed"') == 1


def test_the_proxy_reaches_a_writer_that_requires_mutual_tls(
    tmp_path: Path, sock_dir: Path
) -> None:
    ca = ThrowawayCA("writer CA")
    cert, key = write_server_files(ca, tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    client_key, client_cert = ca.issue("wallet", server=False)
    (tmp_path / "wallet.key").write_bytes(client_key)
    (tmp_path / "wallet.crt").write_bytes(client_cert)
    writer = start_writer(
        tmp_path / "wal", "--tls-cert", str(cert), "--tls-key", str(key),
        "--tls-client-ca", str(tmp_path / "ca.crt"),
    )  # fmt: skip
    tls = ["--writer-tls-ca", str(tmp_path / "ca.crt")]
    mtls = [*tls, "--writer-tls-cert", str(tmp_path / "wallet.crt"),
            "--writer-tls-key", str(tmp_path / "wallet.key")]  # fmt: skip
    with_cert = start_wallet(tmp_path / "ks1", sock_dir, *mtls, writer=writer.listen)
    without = start_wallet(tmp_path / "ks2", sock_dir, *tls, writer=writer.listen)
    try:
        writer.wait_ready(credentials=grpc.ssl_channel_credentials(ca.pem, client_key, client_cert))
        for svc in (with_cert, without):
            svc.wait_ready()
        vote = pb.Vote(assertion_hash=b"\x01" * 32, weight=1.0)
        for svc, ok in ((with_cert, True), (without, False)):
            with grpc.insecure_channel(svc.listen) as channel:
                wallet = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
                wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
                proxy = writer_pb2_grpc.WriterServiceStub(channel)  # type: ignore[no-untyped-call]
                request = writer_pb2.AppendVoteRequest(vote=vote)
                if ok:
                    receipt = proxy.AppendVote(request, timeout=30).receipt
                    assert receipt.lsn == 1 and len(receipt.hash) == 32
                else:
                    # The writer refuses the handshake: the agent sees UNAVAILABLE.
                    with pytest.raises(grpc.RpcError) as info:
                        proxy.AppendVote(request, timeout=10)
                    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert '"writer_tls": true' in with_cert.log_text()
    finally:
        for svc in (with_cert, without, writer):
            svc.kill()


def test_writer_tls_settings_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--writer-tls-cert and --writer-tls-key go together"):
        WalletConfig(writer_tls_cert=tmp_path / "c")
    with pytest.raises(ValueError, match="--writer-tls-server-name needs"):
        WalletConfig(writer_tls_server_name="writer")
    assert WalletConfig(writer_tls_ca=tmp_path / "ca").writer_tls
    assert not WalletConfig().writer_tls


def test_metrics_are_promtool_clean_with_the_grpc_families(tmp_path: Path, sock_dir: Path) -> None:
    svc = start_wallet(tmp_path / "ks", sock_dir)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            wallet = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
        with urllib.request.urlopen(f"http://{svc.metrics}/metrics", timeout=10) as r:
            text = r.read().decode()
    finally:
        svc.kill()
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="CreateKey",'
        'grpc_service="stemedb.v1.WalletService",grpc_type="unary"} 1.0' in text
    )
    assert 'grpc_method="AppendBatch",grpc_service="stemedb.v1.WriterService"' in text
    for name in ("stemedb_wallet_signatures_total", "stemedb_wallet_keys",
                 "stemedb_wallet_proxied_records_total"):  # fmt: skip
        assert name in text, name
    promtool = shutil.which("promtool")
    if promtool is None:
        missing_tool("promtool not found: `make promtool` installs it")
    check = subprocess.run(
        [str(promtool), "check", "metrics"], input=text.encode(), capture_output=True, check=False
    )
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr


def test_sigterm_drains_within_the_grace_and_frees_socket_and_keystore(
    tmp_path: Path, sock_dir: Path
) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # a writer that never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    writer = f"127.0.0.1:{silent.getsockname()[1]}"
    ks = tmp_path / "ks"
    svc = start_wallet(ks, sock_dir, "--shutdown-grace-seconds", "1", writer=writer)
    socket_path = Path(svc.listen[len("unix:") :])
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            wallet = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
            proxy = writer_pb2_grpc.WriterServiceStub(channel)  # type: ignore[no-untyped-call]
            vote = pb.Vote(assertion_hash=b"\x01" * 32, weight=1.0)
            parked = proxy.AppendVote.future(writer_pb2.AppendVoteRequest(vote=vote), timeout=60)
            wait_until(lambda: b'"event": "signed"' in svc.log_path.read_bytes(), 30, "signing")
            assert svc.terminate(timeout_seconds=30) == 0
            with pytest.raises(grpc.RpcError):
                parked.result(timeout=30)  # cut at the end of the grace, not left hanging
    finally:
        svc.kill()
        silent.close()
    assert not socket_path.exists(), "the drain removes the socket"
    log = svc.log_text()
    assert "wallet draining" in log and "wallet stopped" in log
    again = start_wallet(ks, sock_dir, socket=socket_path)  # the keystore's LOCK was released
    try:
        again.wait_ready()
    finally:
        again.kill()
