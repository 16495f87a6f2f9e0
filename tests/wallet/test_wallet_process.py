"""The stemedb-wallet process: the socket, the RPCs, refusing to start, concurrency, SIGKILL."""

from __future__ import annotations

import logging
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, signing
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import wallet_pb2 as wpb
from stemedb.v1 import wallet_pb2_grpc
from stemedb.wallet import Keystore
from stemedb.wallet._config import config_from_args, read_passphrase
from tests.support import ROOT, SERVING, Service, free_port, health_status, wait_until
from tests.wallet.wallet_testlib import (
    FAST_KDF,
    FAST_KDF_FLAGS,
    PASSPHRASE,
    leaks,
    secrets_of,
    start_wallet,
)

ASSERTION_HASH = b"\x11" * 32


@pytest.fixture
def wallet(tmp_path: Path, sock_dir: Path) -> Iterator[Service]:
    svc = start_wallet(tmp_path / "ks", sock_dir)
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.kill()


def _stub(svc: Service) -> tuple[grpc.Channel, wallet_pb2_grpc.WalletServiceStub]:
    channel = grpc.insecure_channel(svc.listen)
    return channel, wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]


def _assertion() -> pb.Assertion:
    return pb.Assertion(
        subject="Q42", predicate="name", object=pb.Value(text="Douglas Adams"), confidence=0.9,
        source_hash=b"\x05" * 32,
    )  # fmt: skip


def _code(call: object, *args: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10)  # type: ignore[operator]
    return info.value.code(), info.value.details()  # type: ignore[attr-defined]


def test_no_rpc_log_line_or_metric_contains_a_private_key(tmp_path: Path, wallet: Service) -> None:
    socket = Path(wallet.listen[len("unix:") :])
    assert stat.S_IMODE(socket.stat().st_mode) == 0o600
    answers: list[bytes] = []
    channel, stub = _stub(wallet)
    with channel:
        for name, default in (("alice", False), ("bob", False), ("carol", True)):
            resp = stub.CreateKey(wpb.CreateKeyRequest(name=name, make_default=default), timeout=10)
            answers.append(resp.SerializeToString())
        keys = stub.ListKeys(wpb.ListKeysRequest(), timeout=10)
        answers.append(keys.SerializeToString())
        assert [(k.name, k.is_default) for k in keys.keys] == [
            ("alice", False), ("bob", False), ("carol", True),
        ]  # fmt: skip
        pub = stub.GetPublicKey(wpb.GetPublicKeyRequest(), timeout=10)
        assert pub.key.name == "carol"
        answers.append(pub.SerializeToString())
        a = stub.SignAssertion(
            wpb.SignAssertionRequest(key_name="alice", assertion=_assertion()), timeout=10
        )
        answers.append(a.SerializeToString())
        (entry,) = a.assertion.signatures
        assert entry.public_key == keys.keys[0].public_key
        assert signing.verify(
            entry.public_key,
            entry.signature,
            canonical.record_hash(pb.Record(assertion=a.assertion)),
        )
        v = stub.SignVote(
            wpb.SignVoteRequest(vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)), timeout=10
        )
        answers.append(v.SerializeToString())
        assert (
            v.key_name == "carol" and v.vote.agent_id == pub.key.public_key and v.vote.sequence == 1
        )
        assert signing.verify(
            v.vote.agent_id, v.vote.signature, canonical.record_hash(pb.Record(vote=v.vote))
        )
        e = stub.SignEpoch(
            wpb.SignEpochRequest(key_name="bob", epoch=pb.Epoch(name="E")), timeout=10
        )
        answers.append(e.SerializeToString())
        # Refusals name what is wrong.
        code, details = _code(
            stub.SignVote,
            wpb.SignVoteRequest(
                vote=pb.Vote(assertion_hash=ASSERTION_HASH, agent_id=b"\x01" * 32, weight=0.5)
            ),
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("vote.agent_id")
        code, details = _code(
            stub.SignVote,
            wpb.SignVoteRequest(
                vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5, sequence=5)
            ),
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("vote.sequence")
        code, details = _code(stub.CreateKey, wpb.CreateKeyRequest(name="../evil"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("name")
        assert (
            _code(stub.CreateKey, wpb.CreateKeyRequest(name="alice"))[0]
            == grpc.StatusCode.ALREADY_EXISTS
        )
        assert (
            _code(stub.GetPublicKey, wpb.GetPublicKeyRequest(name="nobody"))[0]
            == grpc.StatusCode.NOT_FOUND
        )
        code, _ = _code(stub.RetireKey, wpb.RetireKeyRequest(name="carol"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, "the default key cannot be retired"
        answers.append(
            stub.RetireKey(wpb.RetireKeyRequest(name="bob"), timeout=10).SerializeToString()
        )
        code, details = _code(
            stub.SignEpoch, wpb.SignEpochRequest(key_name="bob", epoch=pb.Epoch(name="E"))
        )
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "retired" in details
        raw = channel.unary_unary("/stemedb.v1.WalletService/SignVote")
        code, details = _code(raw, b"\xff\xff\xff")
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("request")
    with urllib.request.urlopen(f"http://{wallet.metrics}/metrics", timeout=10) as r:
        metrics = r.read()
    assert b'stemedb_wallet_signatures_total{kind="vote"} 1.0' in metrics
    assert b"stemedb_wallet_keys 3.0" in metrics
    assert wallet.terminate() == 0
    assert not socket.exists(), "the socket is removed on a clean stop"
    log = wallet.log_path.read_bytes()
    assert b'"event": "signed"' in log and b'"key": "alice"' in log
    store = Keystore.open(tmp_path / "ks", PASSPHRASE, kdf=FAST_KDF)
    secrets = [s for group in secrets_of(store).values() for s in group]
    store.close()
    assert len(secrets) == 3
    for blob in (*answers, metrics, log):
        assert leaks(blob, secrets) == []


def _run_wallet(
    keystore: Path, sock_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(Path(sys.executable).parent / "stemedb-wallet"), "--keystore", str(keystore),
        "--listen", f"unix:{sock_dir}/refused.sock", "--metrics-listen", "127.0.0.1:0",
        *FAST_KDF_FLAGS, *extra,
    ]  # fmt: skip
    base = {k: v for k, v in os.environ.items() if k != "STEMEDB_WALLET_PASSPHRASE"}
    return subprocess.run(
        cmd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def test_the_wallet_refuses_to_start_with_exit_2(tmp_path: Path, sock_dir: Path) -> None:
    ks = tmp_path / "ks"
    store = Keystore.open(ks, PASSPHRASE, kdf=FAST_KDF)
    store.create_key("alice")
    store.close()
    good = {"STEMEDB_WALLET_PASSPHRASE": PASSPHRASE.decode()}
    r = _run_wallet(ks, sock_dir)
    assert r.returncode == 2 and "no passphrase" in r.stderr
    r = _run_wallet(ks, sock_dir, env={"STEMEDB_WALLET_PASSPHRASE": "wrong"})
    assert r.returncode == 2 and "passphrase does not open" in r.stderr
    pfile = tmp_path / "pass"
    pfile.write_bytes(b"wrong\n")
    r = _run_wallet(ks, sock_dir, "--passphrase-file", str(pfile), env=good)
    assert r.returncode == 2 and "passphrase does not open" in r.stderr, "the file wins"
    key = ks / "alice.key"
    original = key.read_bytes()
    damaged = bytearray(original)
    damaged[-1] ^= 0x01
    key.write_bytes(bytes(damaged))
    r = _run_wallet(ks, sock_dir, env=good)
    assert (
        r.returncode == 2 and f"{key}: at offset" in r.stderr and "fails authentication" in r.stderr
    )
    damaged = bytearray(original)
    damaged[9] = 9
    key.write_bytes(bytes(damaged))
    r = _run_wallet(ks, sock_dir, env=good)
    assert r.returncode == 2 and "format version 9" in r.stderr
    key.write_bytes(original)
    r = _run_wallet(ks, sock_dir, "--listen", "0.0.0.0:50099", env=good)
    assert r.returncode == 2 and "loopback only" in r.stderr
    assert not (sock_dir / "refused.sock").exists(), "nothing was served"


def test_loopback_tcp_when_asked(tmp_path: Path, sock_dir: Path) -> None:
    port = free_port()
    svc = start_wallet(tmp_path / "ks", sock_dir, "--listen", f"127.0.0.1:{port}")
    svc.listen = f"127.0.0.1:{port}"
    try:
        svc.wait_ready()
        channel, stub = _stub(svc)
        with channel:
            assert stub.ListKeys(wpb.ListKeysRequest(), timeout=10).keys == []
    finally:
        svc.kill()


def test_a_stale_socket_is_replaced_and_a_live_one_is_not(tmp_path: Path, sock_dir: Path) -> None:
    first = start_wallet(tmp_path / "ks", sock_dir)
    try:
        first.wait_ready()
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=30)
    finally:
        first.kill()
    socket_path = Path(first.listen[len("unix:") :])
    assert socket_path.exists(), "SIGKILL leaves the socket behind"
    again = start_wallet(tmp_path / "ks", sock_dir, socket=socket_path)
    try:
        again.wait_ready()
        other = _run_wallet(tmp_path / "other", sock_dir, "--listen", first.listen,
                            env={"STEMEDB_WALLET_PASSPHRASE": "x"})  # fmt: skip
        assert other.returncode == 2 and "another process serves" in other.stderr
        assert again.proc.poll() is None
        assert health_status(first.listen) == SERVING, "the live wallet kept its socket"
    finally:
        again.kill()


def test_the_passphrase_is_taken_out_of_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEMEDB_WALLET_PASSPHRASE", "from the environment")
    assert read_passphrase(config_from_args([])) == b"from the environment"
    assert "STEMEDB_WALLET_PASSPHRASE" not in os.environ, "children must not inherit it"


def test_a_passphrase_file_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pfile = tmp_path / "pass"
    pfile.write_bytes(PASSPHRASE + b"\n")
    pfile.chmod(0o644)
    cfg = config_from_args(["--passphrase-file", str(pfile)])
    with caplog.at_level(logging.WARNING, logger="stemedb.wallet"):
        assert read_passphrase(cfg) == PASSPHRASE
    assert [r.getMessage() for r in caplog.records] == ["passphrase file is readable by others"]
    for mode, warned in ((0o604, True), (0o600, False), (0o440, False), (0o400, False)):
        # 0o440 in the wallet's own group: a Kubernetes Secret mounted with the pod's fsGroup.
        caplog.clear()
        pfile.chmod(mode)
        assert pfile.stat().st_gid == os.getegid()
        with caplog.at_level(logging.WARNING, logger="stemedb.wallet"):
            assert read_passphrase(cfg) == PASSPHRASE
        assert bool(caplog.records) is warned, f"{mode:o}"


def _signer_threads(
    target: str, agents: int, votes_each: int, out: list[pb.Vote], stop: threading.Event
) -> list[threading.Thread]:
    lock = threading.Lock()

    def agent(i: int) -> None:
        with grpc.insecure_channel(target) as channel:
            stub = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
            for n in range(votes_each):
                if stop.is_set():
                    return
                req = wpb.SignVoteRequest(
                    vote=pb.Vote(assertion_hash=bytes([i]) * 32, weight=(n % 3 - 1) / 2)
                )
                try:
                    resp = stub.SignVote(req, timeout=30)
                except grpc.RpcError:
                    return  # the wallet was killed
                with lock:
                    out.append(resp.vote)

    return [threading.Thread(target=agent, args=(i,), daemon=True) for i in range(agents)]


def test_16_agents_signing_concurrently_get_valid_distinct_sequences(wallet: Service) -> None:
    channel, stub = _stub(wallet)
    with channel:
        pk = stub.CreateKey(wpb.CreateKeyRequest(name="shared"), timeout=10).key.public_key
    votes: list[pb.Vote] = []
    threads = _signer_threads(wallet.listen, 16, 25, votes, threading.Event())
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(votes) == 16 * 25
    assert sorted(v.sequence for v in votes) == list(range(1, 16 * 25 + 1))
    for v in votes:
        assert v.agent_id == pk
        assert signing.verify(pk, v.signature, canonical.record_hash(pb.Record(vote=v)))


def test_sequences_are_never_reused_across_sigkill(
    tmp_path: Path, sock_dir: Path, seed: int
) -> None:
    rng = random.Random(seed)
    ks = tmp_path / "ks"
    rounds: list[list[int]] = []
    for round_number in range(4):
        svc = start_wallet(ks, sock_dir, "--sequence-block-votes", str(rng.choice([1, 5, 64])))
        try:
            svc.wait_ready()
            if round_number == 0:
                channel, stub = _stub(svc)
                with channel:
                    stub.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10)
            votes: list[pb.Vote] = []
            stop = threading.Event()
            threads = _signer_threads(svc.listen, 4, 10_000, votes, stop)
            for t in threads:
                t.start()
            kill_after = rng.randrange(1, 120)

            def enough(signed: list[pb.Vote] = votes, n: int = kill_after) -> bool:
                return len(signed) >= n

            wait_until(enough, 60, f"{kill_after} signed votes")
            svc.proc.send_signal(signal.SIGKILL)
            svc.proc.wait(timeout=30)
            stop.set()
            for t in threads:
                t.join(timeout=60)
        finally:
            svc.kill()
        got = [v.sequence for v in votes]
        assert len(set(got)) == len(got), f"round {round_number}: a sequence was handed out twice"
        if rounds:
            assert min(got) > max(max(r) for r in rounds), "a sequence went back after SIGKILL"
        rounds.append(got)


def _mid_creation(ks: Path, prefix: str, stage: str) -> bool:
    """True once the keystore shows a creation of a ``prefix`` key in progress at ``stage``:
    ``seq`` (a .seq whose .key is not there yet) or ``tmp`` (a temporary file being written)."""
    names = {e.name for e in os.scandir(ks)}
    if stage == "tmp":
        return any(n.startswith(f".{prefix}") and n.endswith(".tmp") for n in names)
    return any(
        n.startswith(prefix) and n.endswith(".seq") and n[: -len(".seq")] + ".key" not in names
        for n in names
    )


def test_sigkill_during_key_creation_leaves_no_key_or_a_whole_key(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    ks = tmp_path / "ks"
    created: set[str] = set()
    debris = 0
    for attempt in range(9):
        prefix = f"k{attempt}-"
        script = Path(__file__).with_name("create_child.py")
        child = subprocess.Popen(
            [sys.executable, str(script), str(ks), prefix],
            stdout=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert child.stdout is not None
        for _ in range(rng.randrange(1, 4)):
            line = child.stdout.readline().decode().strip()
            assert line, "the child stopped creating keys"
            created.add(line)
        # Kill between two creations, or in the middle of one: after its counter and before
        # its key file, or while a temporary file is being written and fsynced.
        stage = ("between", "seq", "tmp")[attempt % 3]
        if stage != "between":
            wait_until(
                lambda p=prefix, st=stage: _mid_creation(ks, p, st), 30, f"{stage} stage",
                interval=0.0002,
            )  # fmt: skip
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        # Keys it reported while the test waited for the stage were created too (durable).
        created.update(child.stdout.read().decode().split())
        child.stdout.close()
        debris += _mid_creation(ks, prefix, "seq") or _mid_creation(ks, prefix, "tmp")
        store = Keystore.open(ks, PASSPHRASE, kdf=FAST_KDF)  # raises on any partial file
        names = {k.name for k in store.list_keys()}
        store.close()
        assert created <= names, "a key that was reported created is gone"
        extra = names - created
        assert len(extra) <= 1, f"more than the one key being created appeared: {extra}"
        created |= extra
    print(f"kills that left a creation half done: {debris} of 9")
