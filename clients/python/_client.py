"""Client: the synchronous client of a writer (appends) and a store (reads).

Every call has a deadline (``timeout_seconds`` per attempt, overridable per call), UNAVAILABLE is
retried per the RetryPolicy, and gRPC errors come out as :class:`RpcFailed`. Appends validate and
hash the record locally first (InvalidRecord before any network call) and check the receipt's
hash against it. The requests and checks are the client core's (:mod:`stemedb.client._core`),
shared with :class:`AsyncClient` and the sharded clients; this class only sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import grpc

from stemedb.client._channel import sync_channel
from stemedb.client._core import DEFAULT_TIMEOUT_SECONDS, Blocking, Operations, Pages, Rpc
from stemedb.client._errors import translate
from stemedb.client._query import QueryOperations
from stemedb.client._retry import call_with_retry

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Client"]

T = TypeVar("T")


class Client(Operations, QueryOperations, Blocking):
    """A writer and a store, e.g. ``Client("127.0.0.1:50051", "127.0.0.1:50052")``.

    TLS: ``tls`` for both channels, or ``writer_tls`` / ``store_tls`` for one each. Use it as a
    context manager, or call :meth:`close`. Thread-safe (gRPC channels are).
    """

    _connect = staticmethod(sync_channel)

    def close(self) -> None:
        self._writer_channel.close()
        self._store_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, rpc: Rpc[T]) -> T:
        """Send one request (retrying UNAVAILABLE) and return its checked result."""
        fn = getattr(self._stubs[rpc.channel], rpc.method)
        deadline = self._deadline(rpc)
        metadata = self._metadata(rpc)
        try:
            resp = call_with_retry(
                lambda: fn(rpc.request, timeout=deadline, metadata=metadata), self.retry
            )
        except grpc.RpcError as exc:
            raise translate(exc, rpc.method, self._target(rpc.channel)) from exc
        return rpc.parse(resp)

    def _iterate(self, pages: Pages[T]) -> Iterator[T]:
        rpc: Rpc[Any] | None = pages.first()
        while rpc is not None:
            page = self._run(rpc)
            yield from page.items
            rpc = pages.after(page)
