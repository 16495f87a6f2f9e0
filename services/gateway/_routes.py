"""The HTTP/JSON routes of DESIGN section 10, each a thin translation to one gRPC call.

Writes go to the writer (or the wallet), reads to the ingestor's StoreService and QueryService.
Every handler reads its inputs with the checks of :mod:`._requests` (errors name the field),
makes its calls with the request's deadline, and answers the v1 message as JSON
(:mod:`stemedb.jsonmessage`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from stemedb.gateway._backends import Backends
from stemedb.gateway._config import GatewayConfig
from stemedb.gateway._errors import GatewayError, from_rpc_error
from stemedb.gateway._fast import JSONBody
from stemedb.gateway._metrics import GatewayMetrics
from stemedb.gateway._requests import (
    Deadline,
    batch_of_body,
    hash_param,
    read_json_body,
    record_of_body,
    str_param,
    uint_param,
)
from stemedb.jsonmessage import message_to_json
from stemedb.merkle import leaf_bytes
from stemedb.v1 import log_pb2, query_pb2, store_pb2, writer_pb2
from stemedb.validation import DEFAULT_LIMITS

__all__ = ["Handlers"]

KEY_HEADER = "x-stemedb-key"
R = TypeVar("R", bound=Message)


def _paging(request: Request) -> dict[str, Any]:
    """The AIP-158 paging parameters and ``min_lsn`` that every paged read takes."""
    return {
        "page_size": uint_param(request, "page_size", bits=32),
        "page_token": str_param(request, "page_token", required=False),
        "min_lsn": uint_param(request, "min_lsn"),
    }


class Handlers:
    """The route handlers; they share the backends, the config and the metrics, nothing else."""

    def __init__(self, config: GatewayConfig, backends: Backends, metrics: GatewayMetrics) -> None:
        self.config = config
        self.backends = backends
        self.metrics = metrics

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(
        self,
        method: Callable[..., Awaitable[R]],
        request: Message,
        *,
        backend: str,
        deadline: Deadline,
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> R:
        try:
            if metadata:
                return await method(request, timeout=deadline.remaining(), metadata=metadata)
            return await method(request, timeout=deadline.remaining())
        except grpc.aio.AioRpcError as exc:
            self.metrics.backend_errors.labels(backend, exc.code().name).inc()
            raise from_rpc_error(exc, backend) from None

    def _write_metadata(self, request: Request) -> tuple[tuple[str, str], ...]:
        key = request.headers.get(KEY_HEADER)
        if key is None:
            return ()
        if not self.config.wallet:
            raise GatewayError(
                400, "X-Stemedb-Key: this gateway signs nothing (it runs without --wallet); "
                "sign the record yourself or start the gateway with --wallet",
                field="X-Stemedb-Key",
            )  # fmt: skip
        return (("stemedb-key", key),)

    @property
    def _writer_name(self) -> str:
        return "wallet" if self.config.wallet else "writer"

    # -- writes -----------------------------------------------------------------------------

    async def _append_one(self, request: Request, kind: str) -> Response:
        deadline = Deadline(request, self.config)
        metadata = self._write_metadata(request)
        record = record_of_body(await read_json_body(request, self.config), kind)
        w = self.backends.writer
        resp: Message
        if kind == "assertion":
            resp = await self._call(
                w.AppendAssertion, writer_pb2.AppendAssertionRequest(assertion=record.assertion),
                backend=self._writer_name, deadline=deadline, metadata=metadata,
            )  # fmt: skip
        elif kind == "vote":
            resp = await self._call(
                w.AppendVote, writer_pb2.AppendVoteRequest(vote=record.vote),
                backend=self._writer_name, deadline=deadline, metadata=metadata,
            )  # fmt: skip
        else:
            resp = await self._call(
                w.AppendEpoch, writer_pb2.AppendEpochRequest(epoch=record.epoch),
                backend=self._writer_name, deadline=deadline, metadata=metadata,
            )  # fmt: skip
        return JSONBody(message_to_json(resp), status_code=201)

    async def append_assertion(self, request: Request) -> Response:
        return await self._append_one(request, "assertion")

    async def append_vote(self, request: Request) -> Response:
        return await self._append_one(request, "vote")

    async def append_epoch(self, request: Request) -> Response:
        return await self._append_one(request, "epoch")

    async def append_batch(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        metadata = self._write_metadata(request)
        body = await read_json_body(request, self.config)
        records = batch_of_body(body, DEFAULT_LIMITS.batch_records_max)
        resp = await self._call(
            self.backends.writer.AppendBatch, writer_pb2.AppendBatchRequest(records=records),
            backend=self._writer_name, deadline=deadline, metadata=metadata,
        )  # fmt: skip
        return JSONBody(message_to_json(resp), status_code=201)

    # -- reads ------------------------------------------------------------------------------

    async def query(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        req = query_pb2.ResolveRequest(
            subject=str_param(request, "subject", required=True),
            predicate=str_param(request, "predicate", required=True),
            lens=str_param(request, "lens", required=False),
            min_lsn=uint_param(request, "min_lsn"),
            as_of_lsn=uint_param(request, "as_of_lsn"),
        )
        resp = await self._call(
            self.backends.query.Resolve, req, backend="store", deadline=deadline
        )
        return JSONBody(message_to_json(resp))

    async def subject(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        subject = request.path_params["subject"]
        if not subject:
            raise GatewayError(400, "subject: must not be empty", field="subject")
        req = query_pb2.ResolveSubjectRequest(
            subject=subject,
            lens=str_param(request, "lens", required=False),
            **_paging(request),
        )
        resp = await self._call(
            self.backends.query.ResolveSubject, req, backend="store", deadline=deadline
        )
        return JSONBody(message_to_json(resp))

    async def record(self, request: Request) -> Response:
        """The record with this hash, whatever its kind (assertion, vote or epoch)."""
        deadline = Deadline(request, self.config)
        digest = hash_param(request.path_params["hash"], "hash")
        min_lsn = uint_param(request, "min_lsn")
        hex_hash = digest.hex()
        # The three record prefixes are looked up at once: one round trip of latency, not three.
        keys = [f"{prefix}:{hex_hash}".encode() for prefix in ("H", "V", "E")]
        answers = await asyncio.gather(*(
            self._call(self.backends.store.Get, store_pb2.GetRequest(key=key, min_lsn=min_lsn),
                       backend="store", deadline=deadline)
            for key in keys
        ))  # fmt: skip
        for resp in answers:
            if resp.found and resp.HasField("record"):
                return JSONBody({
                    "hash": hex_hash,
                    "record": message_to_json(resp.record),
                    "applied_lsn": resp.applied_lsn,
                })  # fmt: skip
        raise GatewayError(
            404, f"hash: no record {hex_hash} (applied_lsn {answers[0].applied_lsn})",
            field="hash",
        )  # fmt: skip

    async def tally(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        digest = hash_param(request.path_params["hash"], "hash")
        req = query_pb2.GetTallyRequest(
            assertion_hash=digest, min_lsn=uint_param(request, "min_lsn")
        )
        resp = await self._call(
            self.backends.query.GetTally, req, backend="store", deadline=deadline
        )
        if not resp.found:
            raise GatewayError(
                404, f"hash: no assertion {digest.hex()} (applied_lsn {resp.applied_lsn})",
                field="hash",
            )  # fmt: skip
        return JSONBody(message_to_json(resp))

    async def votes(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        digest = hash_param(request.path_params["hash"], "hash")
        req = store_pb2.ListVotesRequest(
            assertion_hash=digest,
            **_paging(request),
        )
        resp = await self._call(
            self.backends.store.ListVotes, req, backend="store", deadline=deadline
        )
        return JSONBody(message_to_json(resp))

    async def history(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        req = query_pb2.ListHistoryRequest(
            subject=str_param(request, "subject", required=True),
            predicate=str_param(request, "predicate", required=True),
            lens=str_param(request, "lens", required=False),
            **_paging(request),
        )
        resp = await self._call(
            self.backends.query.ListHistory, req, backend="store", deadline=deadline
        )
        return JSONBody(message_to_json(resp))

    async def lenses(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        resp = await self._call(
            self.backends.query.ListLenses, query_pb2.ListLensesRequest(), backend="store",
            deadline=deadline,
        )  # fmt: skip
        return JSONBody(message_to_json(resp))

    # -- the verifiable log (DESIGN section 13) ---------------------------------------------

    async def _log_call(
        self,
        method: Callable[..., Awaitable[R]],
        request: Message,
        deadline: Deadline,
        params: tuple[str, ...],
    ) -> R:
        """A LogService call. The ingestor's refusals start with the parameter they are about
        ("tree_size 9 is above the served checkpoint's size 4"); name it as the field."""
        try:
            return await self._call(method, request, backend="store", deadline=deadline)
        except GatewayError as exc:
            if exc.field is None:
                exc.field = next((p for p in params if exc.detail.startswith(p + " ")), None)
            raise

    async def checkpoint(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        resp = await self._log_call(
            self.backends.log.GetCheckpoint, log_pb2.GetCheckpointRequest(), deadline, ()
        )
        return JSONBody(message_to_json(resp))

    async def inclusion_proof(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        lsn = uint_param(request, "lsn", required=True, minimum=1)
        req = log_pb2.GetInclusionProofRequest(lsn=lsn, tree_size=uint_param(request, "tree_size"))
        resp = await self._log_call(
            self.backends.log.GetInclusionProof, req, deadline, ("lsn", "tree_size")
        )
        body = message_to_json(resp)
        # For a browser, which has no canonical encoder: the leaf bytes of the record as
        # appended. Clients that can should recompute them (stemedb.merkle.leaf_bytes).
        body["leaf"] = leaf_bytes(lsn, resp.record).hex() if resp.HasField("record") else ""
        return JSONBody(body)

    async def consistency_proof(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        first = uint_param(request, "first_size", required=True, minimum=1)
        second = uint_param(request, "second_size", required=True, minimum=1)
        if first > second:
            raise GatewayError(
                400, f"first_size: {first} is above second_size {second}", field="first_size"
            )
        req = log_pb2.GetConsistencyProofRequest(first_size=first, second_size=second)
        resp = await self._log_call(
            self.backends.log.GetConsistencyProof, req, deadline, ("first_size", "second_size")
        )
        return JSONBody(message_to_json(resp))

    async def record_lsns(self, request: Request) -> Response:
        deadline = Deadline(request, self.config)
        digest = hash_param(request.path_params["hash"], "hash")
        req = log_pb2.ListRecordLsnsRequest(
            hash=digest,
            **_paging(request),
        )
        resp = await self._log_call(
            self.backends.log.ListRecordLsns, req, deadline, ("hash", "page_token")
        )
        return JSONBody(message_to_json(resp))

    # -- operations -------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        statuses = await self.backends.health()
        ok = all(s == "SERVING" for s in statuses.values())
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "backends": statuses}
        return JSONBody(body, status_code=200 if ok else 503)
