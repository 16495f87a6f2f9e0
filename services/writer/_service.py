"""The gRPC face of the writer: four one-line handlers over one admission pipeline.

Handlers take the raw request bytes (no deserializer is registered) so that the in-flight byte
budget is checked before anything is parsed, a request that does not even decode gets
INVALID_ARGUMENT from our code, and the 16 MiB batch limit is checked against the bytes actually
received. Errors map to status codes in one table.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import grpc
import grpc.aio
from stemedb.writer._admission import (
    ASSERTION,
    BATCH,
    EPOCH,
    VOTE,
    AdmissionBounds,
    AdmissionBudget,
    Method,
    Overloaded,
    SignaturePolicy,
    admit_request,
    decode,
    kinds_of,
    record_count,
)
from stemedb.writer._core import Receipt, Writer
from stemedb.writer._metrics import WriterMetrics

from stemedb import validation
from stemedb.errors import InvalidRecord, StemeError, UntrustedSigner
from stemedb.runtime import StatusTable, bytes_generic_handler, log_event
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalClosed, WalDiskFull, WalOverloaded

__all__ = ["SERVICE_NAME", "WriterServicer", "status_of"]

SERVICE_NAME = "stemedb.v1.WriterService"
_SERVICE = wpb.DESCRIPTOR.services_by_name["WriterService"]
_log = logging.getLogger("stemedb.writer")

# The one mapping from errors to gRPC status codes (DESIGN section 6); the nearest listed class
# of an error's MRO wins.
STATUS_TABLE = StatusTable({
    UntrustedSigner: grpc.StatusCode.PERMISSION_DENIED,
    InvalidRecord: grpc.StatusCode.INVALID_ARGUMENT,  # InvalidSignature too
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WalOverloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WalDiskFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WalClosed: grpc.StatusCode.UNAVAILABLE,
    StemeError: grpc.StatusCode.INTERNAL,  # WalError and the rest
})  # fmt: skip
_OUTCOME_OF_CODE = {
    grpc.StatusCode.PERMISSION_DENIED: "denied",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
}


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and the metrics outcome of an error."""
    code = STATUS_TABLE.code_of(exc)
    return code, _OUTCOME_OF_CODE.get(code, "error")


def _response(method: Method, receipts: Sequence[Receipt]) -> bytes:
    if method.kind is None:
        batch = wpb.AppendBatchResponse()
        for r in receipts:
            batch.receipts.add(hash=r.content_hash, lsn=r.lsn, tree_size=r.tree_size)
        return batch.SerializeToString()
    (only,) = receipts
    receipt = pb.Receipt(hash=only.content_hash, lsn=only.lsn, tree_size=only.tree_size)
    single = method.response(receipt=receipt)
    return single.SerializeToString()


class WriterServicer:
    """Handlers for stemedb.v1.WriterService: the admission pipeline (docs/writer.md)."""

    def __init__(
        self, writer: Writer, metrics: WriterMetrics, limits: validation.Limits,
        policy: SignaturePolicy, bounds: AdmissionBounds, is_draining: Callable[[], bool],
    ) -> None:  # fmt: skip
        self._writer = writer
        self._metrics = metrics
        self._limits = limits
        self._policy = policy
        self.budget = AdmissionBudget(bounds)
        self._is_draining = is_draining
        metrics.bind_admission(self.budget, writer)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return bytes_generic_handler(_SERVICE, self)

    async def AppendAssertion(self, request: bytes, context: Any) -> bytes:
        return await self.append(ASSERTION, request, context)

    async def AppendVote(self, request: bytes, context: Any) -> bytes:
        return await self.append(VOTE, request, context)

    async def AppendEpoch(self, request: bytes, context: Any) -> bytes:
        return await self.append(EPOCH, request, context)

    async def AppendBatch(self, request: bytes, context: Any) -> bytes:
        return await self.append(BATCH, request, context)

    async def append(
        self, method: Method, data: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """Budget, decode, admit, verify, commit; answer the receipts or abort with the status
        of the first refusal. Nothing is written unless every step passes for every record."""
        if self._is_draining():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the writer is shutting down")
        request = None
        lease = None
        try:
            lease = self.budget.enter(len(data))
            request = decode(method, data)
            lease.add_records(record_count(method, request))
            admitted = admit_request(method, request, len(data), self._limits, self._policy)
            receipts = await self._writer.append(admitted, context.time_remaining())
        except StemeError as exc:
            code, outcome = status_of(exc)
            self._count(kinds_of(method, request), outcome)
            if isinstance(exc, Overloaded):
                self._metrics.refused.labels(exc.bound).inc()
            if code == grpc.StatusCode.INTERNAL:
                log_event(_log, logging.ERROR, "append failed", error=str(exc))
            await context.abort(code, str(exc))
            raise  # unreachable: abort raises
        finally:
            if lease is not None:
                lease.release()
        self._count([a.kind for a in admitted], "ok")
        return _response(method, receipts)

    def _count(self, kinds: Sequence[str], outcome: str) -> None:
        for kind, n in Counter(kinds).items():
            self._metrics.records.labels(kind, outcome).inc(n)
