"""min_lsn waits: woken by advance, bounded, failed by a halt or a shutdown."""

from __future__ import annotations

import asyncio

import pytest

from stemedb.ingestor import (
    AppliedLsnWaiter,
    ApplyHalted,
    HaltInfo,
    MinLsnTimeout,
    ShuttingDown,
    TooManyWaiters,
)


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_wait_returns_when_applied() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(5, 10, 1.0)
        await waiter.wait(5, 0.01)  # already applied: no wait
        task = asyncio.ensure_future(waiter.wait(8, 5.0))
        await asyncio.sleep(0)
        waiter.advance(7)
        await asyncio.sleep(0)
        assert not task.done()
        waiter.advance(9)
        await asyncio.wait_for(task, 1.0)
        assert waiter.waiting == 0

    run(body())


def test_wait_times_out_and_is_removed() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(0, 10, 1.0)
        with pytest.raises(MinLsnTimeout):
            await waiter.wait(1, 0.01)
        assert waiter.waiting == 0

    run(body())


def test_wait_without_deadline_is_bounded() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(0, 10, 0.02)
        with pytest.raises(MinLsnTimeout):
            await waiter.wait(1, None)

    run(body())


def test_wait_is_capped_whatever_the_deadline() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(0, 10, 0.05)
        with pytest.raises(MinLsnTimeout, match="min-lsn-wait-seconds-max"):
            # The client asks for an hour; the server's 0.05 s cap ends it (the outer bound
            # only stops a broken cap from hanging the test).
            await asyncio.wait_for(waiter.wait(1, 3600.0), 30.0)
        assert waiter.waiting == 0

    run(body())


def test_halt_and_close_fail_waits() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(0, 10, 1.0)
        task = asyncio.ensure_future(waiter.wait(3, 5.0))
        await asyncio.sleep(0)
        waiter.halt(HaltInfo("corruption", "bad bytes"))
        with pytest.raises(ApplyHalted, match="bad bytes"):
            await task
        with pytest.raises(ApplyHalted):
            await waiter.wait(3, 5.0)
        closing = AppliedLsnWaiter(0, 10, 1.0)
        task = asyncio.ensure_future(closing.wait(3, 5.0))
        await asyncio.sleep(0)
        closing.close()
        with pytest.raises(ShuttingDown):
            await task

    run(body())


def test_waiters_are_bounded() -> None:
    async def body() -> None:
        waiter = AppliedLsnWaiter(0, 2, 1.0)
        tasks = [asyncio.ensure_future(waiter.wait(9, 5.0)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(TooManyWaiters):
            await waiter.wait(9, 5.0)
        waiter.advance(9)
        await asyncio.gather(*tasks)

    run(body())
