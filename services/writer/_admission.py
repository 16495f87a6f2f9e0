"""Admission: the steps every append request goes through before it reaches the log.

One path for all four RPCs (docs/writer.md, "Admission"):

1. the **budget** (:class:`AdmissionBudget`): requests and raw bytes in flight are bounded before
   the request is parsed, records once it is; the error names the bound that refused;
2. **decoding** with the request decoder the ingestor uses too (``stemedb.runtime``), refusing
   protobuf fields the schema does not know;
3. per record, :func:`admit_record`: **validation** (``stemedb.validation``), **canonical bytes**
   and **hash**, and the **signature checks** the policy asks for (:class:`SignaturePolicy`:
   required signatures, trusted keys checked before anything is verified).

The result is one :class:`Admitted` per record; the writer core verifies their checks and appends
them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from stemedb import canonical, validation
from stemedb.errors import InvalidRecord, InvalidSignature, StemeError, UntrustedSigner
from stemedb.runtime import decode_request
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.writer._verify import SignatureCheck

__all__ = [
    "ASSERTION",
    "BATCH",
    "EPOCH",
    "METHODS",
    "VOTE",
    "AdmissionBounds",
    "AdmissionBudget",
    "Admitted",
    "Lease",
    "Method",
    "Overloaded",
    "SignaturePolicy",
    "admit_record",
    "admit_request",
    "decode",
    "kinds_of",
    "record_count",
]


@dataclass(frozen=True, slots=True)
class Method:
    """One append RPC: its messages, and the kind of its one record (None: AppendBatch)."""

    name: str
    request: type[Message]
    response: type[Message]
    kind: str | None


ASSERTION = Method(
    "AppendAssertion", wpb.AppendAssertionRequest, wpb.AppendAssertionResponse, "assertion"
)
VOTE = Method("AppendVote", wpb.AppendVoteRequest, wpb.AppendVoteResponse, "vote")
EPOCH = Method("AppendEpoch", wpb.AppendEpochRequest, wpb.AppendEpochResponse, "epoch")
BATCH = Method("AppendBatch", wpb.AppendBatchRequest, wpb.AppendBatchResponse, None)
METHODS = (ASSERTION, VOTE, EPOCH, BATCH)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A record that passed validation, with everything the rest of the path needs."""

    record: pb.Record
    kind: str  # "assertion", "vote" or "epoch"
    field: str  # the record's path in errors: "assertion", "records[3].vote", ...
    canonical: bytes  # the canonical bytes (docs/canonical-encoding.md)
    content_hash: bytes  # BLAKE3-256 of ``canonical``
    checks: tuple[SignatureCheck, ...]  # the signatures to verify, trust already checked


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """Which signatures a record needs.

    A vote is always signed by its agent. With ``require_signatures`` an assertion or epoch needs
    at least one signature; a trusted-key list implies it (a list of trusted signers that
    admitted unsigned records would mean nothing). Trust is checked before any signature is
    verified, so a caller outside the list cannot make the writer spend CPU on verification.
    """

    require_signatures: bool = False
    trusted_keys: frozenset[bytes] | None = None

    @classmethod
    def of(
        cls, require_signatures: bool, trusted_keys: Collection[bytes] | None
    ) -> SignaturePolicy:
        trusted = None if trusted_keys is None else frozenset(trusted_keys)
        return cls(require_signatures or trusted is not None, trusted)

    def checks(
        self, record: pb.Record, kind: str, field: str, content_hash: bytes
    ) -> tuple[SignatureCheck, ...]:
        """The signature checks of a validated record; raise InvalidSignature when a required
        signature is missing and UntrustedSigner for a key outside the trusted list."""
        if kind == "vote":
            v = record.vote
            found = [SignatureCheck(f"{field}.signature", v.agent_id, v.signature, content_hash)]
        else:
            entries = (
                record.assertion.signatures if kind == "assertion" else record.epoch.signatures
            )
            if not entries and self.require_signatures:
                raise InvalidSignature(
                    f"{field}.signatures", "at least one signature is required by this writer"
                )
            found = [
                SignatureCheck(
                    f"{field}.signatures[{i}].signature", e.public_key, e.signature, content_hash
                )
                for i, e in enumerate(entries)
            ]
        if self.trusted_keys is not None:
            for check in found:
                if check.public_key not in self.trusted_keys:
                    raise UntrustedSigner(check.field, check.public_key.hex())
        return tuple(found)


def admit_record(
    record: pb.Record, field: str, limits: validation.Limits, policy: SignaturePolicy
) -> Admitted:
    """Validate one record (``field`` is its path in errors) and build its Admitted."""
    kind = validation.validate_record(record, field, limits)
    path = f"{field}.{kind}" if field else kind
    encoded = canonical.record_bytes(record)
    digest = canonical.content_hash(encoded)
    return Admitted(record, kind, path, encoded, digest, policy.checks(record, kind, path, digest))


def decode(method: Method, data: bytes) -> Any:
    """The request message, decoded with the shared decoder; unknown fields refused."""
    return decode_request(method.request, data, refuse_unknown=True)


def admit_request(
    method: Method, request: Any, request_bytes: int, limits: validation.Limits,
    policy: SignaturePolicy,
) -> list[Admitted]:  # fmt: skip
    """Every record of a decoded request, admitted in request order (all or nothing)."""
    if method.kind is None:
        records: Sequence[pb.Record] = request.records
        validation.check_batch_size(len(records), request_bytes, limits)
        return [admit_record(r, f"records[{i}]", limits, policy) for i, r in enumerate(records)]
    if not request.HasField(method.kind):
        raise InvalidRecord(method.kind, "is required")
    record = pb.Record()
    getattr(record, method.kind).CopyFrom(getattr(request, method.kind))
    return [admit_record(record, "", limits, policy)]


def record_count(method: Method, request: Any) -> int:
    """How many records a decoded request holds."""
    return len(request.records) if method.kind is None else 1


def kinds_of(method: Method, request: Any | None) -> list[str]:
    """The kinds of a request's records, for metrics: a single-record RPC's own kind; a
    batch's records' real kinds (those with none set, or a batch that did not decode, have no
    kind to count)."""
    if method.kind is not None:
        return [method.kind]
    if request is None:
        return []
    return [k for k in (r.WhichOneof("kind") for r in request.records) if k is not None]


class Overloaded(StemeError):
    """More work in flight than one of the admission bounds allows; ``bound`` names it."""

    def __init__(self, bound: str, reason: str) -> None:
        super().__init__(f"{bound}: {reason}; retry later")
        self.bound = bound


@dataclass(frozen=True, slots=True)
class AdmissionBounds:
    """The writer's bounds on work admitted and not yet answered (flags of the same names)."""

    inflight_requests_max: int = 1024
    inflight_records_max: int = 200_000
    # A request costs about 8 times its raw size while it is parsed, hashed and encoded for the
    # log (measured: docs/writer.md); 32 MiB keeps that work near 256 MiB, a quarter of the
    # pod's 1 GiB limit, leaving the rest to gRPC's receive buffers and the runtime.
    inflight_bytes_max: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("inflight_requests_max", "inflight_records_max", "inflight_bytes_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class AdmissionBudget:
    """Requests, records and raw request bytes in flight, each under its bound.

    Used from the event loop only, so plain counters suffice. A request that alone exceeds the
    byte bound is admitted when nothing else is in flight, so a bound set below the largest
    message makes such requests slow (one at a time), never impossible.
    """

    def __init__(self, bounds: AdmissionBounds) -> None:
        self.bounds = bounds
        self.requests = 0
        self.records = 0
        self.bytes = 0

    def enter(self, request_bytes: int) -> Lease:
        """Admit one request of ``request_bytes`` raw bytes, before it is parsed."""
        b = self.bounds
        if self.requests >= b.inflight_requests_max:
            raise Overloaded(
                "inflight_requests_max",
                f"{self.requests} requests in flight, the bound is {b.inflight_requests_max}",
            )
        if self.bytes + request_bytes > b.inflight_bytes_max and self.requests > 0:
            raise Overloaded(
                "inflight_bytes_max",
                f"{self.bytes} bytes in flight and this request's {request_bytes} would pass "
                f"the bound of {b.inflight_bytes_max} bytes",
            )
        self.requests += 1
        self.bytes += request_bytes
        return Lease(self, request_bytes)


class Lease:
    """One admitted request's share of the budget; ``release`` gives it back (once)."""

    __slots__ = ("_budget", "_bytes", "_records", "_released")

    def __init__(self, budget: AdmissionBudget, request_bytes: int) -> None:
        self._budget = budget
        self._bytes = request_bytes
        self._records = 0
        self._released = False

    def add_records(self, count: int) -> None:
        """Admit the request's ``count`` records, once they are known."""
        budget = self._budget
        bound = budget.bounds.inflight_records_max
        if budget.records + count > bound and budget.records > 0:
            raise Overloaded(
                "inflight_records_max",
                f"{budget.records} records in flight and this request's {count} would pass the "
                f"bound of {bound}",
            )
        budget.records += count
        self._records += count

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        budget = self._budget
        budget.requests -= 1
        budget.bytes -= self._bytes
        budget.records -= self._records
