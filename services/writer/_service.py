"""The gRPC face of the writer: four one-line handlers over one admission pipeline.

Handlers take the raw request bytes (no deserializer is registered) so that the in-flight byte
budget is checked before anything is parsed, a request that does not even decode gets
INVALID_ARGUMENT from our code, and the 16 MiB batch limit is checked against the bytes actually
received. Errors map to status codes in one table.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from stemedb import validation
from stemedb.errors import InvalidRecord, StemeError, UntrustedSigner
from stemedb.runtime import StatusTable, bytes_generic_handler, log_event
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalClosed, WalDiskFull, WalOverloaded
from stemedb.writer._admission import (
    ASSERTION,
    BATCH,
    EPOCH,
    VOTE,
    AdmissionBounds,
    AdmissionBudget,
    Admitted,
    Method,
    Overloaded,
    SignaturePolicy,
    admit_request,
    decode,
    kinds_of,
    record_count,
)
from stemedb.writer._core import Appender, OwnerStatus, Receipt
from stemedb.writer._meter import (
    Charge,
    Meter,
    MeterAsk,
    MeterRefused,
    OverBudget,
    OverValue,
    charge_request,
    meter_ask,
)
from stemedb.writer._metrics import WriterMetrics

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
    OverBudget: grpc.StatusCode.RESOURCE_EXHAUSTED,  # with RetryInfo unless it can never pass
    OverValue: grpc.StatusCode.FAILED_PRECONDITION,
    WalOverloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WalDiskFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    WalClosed: grpc.StatusCode.UNAVAILABLE,
    StemeError: grpc.StatusCode.INTERNAL,  # WalError and the rest
})  # fmt: skip
_OUTCOME_OF_CODE = {
    grpc.StatusCode.PERMISSION_DENIED: "denied",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid",
    grpc.StatusCode.FAILED_PRECONDITION: "metered",
}


_CODE_OF_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and the metrics outcome of an error (an :class:`OwnerStatus`
    carries the code the WAL owner's error mapped to)."""
    if isinstance(exc, OwnerStatus):
        code = _CODE_OF_NUMBER.get(exc.code, grpc.StatusCode.UNKNOWN)
    else:
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


def _mtls_identity(context: grpc.aio.ServicerContext[Any, Any], mtls: bool) -> str | None:
    """The verified client certificate's identity (its SAN, else its CN) under mutual TLS."""
    if not mtls:
        return None
    for identity in context.peer_identities() or ():
        return bytes(identity).decode("utf-8", "replace")
    return None


def meter_status(code: grpc.StatusCode, exc: MeterRefused) -> grpc.Status:
    """The status of a meter refusal; over budget carries ``google.rpc.RetryInfo``."""
    converted: grpc.Status = rpc_status.to_status(meter_status_proto(code, exc))
    return converted


def meter_status_proto(code: grpc.StatusCode, exc: MeterRefused) -> status_pb2.Status:
    """:func:`meter_status` as a ``google.rpc.Status`` message (the WAL owner sends it to the
    front end that asked)."""
    details = []
    wait = exc.decision.retry_after_seconds
    if isinstance(exc, OverBudget) and wait > 0:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromTimedelta(timedelta(seconds=wait))
        packed = any_pb2.Any()
        packed.Pack(info)
        details.append(packed)
    return status_pb2.Status(code=code.value[0], message=str(exc), details=details)


class WriterServicer:
    """Handlers for stemedb.v1.WriterService: the admission pipeline (docs/writer.md)."""

    def __init__(
        self, writer: Appender, metrics: WriterMetrics, limits: validation.Limits,
        policy: SignaturePolicy, bounds: AdmissionBounds, is_draining: Callable[[], bool],
        meter: Meter | None = None, mtls: bool = False, forward_meter: bool = False,
    ) -> None:  # fmt: skip
        self._writer = writer
        self._metrics = metrics
        self._limits = limits
        self._policy = policy
        self.budget = AdmissionBudget(bounds)
        self._is_draining = is_draining
        self.meter = meter  # None: nothing is metered (no --meter-config)
        # A front end's meter is the WAL owner's: each request carries its MeterAsk there.
        self._forward_meter = forward_meter
        self._mtls = mtls
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
        charge: Charge | None = None
        try:
            lease = self.budget.enter(len(data))
            request = decode(method, data)
            lease.add_records(record_count(method, request))
            admitted = admit_request(method, request, len(data), self._limits, self._policy)
            charge = self._charge(request, admitted, len(data), context)
            job = charge.job if charge is not None else None
            ask = self._meter_ask(request, admitted, len(data), context)
            receipts = await self._writer.append(admitted, context.time_remaining(), job, ask)
        except StemeError as exc:
            if charge is not None and self.meter is not None:
                self.meter.refund(charge.decision)
            code, outcome = status_of(exc)
            self._count(kinds_of(method, request), outcome)
            if isinstance(exc, Overloaded):
                self._metrics.refused.labels(exc.bound).inc()
            if isinstance(exc, MeterRefused):
                self._metrics.meter_requests.labels(exc.decision.outcome.value).inc()
                await context.abort_with_status(meter_status(code, exc))
            if isinstance(exc, OwnerStatus) and exc.details:
                status = status_pb2.Status.FromString(exc.details)
                await context.abort_with_status(rpc_status.to_status(status))
            if code == grpc.StatusCode.INTERNAL:
                log_event(_log, logging.ERROR, "append failed", error=str(exc))
            await context.abort(code, str(exc))
            raise  # unreachable: abort raises
        except BaseException:
            if charge is not None and self.meter is not None:
                self.meter.refund(charge.decision)  # e.g. the call was cancelled
            raise
        finally:
            if lease is not None:
                lease.release()
        if charge is not None:
            self._metrics.meter_requests.labels("admitted").inc()
            self._metrics.meter_units.inc(charge.decision.cost)
        self._count([a.kind for a in admitted], "ok")
        return _response(method, receipts)

    def _charge(
        self, request: Any, admitted: Sequence[Admitted], request_bytes: int,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> Charge | None:  # fmt: skip
        if self.meter is None:
            return None
        job = request.job if request.HasField("job") else None
        return charge_request(
            self.meter, [a.record for a in admitted], request_bytes,
            sum(len(a.checks) for a in admitted), job, _mtls_identity(context, self._mtls),
            time.monotonic(),
        )  # fmt: skip

    def _meter_ask(
        self, request: Any, admitted: Sequence[Admitted], request_bytes: int,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> MeterAsk | None:  # fmt: skip
        if not self._forward_meter:
            return None
        job = request.job if request.HasField("job") else None
        return meter_ask(
            [a.record for a in admitted], request_bytes, sum(len(a.checks) for a in admitted),
            job, _mtls_identity(context, self._mtls),
        )  # fmt: skip

    def _count(self, kinds: Sequence[str], outcome: str) -> None:
        for kind, n in Counter(kinds).items():
            self._metrics.records.labels(kind, outcome).inc(n)
