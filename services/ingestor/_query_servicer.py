"""QueryService over gRPC: thin. Wait for min_lsn, call the Query, map errors in one place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc.aio
from stemedb.ingestor._errors import IngestorError, grpc_code_of
from stemedb.ingestor._query import Query, ViewsUnavailable
from stemedb.ingestor._waiter import AppliedLsnWaiter

from stemedb.v1 import query_pb2, query_pb2_grpc

__all__ = ["QUERY_SERVICE_NAME", "QueryServicer"]

QUERY_SERVICE_NAME = query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name

_Response = TypeVar("_Response")
_Context = grpc.aio.ServicerContext[Any, Any]


def _code(error: IngestorError) -> grpc.StatusCode:
    if isinstance(error, ViewsUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc_code_of(error)


async def _abort(context: _Context, error: IngestorError) -> NoReturn:
    await context.abort(_code(error), str(error))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    def __init__(self, query: Query, waiter: AppliedLsnWaiter) -> None:
        self._query = query
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

    async def Resolve(
        self, request: query_pb2.ResolveRequest, context: _Context
    ) -> query_pb2.ResolveResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._query.resolve(
                request.subject, request.predicate, request.lens, request.as_of_lsn
            ),
        )

    async def ResolveSubject(
        self, request: query_pb2.ResolveSubjectRequest, context: _Context
    ) -> query_pb2.ResolveSubjectResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._query.resolve_subject(
                request.subject, request.lens, request.page_size, request.page_token
            ),
        )

    async def GetTally(
        self, request: query_pb2.GetTallyRequest, context: _Context
    ) -> query_pb2.GetTallyResponse:
        return await self._serve(
            request.min_lsn, context, lambda: self._query.get_tally(request.assertion_hash)
        )

    async def ListHistory(
        self, request: query_pb2.ListHistoryRequest, context: _Context
    ) -> query_pb2.ListHistoryResponse:
        return await self._serve(
            request.min_lsn,
            context,
            lambda: self._query.list_history(
                request.subject,
                request.predicate,
                request.lens,
                request.page_size,
                request.page_token,
            ),
        )

    async def ListLenses(
        self, request: query_pb2.ListLensesRequest, context: _Context
    ) -> query_pb2.ListLensesResponse:
        return await self._serve(0, context, self._query.list_lenses)
