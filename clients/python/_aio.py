"""AsyncClient: the asyncio (grpc.aio) twin of :class:`stemedb.client.Client`.

Same methods, same checks, same errors (the client core's, :mod:`stemedb.client._core`): every
method is a coroutine and the ``iter_*`` methods are async iterators. Create and use it inside
one running event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc

from stemedb.client._channel import aio_channel
from stemedb.client._core import Concurrent, Operations, Pages, Rpc
from stemedb.client._errors import translate
from stemedb.client._query import QueryOperations
from stemedb.client._retry import call_with_retry_async

__all__ = ["AsyncClient"]

T = TypeVar("T")


class AsyncClient(Operations, QueryOperations, Concurrent):
    """A writer and a store over grpc.aio. ``async with AsyncClient() as c: ...``"""

    _connect = staticmethod(aio_channel)

    async def close(self) -> None:
        await self._writer_channel.close()
        await self._store_channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self, rpc: Rpc[T]) -> T:
        fn = getattr(self._stubs[rpc.channel], rpc.method)
        deadline = self._deadline(rpc)
        metadata = self._metadata(rpc)
        try:
            resp = await call_with_retry_async(
                lambda: fn(rpc.request, timeout=deadline, metadata=metadata), self.retry
            )
        except grpc.RpcError as exc:
            raise translate(exc, rpc.method, self._target(rpc.channel)) from exc
        return rpc.parse(resp)

    async def _iterate(self, pages: Pages[T]) -> AsyncIterator[T]:
        rpc: Rpc[Any] | None = pages.first()
        while rpc is not None:
            page = await self._run(rpc)
            for item in page.items:
                yield item
            rpc = pages.after(page)
