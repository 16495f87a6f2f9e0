"""QueryService over gRPC: thin. Each call is one ReadRunner.serve: the min_lsn wait, the Query
read on the event loop, errors mapped (ViewsUnavailable is UNAVAILABLE)."""

from __future__ import annotations

from typing import Any

import grpc
import grpc.aio

from stemedb.errors import StemeError
from stemedb.ingestor._errors import grpc_code_of
from stemedb.ingestor._query import Query, ViewsUnavailable
from stemedb.ingestor._waiter import ReadRunner
from stemedb.v1 import query_pb2, query_pb2_grpc

__all__ = ["QUERY_SERVICE_NAME", "QueryServicer"]

QUERY_SERVICE_NAME = query_pb2.DESCRIPTOR.services_by_name["QueryService"].full_name

_Context = grpc.aio.ServicerContext[Any, Any]


def _code(error: StemeError) -> grpc.StatusCode:
    if isinstance(error, ViewsUnavailable):
        return grpc.StatusCode.UNAVAILABLE
    return grpc_code_of(error)


class QueryServicer(query_pb2_grpc.QueryServiceServicer):
    def __init__(self, query: Query, reads: ReadRunner) -> None:
        self._query = query
        self._reads = reads

    async def Resolve(
        self, request: query_pb2.ResolveRequest, context: _Context
    ) -> query_pb2.ResolveResponse:
        return await self._reads.serve(
            context,
            lambda: self._query.resolve(
                request.subject, request.predicate, request.lens, request.as_of_lsn
            ),
            min_lsn=request.min_lsn,
            code_of=_code,
        )

    async def ResolveSubject(
        self, request: query_pb2.ResolveSubjectRequest, context: _Context
    ) -> query_pb2.ResolveSubjectResponse:
        return await self._reads.serve(
            context,
            lambda: self._query.resolve_subject(
                request.subject, request.lens, request.page_size, request.page_token
            ),
            min_lsn=request.min_lsn,
            code_of=_code,
        )

    async def GetTally(
        self, request: query_pb2.GetTallyRequest, context: _Context
    ) -> query_pb2.GetTallyResponse:
        return await self._reads.serve(
            context,
            lambda: self._query.get_tally(request.assertion_hash),
            min_lsn=request.min_lsn,
            code_of=_code,
        )

    async def ListHistory(
        self, request: query_pb2.ListHistoryRequest, context: _Context
    ) -> query_pb2.ListHistoryResponse:
        return await self._reads.serve(
            context,
            lambda: self._query.list_history(
                request.subject,
                request.predicate,
                request.lens,
                request.page_size,
                request.page_token,
            ),
            min_lsn=request.min_lsn,
            code_of=_code,
        )

    async def ListLenses(
        self, request: query_pb2.ListLensesRequest, context: _Context
    ) -> query_pb2.ListLensesResponse:
        return await self._reads.serve(context, self._query.list_lenses, code_of=_code)
