"""StoreService over gRPC: thin. Wait for min_lsn, call the Store, map errors in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc.aio

from stemedb.ingestor._errors import IngestorError, grpc_code_of
from stemedb.ingestor._store import Store
from stemedb.ingestor._waiter import AppliedLsnWaiter
from stemedb.v1 import store_pb2, store_pb2_grpc

__all__ = ["SERVICE_NAME", "StoreServicer"]

SERVICE_NAME = store_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name

_Response = TypeVar("_Response")
_Context = grpc.aio.ServicerContext[Any, Any]


async def _abort(context: _Context, error: IngestorError) -> NoReturn:
    await context.abort(grpc_code_of(error), str(error))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


class StoreServicer(store_pb2_grpc.StoreServiceServicer):
    def __init__(self, store: Store, waiter: AppliedLsnWaiter) -> None:
        self._store = store
        self._waiter = waiter

    async def _serve(
        self, min_lsn: int, context: _Context, read: Callable[[], _Response]
    ) -> _Response:
        try:
            if min_lsn:
                await self._waiter.wait(min_lsn, context.time_remaining())
            return read()
        except IngestorError as exc:
            await _abort(context, exc)

    async def Get(self, request: store_pb2.GetRequest, context: _Context) -> store_pb2.GetResponse:
        return await self._serve(request.min_lsn, context, lambda: self._store.get(request.key))

    async def ScanPrefix(
        self, request: store_pb2.ScanPrefixRequest, context: _Context
    ) -> store_pb2.ScanPrefixResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._store.scan_prefix(request.prefix, request.page_size, request.page_token),
        )

    async def GetAssertion(
        self, request: store_pb2.GetAssertionRequest, context: _Context
    ) -> store_pb2.GetAssertionResponse:
        return await self._serve(
            request.min_lsn, context, lambda: self._store.get_assertion(request.hash)
        )

    async def ListAssertionsBySubject(
        self, request: store_pb2.ListAssertionsBySubjectRequest, context: _Context
    ) -> store_pb2.ListAssertionsBySubjectResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._store.list_assertions_by_subject(
                request.subject, request.page_size, request.page_token
            ),
        )

    async def ListVotes(
        self, request: store_pb2.ListVotesRequest, context: _Context
    ) -> store_pb2.ListVotesResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._store.list_votes(
                request.assertion_hash, request.page_size, request.page_token
            ),
        )
