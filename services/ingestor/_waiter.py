"""Read-your-writes: ``min_lsn`` waits on the event loop, woken by the apply thread.

Each waiting read parks a future in a heap ordered by the LSN it needs. The apply thread calls
``advance`` through ``loop.call_soon_threadsafe`` once per batch; ``advance`` resolves exactly
the futures whose LSN is now applied. Nothing polls. The number of waits is bounded
(``waiters_max``, TooManyWaiters beyond); a wait lasts at most ``wait_seconds_max`` whatever the
call's deadline (a client cannot park a read for hours), or less when the deadline is nearer.

``ReadRunner`` is the one read wrapper of the ingestor's four read services (Store, Query, Log,
Usage): wait for ``min_lsn``, run the read on the loop (a point read) or in the bounded pool of
``--read-threads`` threads (a paged read), and turn a StemeError into the call's gRPC status.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import grpc.aio

from stemedb.errors import StemeError
from stemedb.ingestor._errors import (
    ApplyHalted,
    MinLsnTimeout,
    ShuttingDown,
    TooManyWaiters,
    grpc_code_of,
)
from stemedb.ingestor._state import HaltInfo

__all__ = ["AppliedLsnWaiter", "ReadRunner"]

_Result = TypeVar("_Result")
_Context = grpc.aio.ServicerContext[Any, Any]


class AppliedLsnWaiter:
    """Lives on the event loop; every method must be called from the loop's thread."""

    def __init__(self, applied_lsn: int, waiters_max: int, wait_seconds_max: float) -> None:
        self._applied = applied_lsn
        self._waiters_max = waiters_max
        self._wait_seconds_max = wait_seconds_max
        self._heap: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._halt: HaltInfo | None = None
        self._closed = False

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def advance(self, applied_lsn: int) -> None:
        self._applied = max(self._applied, applied_lsn)
        while self._heap and self._heap[0][0] <= self._applied:
            _lsn, _seq, future = heapq.heappop(self._heap)
            if not future.done():
                future.set_result(None)

    def halt(self, info: HaltInfo) -> None:
        """No LSN beyond the applied one will come: fail every wait for one."""
        self._halt = info
        self._fail_all(ApplyHalted(info.message(self._applied)))

    def close(self) -> None:
        """Shutting down: fail every wait now, refuse new ones."""
        self._closed = True
        self._fail_all(ShuttingDown("the ingestor is shutting down"))

    def _fail_all(self, error: Exception) -> None:
        heap, self._heap = self._heap, []
        for _lsn, _seq, future in heap:
            if not future.done():
                future.set_exception(error)

    async def wait(self, min_lsn: int, timeout_seconds: float | None) -> None:
        """Return once ``min_lsn`` is applied; raise MinLsnTimeout, ApplyHalted, ShuttingDown."""
        if min_lsn <= self._applied:
            return
        if self._halt is not None:
            raise ApplyHalted(self._halt.message(self._applied))
        if self._closed:
            raise ShuttingDown("the ingestor is shutting down")
        if len(self._heap) >= self._waiters_max:
            raise TooManyWaiters(f"more than {self._waiters_max} reads are waiting for min_lsn")
        limit = self._wait_seconds_max
        if timeout_seconds is not None:
            limit = min(limit, timeout_seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (min_lsn, next(self._seq), future)
        heapq.heappush(self._heap, entry)
        try:
            await asyncio.wait_for(future, timeout=max(0.0, limit))
        except TimeoutError:
            raise MinLsnTimeout(
                f"min_lsn {min_lsn} not applied within {limit:g} s (the call's deadline or the "
                f"server's --min-lsn-wait-seconds-max {self._wait_seconds_max:g} s; applied LSN "
                f"{self._applied})"
            ) from None
        finally:
            if not future.done() or future.cancelled():
                self._remove(entry)

    def _remove(self, entry: tuple[int, int, asyncio.Future[None]]) -> None:
        try:
            self._heap.remove(entry)
        except ValueError:
            return
        heapq.heapify(self._heap)


class ReadRunner:
    """Runs the reads of every ingestor read service: the min_lsn wait, then the read, on the
    event loop or in the bounded read pool, with errors mapped to gRPC status codes."""

    def __init__(self, waiter: AppliedLsnWaiter, read_threads: int) -> None:
        self.waiter = waiter
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=read_threads, thread_name_prefix="stemedb-read"
        )

    def close(self) -> None:
        """Stop the read threads (after the server stopped; running reads finish)."""
        self._pool.shutdown(wait=True)

    async def serve(
        self,
        context: _Context,
        read: Callable[[], _Result],
        *,
        min_lsn: int = 0,
        paged: bool = False,
        code_of: Callable[[StemeError], grpc.StatusCode] = grpc_code_of,
    ) -> _Result:
        """``read()`` once ``min_lsn`` is applied: on the loop, or with ``paged`` in the pool
        (work that grows with a page must not hold the loop). A StemeError raised by the wait
        or the read aborts the call with ``code_of(error)`` and the error's message."""
        try:
            if min_lsn:
                await self.waiter.wait(min_lsn, context.time_remaining())
            if not paged:
                return read()
            return await asyncio.get_running_loop().run_in_executor(self._pool, read)
        except StemeError as exc:
            await context.abort(code_of(exc), str(exc))
            raise AssertionError("unreachable: abort raises") from exc  # pragma: no cover
