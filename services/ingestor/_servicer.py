"""StoreService over gRPC: thin. Each call is one ReadRunner.serve over the Store.

The waits run on the event loop (futures, no thread each). Paged reads (ScanPrefix and the
list reads), whose work grows with the page, run in a bounded pool of ``read_threads``
threads, so a large page is never built on the event loop and health checks and new calls are
answered meanwhile; reads queued for a thread are bounded by ``--rpcs-concurrent-max``. Point
reads (Get, GetAssertion: one key, one record bounded by the input limits; BatchGet of up to 32
keys) stay on the loop: a hop to a thread and back costs more than the read itself (measured
0.05 to 0.4 ms per hop, against a few microseconds for the lookup). The waits, the pool and the
error mapping are the one ReadRunner shared with the Query, Log and Usage services.
"""

from __future__ import annotations

from typing import Any

import grpc.aio

from stemedb.ingestor._store import Store
from stemedb.ingestor._waiter import ReadRunner
from stemedb.ingestor._wire import Encoded
from stemedb.v1 import store_pb2

__all__ = ["SERVICE_NAME", "StoreServicer"]

SERVICE_NAME = store_pb2.DESCRIPTOR.services_by_name["StoreService"].full_name

_Context = grpc.aio.ServicerContext[Any, Any]
_POINT_KEYS_MAX = 32  # a BatchGet of more keys runs in the read pool, like a page


class StoreServicer:
    """Handlers of stemedb.v1.StoreService; Get, GetAssertion and BatchGet answer responses
    already encoded from the stored bytes (``Encoded``), the others messages."""

    def __init__(self, store: Store, reads: ReadRunner) -> None:
        self._store = store
        self._reads = reads

    async def Get(self, request: store_pb2.GetRequest, context: _Context) -> Encoded:
        return Encoded(
            await self._reads.serve(
                context, lambda: self._store.get_bytes(request.key), min_lsn=request.min_lsn
            )
        )

    async def BatchGet(self, request: store_pb2.BatchGetRequest, context: _Context) -> Encoded:
        keys = list(request.keys)
        return Encoded(
            await self._reads.serve(
                context,
                lambda: self._store.batch_get_bytes(keys),
                min_lsn=request.min_lsn,
                paged=len(keys) > _POINT_KEYS_MAX,
            )
        )

    async def ScanPrefix(
        self, request: store_pb2.ScanPrefixRequest, context: _Context
    ) -> store_pb2.ScanPrefixResponse:
        return await self._reads.serve(
            context,
            lambda: self._store.scan_prefix(request.prefix, request.page_size, request.page_token),
            min_lsn=request.min_lsn,
            paged=True,
        )

    async def GetAssertion(
        self, request: store_pb2.GetAssertionRequest, context: _Context
    ) -> Encoded:
        return Encoded(
            await self._reads.serve(
                context,
                lambda: self._store.get_assertion_bytes(request.hash),
                min_lsn=request.min_lsn,
            )
        )

    async def ListAssertionsBySubject(
        self, request: store_pb2.ListAssertionsBySubjectRequest, context: _Context
    ) -> store_pb2.ListAssertionsBySubjectResponse:
        return await self._reads.serve(
            context,
            lambda: self._store.list_assertions_by_subject(
                request.subject, request.page_size, request.page_token
            ),
            min_lsn=request.min_lsn,
            paged=True,
        )

    async def ListVotes(
        self, request: store_pb2.ListVotesRequest, context: _Context
    ) -> store_pb2.ListVotesResponse:
        return await self._reads.serve(
            context,
            lambda: self._store.list_votes(
                request.assertion_hash, request.page_size, request.page_token
            ),
            min_lsn=request.min_lsn,
            paged=True,
        )

    async def ListSigners(
        self, request: store_pb2.ListSignersRequest, context: _Context
    ) -> store_pb2.ListSignersResponse:
        return await self._reads.serve(
            context,
            lambda: self._store.list_signers(
                request.assertion_hash, request.page_size, request.page_token
            ),
            min_lsn=request.min_lsn,
            paged=True,
        )
