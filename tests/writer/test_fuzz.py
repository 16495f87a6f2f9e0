"""Random and mutated request bytes through a raw channel: no crash, no hang, no write on error.

Each call must end in OK or INVALID_ARGUMENT within its deadline; only OK calls may add records
to the WAL, exactly as many as their receipts say. ``make fuzz`` runs many more examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import dump_wal
from tests.support import SERVING, Service, health_status
from tests.writer.records import assertion, epoch, vote

EXAMPLES = int(os.environ.get("STEMEDB_FUZZ_EXAMPLES", "150"))
METHODS = ["AppendAssertion", "AppendVote", "AppendEpoch", "AppendBatch"]
RESPONSES = {
    "AppendAssertion": wpb.AppendAssertionResponse,
    "AppendVote": wpb.AppendVoteResponse,
    "AppendEpoch": wpb.AppendEpochResponse,
    "AppendBatch": wpb.AppendBatchResponse,
}
SEEDS = {
    "AppendAssertion": wpb.AppendAssertionRequest(
        assertion=assertion(signers=1)
    ).SerializeToString(),
    "AppendVote": wpb.AppendVoteRequest(vote=vote(b"\x01" * 32)).SerializeToString(),
    "AppendEpoch": wpb.AppendEpochRequest(epoch=epoch()).SerializeToString(),
    "AppendBatch": wpb.AppendBatchRequest(
        records=[pb.Record(assertion=assertion()), pb.Record(epoch=epoch(signers=0))]
    ).SerializeToString(),
}


@st.composite
def mutated(draw: st.DrawFn, method: str) -> bytes:
    data = bytearray(SEEDS[method])
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data += data[pos:]
    return bytes(data)


requests = st.sampled_from(METHODS).flatmap(
    lambda m: st.tuples(st.just(m), st.one_of(st.binary(max_size=300), mutated(m)))
)


def _wal_count(wal_dir: Path) -> int:
    return sum(1 for _ in dump_wal(wal_dir))


def test_fuzz_requests(shared_writer: Service) -> None:
    wal_dir = Path(shared_writer.argv[shared_writer.argv.index("--wal-dir") + 1])
    channel = grpc.insecure_channel(shared_writer.listen)
    calls = {m: channel.unary_unary(f"/stemedb.v1.WriterService/{m}") for m in METHODS}
    state = {"records": _wal_count(wal_dir)}

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(requests)
    def run(req: tuple[str, bytes]) -> None:
        method, data = req
        try:
            raw = calls[method](data, timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
            assert _wal_count(wal_dir) == state["records"], "a refused request wrote"
            return
        resp = RESPONSES[method].FromString(raw)
        added = len(resp.receipts) if method == "AppendBatch" else 1  # type: ignore[attr-defined]
        state["records"] += added
        assert _wal_count(wal_dir) == state["records"]

    try:
        run()
    finally:
        channel.close()
    assert health_status(shared_writer.listen) == SERVING
    assert shared_writer.proc.poll() is None, "the writer died"
