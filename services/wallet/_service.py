"""The wallet's gRPC faces: WalletService, and WriterService as a signing proxy.

Both are thin: requests are decoded by :func:`stemedb.runtime.decoding_generic_handler` (bytes
that do not decode get INVALID_ARGUMENT), the work is the :class:`Keystore`'s and the
:class:`Signer`'s, and errors become status codes through the one table of ``_errors``. The proxy
signs records that arrive unsigned with the key named by the ``stemedb-key`` request metadata
(or the default key), forwards the request to the writer, and hands the writer's answer, error or
not, back unchanged (status code, details and trailing metadata).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.message import Message

from stemedb import validation
from stemedb.errors import InvalidRecord
from stemedb.runtime import log_event
from stemedb.runtime._grpc_metrics import code_name
from stemedb.v1 import wallet_pb2 as wpb
from stemedb.v1 import writer_pb2, writer_pb2_grpc
from stemedb.wallet._errors import BadRequest, WalletError, grpc_code_of
from stemedb.wallet._format import check_name
from stemedb.wallet._keystore import KeyInfo, Keystore
from stemedb.wallet._metrics import WalletMetrics
from stemedb.wallet._signer import Signer, is_unsigned

__all__ = [
    "KEY_METADATA",
    "WALLET_SERVICE_NAME",
    "WRITER_SERVICE_NAME",
    "WalletServicer",
    "WriterProxyServicer",
    "key_message",
]

WALLET_SERVICE_NAME = "stemedb.v1.WalletService"
WRITER_SERVICE_NAME = "stemedb.v1.WriterService"
# The request metadata that names the signing key at the proxy (DESIGN section 11).
KEY_METADATA = "stemedb-key"
# Batches up to this many records are signed on the event loop: a thread handoff costs more
# than signing a few records (about 60 us each).
_INLINE_RECORDS_MAX = 32

_log = logging.getLogger("stemedb.wallet")
_Response = TypeVar("_Response", bound=Message)
_Context = grpc.aio.ServicerContext[Any, Any]


def key_message(info: KeyInfo) -> wpb.WalletKey:
    """The public description of a key."""
    return wpb.WalletKey(
        name=info.name, public_key=info.public_key, is_default=info.is_default,
        retired=info.retired, created_unix_ms=info.created_unix_ms,
    )  # fmt: skip


async def _guard(context: _Context, work: Callable[[], _Response]) -> _Response:
    """Run ``work``; a WalletError or InvalidRecord becomes its status code and message."""
    try:
        return work()
    except (WalletError, InvalidRecord) as exc:
        await context.abort(grpc_code_of(exc), str(exc))
        raise  # unreachable: abort raises


def _name(value: str, field: str) -> str:
    try:
        return check_name(value, field)
    except ValueError as exc:
        raise BadRequest(field, str(exc).split(": ", 1)[1]) from None


class WalletServicer:
    """Handlers of stemedb.v1.WalletService (method names are the RPC names)."""

    def __init__(self, keystore: Keystore, signer: Signer) -> None:
        self._keystore = keystore
        self._signer = signer

    async def CreateKey(self, req: wpb.CreateKeyRequest, ctx: _Context) -> wpb.CreateKeyResponse:
        def work() -> wpb.CreateKeyResponse:
            info = self._keystore.create_key(_name(req.name, "name"), make_default=req.make_default)
            log_event(
                _log, logging.INFO, "key created", key=info.name,
                public_key=info.public_key.hex(), default=info.is_default,
            )  # fmt: skip
            return wpb.CreateKeyResponse(key=key_message(info))

        return await _guard(ctx, work)

    async def ListKeys(self, req: wpb.ListKeysRequest, ctx: _Context) -> wpb.ListKeysResponse:
        return wpb.ListKeysResponse(keys=[key_message(k) for k in self._keystore.list_keys()])

    async def GetPublicKey(
        self, req: wpb.GetPublicKeyRequest, ctx: _Context
    ) -> wpb.GetPublicKeyResponse:
        return await _guard(
            ctx, lambda: wpb.GetPublicKeyResponse(key=key_message(self._keystore.get(req.name)))
        )

    async def SignAssertion(
        self, req: wpb.SignAssertionRequest, ctx: _Context
    ) -> wpb.SignAssertionResponse:
        def work() -> wpb.SignAssertionResponse:
            if not req.HasField("assertion"):
                raise BadRequest("assertion", "is required")
            signed = self._signer.sign_assertion(req.assertion, req.key_name, "assertion")
            return wpb.SignAssertionResponse(
                assertion=req.assertion, hash=signed.content_hash, key_name=signed.key.name
            )

        return await _guard(ctx, work)

    async def SignVote(self, req: wpb.SignVoteRequest, ctx: _Context) -> wpb.SignVoteResponse:
        def work() -> wpb.SignVoteResponse:
            if not req.HasField("vote"):
                raise BadRequest("vote", "is required")
            signed = self._signer.sign_vote(req.vote, req.key_name, "vote")
            return wpb.SignVoteResponse(
                vote=req.vote, hash=signed.content_hash, key_name=signed.key.name
            )

        return await _guard(ctx, work)

    async def SignEpoch(self, req: wpb.SignEpochRequest, ctx: _Context) -> wpb.SignEpochResponse:
        def work() -> wpb.SignEpochResponse:
            if not req.HasField("epoch"):
                raise BadRequest("epoch", "is required")
            signed = self._signer.sign_epoch(req.epoch, req.key_name, "epoch")
            return wpb.SignEpochResponse(
                epoch=req.epoch, hash=signed.content_hash, key_name=signed.key.name
            )

        return await _guard(ctx, work)

    async def SetDefaultKey(
        self, req: wpb.SetDefaultKeyRequest, ctx: _Context
    ) -> wpb.SetDefaultKeyResponse:
        def work() -> wpb.SetDefaultKeyResponse:
            info = self._keystore.set_default(_name(req.name, "name"))
            log_event(_log, logging.INFO, "default key set", key=info.name)
            return wpb.SetDefaultKeyResponse(key=key_message(info))

        return await _guard(ctx, work)

    async def RetireKey(self, req: wpb.RetireKeyRequest, ctx: _Context) -> wpb.RetireKeyResponse:
        def work() -> wpb.RetireKeyResponse:
            info = self._keystore.retire(_name(req.name, "name"))
            log_event(_log, logging.INFO, "key retired", key=info.name)
            return wpb.RetireKeyResponse(key=key_message(info))

        return await _guard(ctx, work)


def _key_of(context: _Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == KEY_METADATA:
            name = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
            return _name(name, f"metadata {KEY_METADATA}")
    return ""


class WriterProxyServicer:
    """stemedb.v1.WriterService at the wallet: sign what arrives unsigned, forward, answer."""

    def __init__(
        self,
        signer: Signer,
        writer: grpc.aio.Channel,
        metrics: WalletMetrics,
        limits: validation.Limits = validation.DEFAULT_LIMITS,
        forward_timeout_seconds: float = 60.0,
    ) -> None:
        self._signer = signer
        self._stub = writer_pb2_grpc.WriterServiceStub(writer)  # type: ignore[no-untyped-call]
        self._metrics = metrics
        self._limits = limits
        self._timeout = forward_timeout_seconds

    async def _forward(
        self,
        ctx: _Context,
        call: Callable[..., Awaitable[_Response]],
        request: Message,
        signed: int,
        total: int,
    ) -> _Response:
        remaining = ctx.time_remaining()
        timeout = self._timeout if remaining is None else min(remaining, self._timeout)
        try:
            response = await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            self._metrics.writer_errors.labels(code_name(code)).inc()
            # The writer's answer reaches the agent unchanged: code, details, trailers.
            await ctx.abort(code, exc.details() or "", tuple(exc.trailing_metadata() or ()))
            raise  # unreachable: abort raises
        self._metrics.proxied_records.labels("signed").inc(signed)
        self._metrics.proxied_records.labels("passed").inc(total - signed)
        return response

    def _sign_single(self, ctx: _Context, request: Message, kind: str) -> int:
        if not request.HasField(kind):
            return 0  # the writer says what is missing, in its own words
        record = getattr(request, kind)
        if not is_unsigned(record):
            return 0
        key = _key_of(ctx)
        if kind == "assertion":
            self._signer.sign_assertion(record, key, kind)
        elif kind == "vote":
            self._signer.sign_vote(record, key, kind)
        else:
            self._signer.sign_epoch(record, key, kind)
        return 1

    async def _single(self, ctx: _Context, request: Message, kind: str, call: Any) -> Any:
        try:
            signed = self._sign_single(ctx, request, kind)
        except (WalletError, InvalidRecord) as exc:
            await ctx.abort(grpc_code_of(exc), str(exc))
            raise
        return await self._forward(ctx, call, request, signed, 1)

    async def AppendAssertion(
        self, req: writer_pb2.AppendAssertionRequest, ctx: _Context
    ) -> writer_pb2.AppendAssertionResponse:
        return await self._single(ctx, req, "assertion", self._stub.AppendAssertion)  # type: ignore[no-any-return]

    async def AppendVote(
        self, req: writer_pb2.AppendVoteRequest, ctx: _Context
    ) -> writer_pb2.AppendVoteResponse:
        return await self._single(ctx, req, "vote", self._stub.AppendVote)  # type: ignore[no-any-return]

    async def AppendEpoch(
        self, req: writer_pb2.AppendEpochRequest, ctx: _Context
    ) -> writer_pb2.AppendEpochResponse:
        return await self._single(ctx, req, "epoch", self._stub.AppendEpoch)  # type: ignore[no-any-return]

    async def AppendBatch(
        self, req: writer_pb2.AppendBatchRequest, ctx: _Context
    ) -> writer_pb2.AppendBatchResponse:
        records = req.records
        try:
            if len(records) > self._limits.batch_records_max:
                raise InvalidRecord(
                    "records",
                    f"holds {len(records)} records, more than the limit of "
                    f"{self._limits.batch_records_max}",
                )
            fields = [f"records[{i}].{r.WhichOneof('kind')}" for i, r in enumerate(records)]
            key = _key_of(ctx)
            if len(records) <= _INLINE_RECORDS_MAX:
                signed = len(self._signer.sign_unsigned(records, fields, key))
            else:
                # A large batch is signed off the event loop (libsodium releases the GIL), so
                # that other agents' small requests are not held up behind it.
                done = await asyncio.to_thread(self._signer.sign_unsigned, records, fields, key)
                signed = len(done)
        except (WalletError, InvalidRecord) as exc:
            await ctx.abort(grpc_code_of(exc), str(exc))
            raise
        return await self._forward(ctx, self._stub.AppendBatch, req, signed, len(records))
