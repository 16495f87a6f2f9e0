"""A tiny in-process gRPC writer and store whose misbehaviour a test chooses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc, writer_pb2, writer_pb2_grpc


@dataclass
class Behaviour:
    unavailable_first: int = 0  # answer UNAVAILABLE to this many calls, then work
    wrong_hash: bool = False  # answer receipts with a hash that is not the record's
    skip_lsn: bool = False  # batch receipts with a gap in the LSNs
    status: grpc.StatusCode | None = None  # always fail with this status
    stored: dict[bytes, pb.Record] = field(default_factory=dict)  # what Get returns, by key
    calls: int = 0
    lsn: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enter(self, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.calls += 1
            n = self.calls
        if self.status is not None:
            context.abort(self.status, "chosen by the test")
        if n <= self.unavailable_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"not yet (call {n})")

    def receipt(self, record: pb.Record) -> pb.Receipt:
        with self.lock:
            self.lsn += 2 if self.skip_lsn else 1
            lsn = self.lsn
        digest = canonical.record_hash(record)
        if self.wrong_hash:
            digest = bytes(32)
        return pb.Receipt(hash=digest, lsn=lsn)


class _Writer(writer_pb2_grpc.WriterServiceServicer):
    def __init__(self, b: Behaviour) -> None:
        self.b = b

    def AppendAssertion(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.b.enter(context)
        return writer_pb2.AppendAssertionResponse(
            receipt=self.b.receipt(pb.Record(assertion=request.assertion))
        )

    def AppendVote(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.b.enter(context)
        return writer_pb2.AppendVoteResponse(receipt=self.b.receipt(pb.Record(vote=request.vote)))

    def AppendEpoch(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.b.enter(context)
        return writer_pb2.AppendEpochResponse(
            receipt=self.b.receipt(pb.Record(epoch=request.epoch))
        )

    def AppendBatch(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.b.enter(context)
        return writer_pb2.AppendBatchResponse(receipts=[self.b.receipt(r) for r in request.records])


class _Store(store_pb2_grpc.StoreServiceServicer):
    def __init__(self, b: Behaviour) -> None:
        self.b = b

    def Get(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.b.enter(context)
        record = self.b.stored.get(request.key)
        if record is None:
            return spb.GetResponse(found=False, applied_lsn=self.b.lsn)
        return spb.GetResponse(
            found=True, value=record.SerializeToString(), record=record, applied_lsn=self.b.lsn
        )


@contextmanager
def fake_server(b: Behaviour) -> Iterator[str]:
    """Serve both services on a free loopback port; yield the target."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    writer_pb2_grpc.add_WriterServiceServicer_to_server(_Writer(b), server)  # type: ignore[no-untyped-call]
    store_pb2_grpc.add_StoreServiceServicer_to_server(_Store(b), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None).wait()
