"""End to end: an agent with no keys writes through the wallet's socket, and the store shows its
records signed by the wallet's keys (a real writer, ingestor and wallet, each its own process)."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, signing
from stemedb.client import AgentKey, AsyncClient, Client, InvalidRecord, make_assertion
from stemedb.v1 import query_pb2 as qpb
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2, store_pb2_grpc, wallet_pb2_grpc, writer_pb2, writer_pb2_grpc
from stemedb.v1 import wallet_pb2 as wpb
from tests.support import Service, start_ingestor, start_writer
from tests.wallet.wallet_testlib import start_wallet

SRC = b"\x05" * 32


@dataclass
class Stack:
    writer: Service
    ingestor: Service
    wallet: Service


@pytest.fixture
def stack(tmp_path: Path, sock_dir: Path) -> Iterator[Stack]:
    started: list[Service] = []
    try:
        writer = start_writer(tmp_path / "wal")
        started.append(writer)
        writer.wait_ready()
        ingestor = start_ingestor(tmp_path / "wal", tmp_path / "db")
        started.append(ingestor)
        wallet = start_wallet(tmp_path / "ks", sock_dir, writer=writer.listen)
        started.append(wallet)
        ingestor.wait_ready()
        wallet.wait_ready()
        yield Stack(writer, ingestor, wallet)
    finally:
        for svc in reversed(started):
            svc.kill()


def _assertion(subject: str) -> pb.Assertion:
    return pb.Assertion(
        subject=subject, predicate="name", object=pb.Value(text="Douglas Adams"),
        confidence=0.9, source_hash=b"\x05" * 32,
    )  # fmt: skip


def _stored(store: store_pb2_grpc.StoreServiceStub, prefix: bytes, h: bytes, lsn: int) -> pb.Record:
    resp = store.Get(store_pb2.GetRequest(key=prefix + h.hex().encode(), min_lsn=lsn), timeout=30)
    assert resp.found, f"{prefix!r}{h.hex()} is not in the store"
    assert canonical.record_hash(resp.record) == h, "the receipt's hash is the stored record's"
    return resp.record


def test_an_agent_without_keys_writes_signed_records_through_the_wallet(stack: Stack) -> None:
    with grpc.insecure_channel(stack.wallet.listen) as wch:
        wallet = wallet_pb2_grpc.WalletServiceStub(wch)  # type: ignore[no-untyped-call]
        main = wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10).key
        other = wallet.CreateKey(wpb.CreateKeyRequest(name="second"), timeout=10).key
        # The agent's existing WriterService stub, pointed at the socket: it holds no key.
        agent = writer_pb2_grpc.WriterServiceStub(wch)  # type: ignore[no-untyped-call]
        ra = agent.AppendAssertion(
            writer_pb2.AppendAssertionRequest(assertion=_assertion("Q42")), timeout=30
        ).receipt
        rv = agent.AppendVote(
            writer_pb2.AppendVoteRequest(vote=pb.Vote(assertion_hash=ra.hash, weight=0.75)),
            timeout=30,
        ).receipt
        re = agent.AppendEpoch(
            writer_pb2.AppendEpochRequest(epoch=pb.Epoch(name="Newtonian")), timeout=30
        ).receipt
        own = signing.SigningKey(b"\x77" * 32)  # a record the agent signed itself passes as is
        presigned = _assertion("Q1")
        presigned.signatures.append(
            signing.signature_entry(own, canonical.record_hash(pb.Record(assertion=presigned)))
        )
        batch = writer_pb2.AppendBatchRequest(
            records=[
                pb.Record(assertion=_assertion("Q5")),
                pb.Record(vote=pb.Vote(assertion_hash=ra.hash, weight=-0.5)),
                pb.Record(assertion=presigned),
            ]
        )
        rb = agent.AppendBatch(batch, timeout=30, metadata=(("stemedb-key", "second"),)).receipts
    assert [ra.lsn, rv.lsn, re.lsn] == [1, 2, 3]
    assert [r.lsn for r in rb] == [4, 5, 6]
    with grpc.insecure_channel(stack.ingestor.listen) as sch:
        store = store_pb2_grpc.StoreServiceStub(sch)  # type: ignore[no-untyped-call]
        a = _stored(store, b"H:", ra.hash, rb[-1].lsn).assertion
        assert [s.public_key for s in a.signatures] == [main.public_key]
        assert signing.verify(main.public_key, a.signatures[0].signature, ra.hash)
        v = _stored(store, b"V:", rv.hash, rb[-1].lsn).vote
        assert v.agent_id == main.public_key and v.sequence == 1 and v.weight == 0.75
        assert signing.verify(main.public_key, v.signature, rv.hash)
        e = _stored(store, b"E:", re.hash, rb[-1].lsn).epoch
        assert [s.public_key for s in e.signatures] == [main.public_key]
        b0 = _stored(store, b"H:", rb[0].hash, rb[-1].lsn).assertion
        assert [s.public_key for s in b0.signatures] == [other.public_key], "stemedb-key chose"
        b1 = _stored(store, b"V:", rb[1].hash, rb[-1].lsn).vote
        assert b1.agent_id == other.public_key and b1.sequence == 1, "sequences are per key"
        b2 = _stored(store, b"H:", rb[2].hash, rb[-1].lsn).assertion
        assert [s.public_key for s in b2.signatures] == [signing.public_key_of(own)]


def test_errors_reach_the_agent_unchanged_and_refusals_write_nothing(stack: Stack) -> None:
    bad = _assertion("Q9")
    bad.signatures.add(public_key=b"\x01" * 32, signature=b"\x02" * 64)  # does not verify
    request = writer_pb2.AppendAssertionRequest(assertion=bad)
    with (
        grpc.insecure_channel(stack.wallet.listen) as wch,
        grpc.insecure_channel(stack.writer.listen) as direct,
    ):
        wallet = wallet_pb2_grpc.WalletServiceStub(wch)  # type: ignore[no-untyped-call]
        via = writer_pb2_grpc.WriterServiceStub(wch)  # type: ignore[no-untyped-call]
        writer = writer_pb2_grpc.WriterServiceStub(direct)  # type: ignore[no-untyped-call]
        unsigned = writer_pb2.AppendAssertionRequest(assertion=_assertion("Q10"))
        with pytest.raises(grpc.RpcError) as none_yet:
            via.AppendAssertion(unsigned, timeout=30)
        assert none_yet.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no key" in none_yet.value.details()
        wallet.CreateKey(wpb.CreateKeyRequest(name="old"), timeout=10)
        wallet.CreateKey(wpb.CreateKeyRequest(name="new", make_default=True), timeout=10)
        wallet.RetireKey(wpb.RetireKeyRequest(name="old"), timeout=10)
        with pytest.raises(grpc.RpcError) as from_writer:
            writer.AppendAssertion(request, timeout=30)
        with pytest.raises(grpc.RpcError) as from_wallet:
            via.AppendAssertion(request, timeout=30)
        assert from_wallet.value.code() == from_writer.value.code()
        assert from_wallet.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert from_wallet.value.details() == from_writer.value.details()
        refusals = [
            (("stemedb-key", "old"), grpc.StatusCode.FAILED_PRECONDITION, "retired"),
            (("stemedb-key", "nobody"), grpc.StatusCode.NOT_FOUND, "nobody"),
            (("stemedb-key", "../x"), grpc.StatusCode.INVALID_ARGUMENT, "metadata stemedb-key"),
        ]
        for metadata, code, text in refusals:
            with pytest.raises(grpc.RpcError) as info:
                via.AppendAssertion(unsigned, timeout=30, metadata=(metadata,))
            assert info.value.code() == code and text in info.value.details()
        foreign = pb.Vote(assertion_hash=b"\x03" * 32, agent_id=b"\x04" * 32, weight=0.5)
        with pytest.raises(grpc.RpcError) as info:
            via.AppendBatch(
                writer_pb2.AppendBatchRequest(
                    records=[pb.Record(assertion=_assertion("Q11")), pb.Record(vote=foreign)]
                ),
                timeout=30,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("records[1].vote.agent_id")
        # Nothing above reached the log: the next append is LSN 1.
        receipt = via.AppendAssertion(unsigned, timeout=30).receipt
        assert receipt.lsn == 1


class _RefusingWriter:
    """A stand-in for the writer's answers that the real writer cannot give yet (the meter's
    RESOURCE_EXHAUSTED with trailers): a real gRPC server in this process."""

    def __init__(self) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler(
            "stemedb.v1.WriterService",
            {"AppendAssertion": grpc.unary_unary_rpc_method_handler(self._refuse)},
        )
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.seen: list[bytes] = []

    def _refuse(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.seen.append(request)
        context.set_trailing_metadata(
            (("stemedb-retry-after-ms", "250"), ("stemedb-detail-bin", b"\x00\x01\xff"))
        )
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "agent over budget: retry in 250 ms")
        raise AssertionError("unreachable")


def test_the_writers_status_details_and_trailers_reach_the_agent(
    tmp_path: Path, sock_dir: Path
) -> None:
    refusing = _RefusingWriter()
    wallet = start_wallet(tmp_path / "ks", sock_dir, writer=f"127.0.0.1:{refusing.port}")
    try:
        wallet.wait_ready()
        with grpc.insecure_channel(wallet.listen) as wch:
            stub = wallet_pb2_grpc.WalletServiceStub(wch)  # type: ignore[no-untyped-call]
            pk = stub.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10).key.public_key
            via = writer_pb2_grpc.WriterServiceStub(wch)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.RpcError) as info:
                via.AppendAssertion(
                    writer_pb2.AppendAssertionRequest(assertion=_assertion("Q7")), timeout=30
                )
        err = info.value
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert err.details() == "agent over budget: retry in 250 ms"
        trailers = dict(err.trailing_metadata())
        assert trailers["stemedb-retry-after-ms"] == "250"
        assert trailers["stemedb-detail-bin"] == b"\x00\x01\xff"
        with urllib.request.urlopen(f"http://{wallet.metrics}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        assert 'stemedb_wallet_writer_errors_total{grpc_code="ResourceExhausted"} 1.0' in metrics
        (forwarded,) = refusing.seen
        a = writer_pb2.AppendAssertionRequest.FromString(forwarded).assertion
        assert [s.public_key for s in a.signatures] == [pk], "it was signed before forwarding"
    finally:
        wallet.kill()
        refusing.server.stop(None)


def test_the_python_client_writes_through_the_wallet_and_the_lattice_counts_it(
    stack: Stack,
) -> None:
    """An agent with no keys uses the Python client on the wallet's socket: its assertion and
    votes are stored signed by the wallet's keys, and the Lattice counts them: the tallies show
    the wallet keys' votes, and Resolve's winner flips when they vote."""
    others = [AgentKey.from_seed(bytes([0x60 + i]) * 32) for i in range(2)]
    with grpc.insecure_channel(stack.wallet.listen) as wch:
        wallet = wallet_pb2_grpc.WalletServiceStub(wch)  # type: ignore[no-untyped-call]
        agent = wallet.CreateKey(wpb.CreateKeyRequest(name="agent"), timeout=10).key.public_key
        second = wallet.CreateKey(wpb.CreateKeyRequest(name="second"), timeout=10).key.public_key
    with (
        Client(stack.wallet.listen, stack.ingestor.listen, through_wallet=True) as db,
        Client(stack.wallet.listen, stack.ingestor.listen, wallet_key="second") as db2,
        Client(stack.writer.listen, stack.ingestor.listen) as direct,
    ):
        x = db.append_assertion(make_assertion("Q42", "name", "Douglas Adams", source_hash=SRC))
        y_assertion = make_assertion("Q42", "name", "Douglas N. Adams", source_hash=SRC)
        for key in others:  # two agents with keys of their own, straight to the writer
            key.sign_assertion(y_assertion)
        y = direct.append_assertion(y_assertion)
        before = db.resolve("Q42", "name", min_lsn=y.lsn).resolution
        assert before.winner.hash == y.hash, "two signers beat one"
        # The agent's votes carry no agent, sequence or signature: the wallet fills them.
        vy = db.append_vote(pb.Vote(assertion_hash=y.hash, weight=-1.0))
        vx = db2.append_vote(pb.Vote(assertion_hash=x.hash, weight=1.0))
        after = db.resolve("Q42", "name", min_lsn=max(vx.lsn, vy.lsn)).resolution
        assert after.winner.hash == x.hash and after.status == qpb.STATUS_RESOLVED
        assert after.winner.assertion.signatures[0].public_key == agent
        tx = db.get_tally(x.hash)
        assert (tx.tally.supporters, tx.tally.support, tx.tally.votes) == (2, 2.0, 1)
        ty = db.get_tally(y.hash)
        assert (ty.tally.supporters, ty.tally.disputers, ty.tally.dispute) == (2, 1, 1.0)
        votes = {v.vote.agent_id: v.vote for v in db.iter_votes(y.hash)}
        assert set(votes) == {agent}
        assert votes[agent].sequence == 1
        assert signing.verify(agent, votes[agent].signature, vy.hash)
        (v2,) = [v.vote for v in db.iter_votes(x.hash)]
        assert v2.agent_id == second and canonical.record_hash(pb.Record(vote=v2)) == vx.hash
        # A batch through the wallet: an assertion and a vote on it, the wallet signing both.
        za = make_assertion("Q7", "p", "o", source_hash=SRC)
        za_hash = canonical.record_hash(pb.Record(assertion=za))
        z, vz = db.append_batch([za, pb.Vote(assertion_hash=za_hash, weight=0.5)])
        assert z.hash == za_hash
        tz = db.get_tally(z.hash, vz.lsn)
        assert (tz.tally.supporters, tz.tally.support, tz.tally.votes) == (1, 0.5, 1)

        # The asyncio client the same way, naming its key.
        async def vote_async() -> int:
            async with AsyncClient(
                stack.wallet.listen, stack.ingestor.listen, wallet_key="second"
            ) as adb:
                return (await adb.append_vote(pb.Vote(assertion_hash=z.hash, weight=1.0))).lsn

        lsn = asyncio.run(vote_async())
        tz = db.get_tally(z.hash, lsn)
        assert (tz.tally.supporters, tz.tally.support, tz.tally.votes) == (2, 1.5, 2)
        # A client that writes to the writer refuses such a vote before any call.
        with pytest.raises(InvalidRecord, match=r"vote\.agent_id"):
            direct.append_vote(pb.Vote(assertion_hash=x.hash, weight=1.0))
