"""Random and mutated request bytes through a raw channel: no crash, no hang, no write on error.

Each call must end in OK or INVALID_ARGUMENT within its deadline; only OK calls may add records
to the WAL, exactly as many as their receipts say. A second test plants unknown fields (any
number the schema lacks, any wire type, at any level) and oversize values (every size limit,
exceeded by a drawn amount) in valid requests: each must be refused naming its path, and write
nothing. ``make fuzz`` runs many more examples.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stemedb import validation
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import dump_wal
from tests.support import SERVING, Service, health_status
from tests.writer.records import assertion, epoch, varint, vote, wire_field

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


# -- unknown fields and oversize values ------------------------------------------------------

LIMITS = validation.DEFAULT_LIMITS


@st.composite
def unknown_field(draw: st.DrawFn, known: set[int]) -> bytes:
    """One field with a number outside ``known`` and a drawn wire type."""
    number = draw(st.integers(1, 2**29 - 1).filter(lambda n: n not in known))
    wire = draw(st.sampled_from([0, 1, 2, 5]))
    tag = varint(number << 3 | wire)
    if wire == 0:
        return tag + varint(draw(st.integers(0, 2**64 - 1)))
    if wire == 1:
        return tag + draw(st.binary(min_size=8, max_size=8))
    if wire == 5:
        return tag + draw(st.binary(min_size=4, max_size=4))
    return wire_field(number, draw(st.binary(max_size=64)))


def _numbers(message: type[Message]) -> set[int]:
    return {f.number for f in message.DESCRIPTOR.fields}


@st.composite
def with_unknown_field(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(method, request bytes, the path the refusal must name)."""
    level = draw(st.sampled_from(["request", "record", "assertion", "value", "signature",
                                  "vote", "epoch"]))  # fmt: skip
    batch = level == "record" or draw(st.booleans())
    a = assertion(signers=1)
    inner: tuple[str, bytes]
    if level in ("request", "assertion", "record"):
        extra = draw(unknown_field(_numbers(pb.Assertion)))
        body = a.SerializeToString() + (extra if level == "assertion" else b"")
        inner, path = ("assertion", body), "assertion"
    elif level == "value":
        value = a.object.SerializeToString() + draw(unknown_field(_numbers(pb.Value)))
        a.ClearField("object")
        inner, path = (
            ("assertion", a.SerializeToString() + wire_field(3, value)),
            "assertion.object",
        )
    elif level == "signature":
        entry = a.signatures[0].SerializeToString() + draw(
            unknown_field(_numbers(pb.SignatureEntry))
        )
        a.ClearField("signatures")
        inner = ("assertion", a.SerializeToString() + wire_field(8, entry))
        path = "assertion.signatures[0]"
    elif level == "vote":
        inner = (
            "vote",
            vote(b"\x01" * 32).SerializeToString() + draw(unknown_field(_numbers(pb.Vote))),
        )
        path = "vote"
    else:
        inner = ("epoch", epoch().SerializeToString() + draw(unknown_field(_numbers(pb.Epoch))))
        path = "epoch"
    kind, body = inner
    kind_number = {"assertion": 1, "vote": 2, "epoch": 3}[kind]
    if not batch:
        method = {"assertion": "AppendAssertion", "vote": "AppendVote", "epoch": "AppendEpoch"}[
            kind
        ]
        data = wire_field(1, body)
        if level == "request":
            data += draw(unknown_field(_numbers(wpb.AppendAssertionRequest)))
            return method, data, "request"
        return method, data, path
    before = draw(st.integers(0, 3))
    filler = wire_field(1, pb.Record(epoch=epoch(signers=0)).SerializeToString())
    record = wire_field(kind_number, body)
    if level == "record":
        record += draw(unknown_field(_numbers(pb.Record)))
        path = ""
    data = filler * before + wire_field(1, record)
    if level == "request":
        data += draw(unknown_field(_numbers(wpb.AppendBatchRequest)))
        return "AppendBatch", data, "request"
    prefix = f"records[{before}]"
    return "AppendBatch", data, f"{prefix}.{path}" if path else prefix


@st.composite
def oversize(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """A request with one value past its limit by a drawn amount, and the field it names."""
    over = draw(st.integers(1, 4096))
    target = draw(st.sampled_from(["subject", "predicate", "text", "blob", "name", "description",
                                   "signatures"]))  # fmt: skip
    if target in ("name", "description"):
        e = epoch(signers=0)
        if target == "name":
            e.name = "n" * (LIMITS.epoch_name_bytes_max + over)
        else:
            e.description = "d" * (LIMITS.epoch_description_bytes_max + over)
        return "AppendEpoch", wpb.AppendEpochRequest(epoch=e).SerializeToString(), f"epoch.{target}"
    a = assertion()
    field = f"assertion.{target}"
    if target == "subject":
        a.subject = "s" * (LIMITS.subject_bytes_max + over)
    elif target == "predicate":
        a.predicate = "p" * (LIMITS.predicate_bytes_max + over)
    elif target == "text":
        a.object.text = "t" * (LIMITS.text_bytes_max + over)
        field = "assertion.object.text"
    elif target == "blob":
        a.object.blob = b"b" * (LIMITS.blob_bytes_max + over)
        field = "assertion.object.blob"
    else:
        for i in range(LIMITS.signatures_max + min(over, 64)):
            a.signatures.add(public_key=i.to_bytes(32, "big"), signature=b"\x01" * 64)
    if draw(st.booleans()):
        req = wpb.AppendBatchRequest(records=[pb.Record(assertion=a)])
        return "AppendBatch", req.SerializeToString(), f"records[0].{field}"
    return "AppendAssertion", wpb.AppendAssertionRequest(assertion=a).SerializeToString(), field


def test_fuzz_unknown_fields_and_oversize_values(shared_writer: Service) -> None:
    wal_dir = Path(shared_writer.argv[shared_writer.argv.index("--wal-dir") + 1])
    channel = grpc.insecure_channel(shared_writer.listen)
    calls = {m: channel.unary_unary(f"/stemedb.v1.WriterService/{m}") for m in METHODS}
    records = _wal_count(wal_dir)

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(st.one_of(with_unknown_field(), oversize()))
    def run(case: tuple[str, bytes, str]) -> None:
        method, data, path = case
        try:
            calls[method](data, timeout=10)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
            assert (exc.details() or "").startswith(path + ":"), (path, exc.details())
        else:
            raise AssertionError(f"{method} accepted a request that {path} should refuse")
        assert _wal_count(wal_dir) == records, "a refused request wrote"

    try:
        run()
    finally:
        channel.close()
    assert health_status(shared_writer.listen) == SERVING
