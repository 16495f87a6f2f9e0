"""Retry policy: UNAVAILABLE is retried with jittered backoff, a bounded number of times."""

from __future__ import annotations

import asyncio
import random
import time

import grpc
import pytest

from stemedb.client import (
    AsyncClient,
    Client,
    RetryPolicy,
    RpcFailed,
    Unavailable,
    make_assertion,
)
from stemedb.client._retry import call_with_retry
from stemedb.v1 import records_pb2 as pb
from tests.client.fake import Behaviour, fake_server

FAST = RetryPolicy(attempts_max=4, initial_backoff_seconds=0.01, max_backoff_seconds=0.05)


def _assertion() -> pb.Assertion:
    return make_assertion("Q42", "name", "Douglas Adams", source_hash=b"\x05" * 32)


def test_backoff_grows_is_capped_and_jittered() -> None:
    p = RetryPolicy(attempts_max=10, initial_backoff_seconds=0.1, max_backoff_seconds=1.0)
    rng = random.Random(7)
    for retry, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        samples = [p.backoff_seconds(retry, rng) for _ in range(200)]
        assert all(0.0 <= s <= cap for s in samples)
        assert max(samples) > cap * 0.8  # full jitter spreads over the whole range
        assert len(set(samples)) > 100


@pytest.mark.parametrize("bad", [{"attempts_max": 0}, {"multiplier": 0.5}])
def test_policy_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_non_grpc_errors_are_not_retried() -> None:
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise KeyError("x")

    with pytest.raises(KeyError):
        call_with_retry(attempt, FAST, sleep=lambda s: None)
    assert len(calls) == 1


def test_sync_client_retries_unavailable_then_succeeds() -> None:
    b = Behaviour(unavailable_first=3)
    with fake_server(b) as target, Client(target, target, retry=FAST) as c:
        receipt = c.append_assertion(_assertion())
    assert b.calls == 4
    assert receipt.lsn == 1


def test_sync_client_gives_up_after_attempts_max() -> None:
    b = Behaviour(unavailable_first=100)
    with (
        fake_server(b) as target,
        Client(target, target, retry=FAST) as c,
        pytest.raises(Unavailable) as info,
    ):
        c.append_assertion(_assertion())
    assert b.calls == FAST.attempts_max
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    assert info.value.method == "AppendAssertion"


def test_other_statuses_are_final() -> None:
    b = Behaviour(status=grpc.StatusCode.INVALID_ARGUMENT)
    with (
        fake_server(b) as target,
        Client(target, target, retry=FAST) as c,
        pytest.raises(RpcFailed) as info,
    ):
        c.append_assertion(_assertion())
    assert not isinstance(info.value, Unavailable)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert b.calls == 1


def test_async_client_retries_unavailable_then_succeeds() -> None:
    b = Behaviour(unavailable_first=2)

    async def go(target: str) -> int:
        async with AsyncClient(target, target, retry=FAST) as c:
            return (await c.append_assertion(_assertion())).lsn

    with fake_server(b) as target:
        assert asyncio.run(go(target)) == 1
    assert b.calls == 3


def test_unreachable_server_fails_fast_and_bounded() -> None:
    from tests.support import free_port

    target = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with Client(target, target, retry=FAST, timeout_seconds=5) as c, pytest.raises(Unavailable):
        c.append_assertion(_assertion())
    assert time.monotonic() - started < 5
