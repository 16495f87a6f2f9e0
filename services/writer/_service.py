"""The gRPC face of the writer: thin handlers over :class:`Writer`, errors mapped in one table.

Handlers take the raw request bytes (no deserializer is registered) so that a request that does
not even decode gets INVALID_ARGUMENT from our code, and so that the 16 MiB batch limit is
checked against the bytes actually received.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import DecodeError, Message

from stemedb import validation
from stemedb.errors import InvalidRecord, StemeError, UntrustedSigner
from stemedb.runtime import log_event
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalClosed, WalDiskFull, WalError, WalOverloaded
from stemedb.writer._core import Overloaded, Writer
from stemedb.writer._metrics import WriterMetrics

__all__ = ["SERVICE_NAME", "WriterServicer", "status_of"]

SERVICE_NAME = "stemedb.v1.WriterService"
_log = logging.getLogger("stemedb.writer")

# The one mapping from errors to gRPC status codes (DESIGN section 6), most specific first.
_STATUS_TABLE: list[tuple[type[BaseException], grpc.StatusCode, str]] = [
    (UntrustedSigner, grpc.StatusCode.PERMISSION_DENIED, "denied"),
    (InvalidRecord, grpc.StatusCode.INVALID_ARGUMENT, "invalid"),  # InvalidSignature too
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED, "error"),
    (WalOverloaded, grpc.StatusCode.RESOURCE_EXHAUSTED, "error"),
    (WalDiskFull, grpc.StatusCode.RESOURCE_EXHAUSTED, "error"),
    (WalClosed, grpc.StatusCode.UNAVAILABLE, "error"),
    (WalError, grpc.StatusCode.INTERNAL, "error"),
    (StemeError, grpc.StatusCode.INTERNAL, "error"),
]


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and the metrics outcome of an error."""
    for kind, code, outcome in _STATUS_TABLE:
        if isinstance(exc, kind):
            return code, outcome
    return grpc.StatusCode.INTERNAL, "error"


_VALIDATORS: dict[str, Callable[[Any, str, validation.Limits], None]] = {
    "assertion": validation.validate_assertion,
    "vote": validation.validate_vote,
    "epoch": validation.validate_epoch,
}


def _parse(cls: type[Message], data: bytes) -> Any:
    try:
        return cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidRecord("request", f"is not a valid {cls.DESCRIPTOR.full_name}: {exc}") from exc


class WriterServicer:
    """Handlers for stemedb.v1.WriterService."""

    def __init__(
        self, writer: Writer, metrics: WriterMetrics, limits: validation.Limits,
        inflight_requests_max: int, is_draining: Callable[[], bool],
    ) -> None:  # fmt: skip
        self._writer = writer
        self._metrics = metrics
        self._limits = limits
        self._inflight_max = inflight_requests_max
        self._inflight = 0
        self._is_draining = is_draining

    def generic_handler(self) -> grpc.GenericRpcHandler:
        def unary(fn: Callable[..., Any]) -> grpc.RpcMethodHandler[Any, Any]:
            return grpc.unary_unary_rpc_method_handler(fn)

        return grpc.method_handlers_generic_handler(
            SERVICE_NAME,
            {
                "AppendAssertion": unary(
                    self._single_rpc(
                        wpb.AppendAssertionRequest, wpb.AppendAssertionResponse, "assertion"
                    )
                ),
                "AppendVote": unary(
                    self._single_rpc(wpb.AppendVoteRequest, wpb.AppendVoteResponse, "vote")
                ),
                "AppendEpoch": unary(
                    self._single_rpc(wpb.AppendEpochRequest, wpb.AppendEpochResponse, "epoch")
                ),
                "AppendBatch": unary(self.append_batch),
            },
        )

    async def _run(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        request: bytes,
        parse: Callable[[bytes], tuple[list[pb.Record], list[str], list[str]]],
        respond: Callable[[list[tuple[bytes, int]]], bytes],
        kind_hint: str,
    ) -> bytes:
        kinds: Sequence[str] = [kind_hint]
        if self._is_draining():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the writer is shutting down")
        if self._inflight >= self._inflight_max:
            self._metrics.records.labels(kind_hint, "error").inc()
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{self._inflight} requests in flight, the bound is {self._inflight_max}: retry",
            )
        self._inflight += 1
        self._metrics.inflight.inc()
        try:
            records, kinds, fields = parse(request)
            remaining = context.time_remaining()
            receipts = await self._writer.append(records, kinds, fields, timeout_seconds=remaining)
        except (StemeError, WalError) as exc:
            code, outcome = status_of(exc)
            for k in kinds:
                self._metrics.records.labels(k, outcome).inc()
            if code == grpc.StatusCode.INTERNAL:
                log_event(_log, logging.ERROR, "append failed", error=str(exc))
            await context.abort(code, str(exc))
        finally:
            self._inflight -= 1
            self._metrics.inflight.dec()
        for k in kinds:
            self._metrics.records.labels(k, "ok").inc()
        return respond([(r.content_hash, r.lsn) for r in receipts])

    # Parsers: request bytes -> (records, kinds, error-path prefixes). Validation happens here.
    def _single(self, cls: type[Message], kind: str) -> Callable[[bytes], Any]:
        def parse(data: bytes) -> tuple[list[pb.Record], list[str], list[str]]:
            req = _parse(cls, data)
            if not req.HasField(kind):
                raise InvalidRecord(kind, "is required")
            inner = getattr(req, kind)
            _VALIDATORS[kind](inner, kind, self._limits)
            record = pb.Record()
            getattr(record, kind).CopyFrom(inner)
            return [record], [kind], [kind]

        return parse

    @staticmethod
    def _single_response(cls: type[Message]) -> Callable[[list[tuple[bytes, int]]], bytes]:
        def respond(receipts: list[tuple[bytes, int]]) -> bytes:
            h, lsn = receipts[0]
            return cls(receipt=pb.Receipt(hash=h, lsn=lsn)).SerializeToString()

        return respond

    # The parse and respond functions of the single-record RPCs are built once, not per call.
    def _single_rpc(
        self, request_cls: type[Message], response_cls: type[Message], kind: str
    ) -> Callable[[bytes, Any], Awaitable[bytes]]:
        parse, respond = self._single(request_cls, kind), self._single_response(response_cls)

        async def rpc(request: bytes, context: Any) -> bytes:
            return await self._run(context, request, parse, respond, kind)

        return rpc

    def _parse_batch(self, data: bytes) -> tuple[list[pb.Record], list[str], list[str]]:
        req = _parse(wpb.AppendBatchRequest, data)
        records = list(req.records)
        kinds = validation.validate_batch(records, len(data), self._limits)
        fields = [f"records[{i}].{k}" for i, k in enumerate(kinds)]
        return records, kinds, fields

    @staticmethod
    def _batch_response(receipts: list[tuple[bytes, int]]) -> bytes:
        resp = wpb.AppendBatchResponse()
        for h, lsn in receipts:
            resp.receipts.add(hash=h, lsn=lsn)
        return resp.SerializeToString()

    async def append_batch(self, request: bytes, context: Any) -> bytes:
        return await self._run(
            context, request, self._parse_batch, self._batch_response, "assertion"
        )
