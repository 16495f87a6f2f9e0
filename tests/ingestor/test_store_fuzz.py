"""Random and mutated request bytes to every StoreService RPC through a raw channel: no crash,
no hang, no write. Every call ends within its deadline in OK or a clean client error; the
ingestor's DB is unchanged afterwards and it still serves. ``make fuzz`` runs many more."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import writer_pb2 as wpb
from tests.support import (
    SERVING,
    Service,
    health_status,
    scan_all,
    start_ingestor,
    start_writer,
)
from tests.writer.records import assertion, vote

EXAMPLES = int(os.environ.get("STEMEDB_FUZZ_EXAMPLES", "150"))
H = canonical.record_hash(pb.Record(assertion=assertion("fz")))
SEEDS = {
    "Get": spb.GetRequest(key=b"H:" + H.hex().encode(), min_lsn=1).SerializeToString(),
    "ScanPrefix": spb.ScanPrefixRequest(prefix=b"S:", page_size=5).SerializeToString(),
    "GetAssertion": spb.GetAssertionRequest(hash=H).SerializeToString(),
    "ListAssertionsBySubject": spb.ListAssertionsBySubjectRequest(
        subject="fz", page_size=3
    ).SerializeToString(),
    "ListVotes": spb.ListVotesRequest(assertion_hash=H, page_size=2).SerializeToString(),
}
# Requests are decoded by our own code (stemedb.runtime.decoding_generic_handler), so bad bytes
# are INVALID_ARGUMENT; a random min_lsn far ahead waits out its deadline.
ALLOWED = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED}


@st.composite
def mutated(draw: st.DrawFn, method: str) -> bytes:
    data = bytearray(SEEDS[method])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


requests = st.sampled_from(sorted(SEEDS)).flatmap(
    lambda m: st.tuples(st.just(m), st.one_of(st.binary(max_size=200), mutated(m)))
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service]]:
    base = tmp_path_factory.mktemp("storefuzz")
    writer = start_writer(base / "wal")
    ingestor = start_ingestor(base / "wal", base / "db")
    try:
        writer.wait_ready()
        ingestor.wait_ready()
        yield writer, ingestor
    finally:
        writer.kill()
        ingestor.kill()


def test_fuzz_store_requests(stack: tuple[Service, Service]) -> None:
    writer, ingestor = stack
    with grpc.insecure_channel(writer.listen) as ch:
        stub = writer_pb2_grpc.WriterServiceStub(ch)
        r = stub.AppendAssertion(wpb.AppendAssertionRequest(assertion=assertion("fz")), timeout=10)
        v = stub.AppendVote(wpb.AppendVoteRequest(vote=vote(r.receipt.hash)), timeout=10)
    with grpc.insecure_channel(ingestor.listen) as ch:
        store_pb2_grpc.StoreServiceStub(ch).Get(
            spb.GetRequest(key=b"H:" + H.hex().encode(), min_lsn=v.receipt.lsn), timeout=10
        )
    before = scan_all(ingestor.listen, b"")
    channel = grpc.insecure_channel(ingestor.listen)
    calls = {m: channel.unary_unary(f"/stemedb.v1.StoreService/{m}") for m in SEEDS}

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(requests)
    def run(req: tuple[str, bytes]) -> None:
        method, data = req
        try:
            calls[method](data, timeout=0.5)
        except grpc.RpcError as exc:
            assert exc.code() in ALLOWED, (method, exc.code(), exc.details())

    try:
        run()
    finally:
        channel.close()
    assert ingestor.proc.poll() is None, "the ingestor died"
    assert health_status(ingestor.listen) == SERVING
    assert scan_all(ingestor.listen, b"") == before, "a read request changed the store"


def test_undecodable_store_request_is_invalid_argument(stack: tuple[Service, Service]) -> None:
    _, ingestor = stack
    with grpc.insecure_channel(ingestor.listen) as channel:
        for method in SEEDS:
            call = channel.unary_unary(f"/stemedb.v1.StoreService/{method}")
            with pytest.raises(grpc.RpcError) as info:
                call(b"\xff\xff\xff\xff\x0f", timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (info.value.details() or "").startswith("request:")
