"""Client and AsyncClient against a real writer and ingestor: every record kind, read back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, jsonrecord
from stemedb.client import (
    AgentKey,
    AsyncClient,
    Client,
    InvalidRecord,
    Ref,
    RpcFailed,
    make_assertion,
    make_epoch,
    source_hash_of,
)
from stemedb.v1 import records_pb2 as pb
from tests.client.stack import Stack, running_stack
from tests.support import ROOT

SRC = b"\x02" * 32
KEY = AgentKey.from_seed(b"\x11" * 32)
CO_SIGNER = AgentKey.from_seed(b"\x12" * 32)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("live")) as s:
        yield s


def test_sync_client_appends_every_kind_and_reads_back(stack: Stack) -> None:
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        e = KEY.sign_epoch(make_epoch("Relativity", "1905 on"))
        er = db.append_epoch(e)
        a = make_assertion(
            "sync:Q42", "born", 1952, source_hash=source_hash_of("wiki"), confidence=0.9,
            visual_hash=0xFFFF_0000_1234_5678, epoch=er.hash,
        )  # fmt: skip
        CO_SIGNER.sign_assertion(KEY.sign_assertion(a))
        ar = db.append_assertion(a)
        vr = db.append_vote(KEY.vote(ar.hash, -0.5))
        refs = db.append_batch(
            [
                make_assertion("sync:Q42", "knows", Ref(ar.hash), source_hash=b"\x01" * 32),
                make_assertion("sync:Q42", "alive", False, source_hash=b"\x01" * 32),
                make_assertion("sync:Q42", "photo", b"\x89PNG", source_hash=b"\x01" * 32),
                KEY.vote(ar.hash, 1.0),
            ]
        )
        assert [r.lsn for r in refs] == list(range(refs[0].lsn, refs[0].lsn + 4))
        assert er.lsn < ar.lsn < vr.lsn < refs[0].lsn

        got = db.get("H:" + ar.hash_hex, min_lsn=refs[-1].lsn)
        assert got.found and got.applied_lsn >= refs[-1].lsn
        assert got.record == pb.Record(assertion=a)
        assert db.get("E:" + er.hash_hex).record == pb.Record(epoch=e)
        assert db.get(b"V:" + vr.hash_hex.encode()).record.vote.weight == -0.5  # type: ignore[union-attr]
        assert not db.get("H:" + "00" * 32).found

        assert db.get_assertion(ar.hash) == a
        assert db.get_assertion("00" * 32) is None
        subject = list(db.iter_assertions_by_subject("sync:Q42", page_size=2))
        assert len(subject) == 4
        assert ar.hash in {item.hash for item in subject}
        votes = list(db.iter_votes(ar.hash_hex, page_size=1))
        assert sorted(v.vote.weight for v in votes) == [-0.5, 1.0]

        page = db.scan_prefix("S:sync:Q42\x00", page_size=3)
        assert len(page.items) == 3 and page.next_page_token
        keys = [e.key for e in db.iter_scan_prefix("S:sync:Q42\x00", page_size=3)]
        assert len(keys) == 4 and keys == sorted(keys)
        assert f"S:sync:Q42\x00{ar.hash_hex}".encode() in keys


def test_async_client_appends_every_kind_and_reads_back(stack: Stack) -> None:
    async def go() -> None:
        async with AsyncClient(stack.writer.listen, stack.ingestor.listen) as db:
            er = await db.append_epoch(make_epoch("async epoch"))
            a = KEY.sign_assertion(
                make_assertion("async:Q1", "p", "o", source_hash=b"\x02" * 32, epoch=er.hash)
            )
            ar = await db.append_assertion(a)
            vr = await db.append_vote(KEY.vote(ar.hash, 0.25))
            batch = await db.append_batch(
                [
                    pb.Record(
                        assertion=make_assertion("async:Q1", "q", 1.5, source_hash=b"\x02" * 32)
                    )
                ]
            )
            got = await db.get("V:" + vr.hash_hex, min_lsn=batch[-1].lsn)
            assert got.found and got.record is not None and got.record.vote.weight == 0.25
            assert await db.get_assertion(ar.hash) == a
            subject = [x async for x in db.iter_assertions_by_subject("async:Q1")]
            assert {x.hash for x in subject} == {ar.hash, batch[0].hash}
            assert [x.hash async for x in db.iter_votes(ar.hash)] == [vr.hash]
            keys = [e.key async for e in db.iter_scan_prefix("S:async:Q1\x00", page_size=1)]
            assert len(keys) == 2
            page = await db.list_assertions_by_subject("async:Q1", page_size=1)
            assert len(page.items) == 1 and page.next_page_token

    asyncio.run(go())


def test_nfd_text_is_appended_as_nfc(stack: Stack) -> None:
    vectors = json.loads((ROOT / "tests" / "vectors" / "canonical.json").read_text("utf-8"))
    case = next(c for c in vectors if c["name"] == "assertion-nfd-input")
    given = jsonrecord.record_from_json(case["input"]).assertion
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        receipt = db.append_assertion(given)
        assert receipt.hash_hex == case["hash_hex"]
        stored = db.get_assertion(receipt.hash, min_lsn=receipt.lsn)
        assert stored is not None
        assert stored.subject == case["record"]["assertion"]["subject"] != given.subject
        (again,) = db.append_batch([given])
        assert again.hash == receipt.hash


def test_same_record_twice_is_same_hash_new_lsn(stack: Stack) -> None:
    a = make_assertion("twice", "p", "o", source_hash=b"\x03" * 32)
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        r1, r2 = db.append_assertion(a), db.append_assertion(a)
    assert r1.hash == r2.hash == canonical.record_hash(pb.Record(assertion=a))
    assert r2.lsn > r1.lsn


def test_min_lsn_beyond_the_log_hits_the_deadline(stack: Stack) -> None:
    with (
        Client(stack.writer.listen, stack.ingestor.listen, timeout_seconds=0.3) as db,
        pytest.raises(RpcFailed) as info,
    ):
        db.get("H:" + "00" * 32, min_lsn=10**9)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_server_side_rejection_is_rpc_failed(stack: Stack) -> None:
    # A bad signature passes local validation (shape) but not the writer's verification.
    a = make_assertion("sig", "p", "o", source_hash=b"\x04" * 32)
    a.signatures.append(pb.SignatureEntry(public_key=KEY.public_key, signature=b"\x00" * 64))
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        with pytest.raises(RpcFailed) as info:
            db.append_assertion(a)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(InvalidRecord):
            db.append_vote(pb.Vote(assertion_hash=b"\x01" * 32, agent_id=KEY.public_key))


def _write_tls_files(folder: Path) -> None:
    """A test CA (ca.pem), a server certificate for localhost (s.pem, s.key) and a client
    certificate (c.pem, c.key), written into ``folder``."""
    from tests.writer.test_tls import _CA

    ca = _CA("stemedb test CA")
    skey, scert = ca.issue("localhost", server=True)
    ckey, ccert = ca.issue("agent", server=False)
    files = {"ca.pem": ca.pem, "s.key": skey, "s.pem": scert, "c.key": ckey, "c.pem": ccert}
    for name, data in files.items():
        (folder / name).write_bytes(data)


def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    from stemedb.client import TlsConfig
    from tests.support import start_writer

    _write_tls_files(tmp_path)
    writer = start_writer(
        tmp_path / "wal", "--tls-cert", str(tmp_path / "s.pem"), "--tls-key",
        str(tmp_path / "s.key"), "--tls-client-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    try:
        mtls = TlsConfig(
            root_ca=tmp_path / "ca.pem", client_cert=tmp_path / "c.pem",
            client_key=tmp_path / "c.key",
        )  # fmt: skip
        writer.wait_ready(credentials=mtls.credentials())
        a = make_assertion("tls", "p", "o", source_hash=b"\x05" * 32)
        with Client(writer.listen, writer.listen, tls=mtls) as db:
            assert db.append_assertion(a).lsn == 1
        no_cert = TlsConfig(root_ca=tmp_path / "ca.pem")
        with (
            Client(writer.listen, writer.listen, tls=no_cert, timeout_seconds=3) as db,
            pytest.raises(RpcFailed),
        ):
            db.append_assertion(a)
    finally:
        writer.kill()


def test_tls_per_channel_writer_with_mtls_and_a_plaintext_store(tmp_path: Path) -> None:
    """Only the writer has (mutual) TLS: appends go over TLS, reads over plaintext. With one
    setting for both channels, the reads would fail."""
    from stemedb.client import AsyncShardedClient, ShardedClient, TlsConfig
    from tests.client.stack import cli_env, require_ingestor, run_cli
    from tests.support import start_ingestor, start_writer

    require_ingestor()
    _write_tls_files(tmp_path)
    wal = tmp_path / "wal"
    writer = start_writer(
        wal, "--tls-cert", str(tmp_path / "s.pem"), "--tls-key", str(tmp_path / "s.key"),
        "--tls-client-ca", str(tmp_path / "ca.pem"),
    )  # fmt: skip
    ingestor = None
    try:
        mtls = TlsConfig(
            root_ca=tmp_path / "ca.pem", client_cert=tmp_path / "c.pem",
            client_key=tmp_path / "c.key", server_name="localhost",
        )  # fmt: skip
        writer.wait_ready(credentials=mtls.credentials())
        ingestor = start_ingestor(wal, tmp_path / "db")
        ingestor.wait_ready()
        store = ingestor.listen
        a = make_assertion("tls-split", "p", "o", source_hash=b"\x05" * 32)
        with Client(writer.listen, store, writer_tls=mtls) as db:
            r = db.append_assertion(a)
            assert db.get_assertion(r.hash, min_lsn=r.lsn) is not None

        async def run_async() -> None:
            async with AsyncClient(writer.listen, store, writer_tls=mtls) as adb:
                ar = await adb.append_assertion(a)
                assert (await adb.get("H:" + ar.hash_hex, ar.lsn)).found

        asyncio.run(run_async())
        with ShardedClient([(writer.listen, store)], writer_tls=mtls) as sdb:
            sr = sdb.append_assertion(a)
            assert sdb.get("H:" + sr.hash_hex, sr.lsn, shard=0).found

        async def run_sharded() -> None:
            async with AsyncShardedClient([(writer.listen, store)], writer_tls=mtls) as sdb:
                sr = await sdb.append_assertion(a)
                assert (await sdb.get_assertion(sr.hash, sr.lsn, shard=0)) is not None

        asyncio.run(run_sharded())
        # the same TLS for both channels: the plaintext store cannot be read
        with Client(writer.listen, store, tls=mtls, timeout_seconds=3) as both:
            assert both.append_assertion(a).hash == r.hash
            with pytest.raises(RpcFailed):
                both.get("H:" + r.hash_hex)

        # the CLI: --writer-tls-* for the writer only; --tls-* for both still works for appends
        env = cli_env(tmp_path, {"STEMEDB_WRITER": writer.listen, "STEMEDB_STORE": store})
        tls_flags = [
            "--writer-tls-ca", str(tmp_path / "ca.pem"), "--writer-tls-cert",
            str(tmp_path / "c.pem"), "--writer-tls-key", str(tmp_path / "c.key"),
            "--writer-tls-server-name", "localhost",
        ]  # fmt: skip
        done = run_cli(*tls_flags, "assert", "tls-cli", "p", "o", "--unsigned", env=env)
        assert done.returncode == 0, done.stderr
        digest, lsn = done.stdout.split()
        got = run_cli(*tls_flags, "get", digest, "--min-lsn", lsn[4:], env=env)
        assert got.returncode == 0, got.stderr
        assert '"tls-cli"' in got.stdout
        both_flags = [f.replace("--writer-", "--") for f in tls_flags]
        done = run_cli(*both_flags, "assert", "tls-cli", "p", "o", "--unsigned", env=env)
        assert done.returncode == 0, done.stderr
        got = run_cli(*both_flags, "--timeout", "3", "get", digest, env=env)
        assert got.returncode == 3, got.stderr
        env_only = {**env, "STEMEDB_WRITER_TLS_CA": str(tmp_path / "ca.pem")}
        half = run_cli("--writer-tls-cert", str(tmp_path / "c.pem"), "get", digest, env=env_only)
        assert half.returncode == 2 and "go together" in half.stderr
    finally:
        if ingestor is not None:
            ingestor.kill()
        writer.kill()
