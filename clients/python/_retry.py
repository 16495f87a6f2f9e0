"""Retrying UNAVAILABLE with exponential backoff and full jitter, a bounded number of times.

Only UNAVAILABLE is retried: it means the request did not reach a server that could act on it
(connection refused, server shutting down). Retrying an append is safe even if an attempt did
land, because a record is its hash: the same record appended twice is the same record (a second
event with a new LSN, deduplicated by hash in the store). Every other status is final.

The wait before retry ``n`` (1-based) is uniform in ``[0, min(max, initial * multiplier**(n-1))]``
("full jitter"), so that many clients that lost the same server do not return in lockstep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

__all__ = ["RetryPolicy", "call_with_retry", "call_with_retry_async"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry UNAVAILABLE. ``attempts_max`` counts the first try."""

    attempts_max: int = 5
    initial_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 2.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts_max < 1:
            raise ValueError(f"attempts_max must be >= 1, got {self.attempts_max}")
        if self.initial_backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("backoff seconds must not be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")

    def backoff_seconds(self, retry: int, rng: random.Random | None = None) -> float:
        """The (jittered) wait before retry number ``retry`` (1 for the first retry)."""
        cap = min(
            self.max_backoff_seconds, self.initial_backoff_seconds * self.multiplier ** (retry - 1)
        )
        return (rng or random).uniform(0.0, cap)


NO_RETRY = RetryPolicy(attempts_max=1)


def _retryable(exc: grpc.RpcError) -> bool:
    code_of = getattr(exc, "code", None)
    return callable(code_of) and code_of() == grpc.StatusCode.UNAVAILABLE


def call_with_retry(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` until it returns, retrying UNAVAILABLE per ``policy``; the last error
    (a grpc.RpcError) propagates."""
    for n in range(1, policy.attempts_max + 1):
        try:
            return attempt()
        except grpc.RpcError as exc:
            if n == policy.attempts_max or not _retryable(exc):
                raise
        sleep(policy.backoff_seconds(n))
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


async def call_with_retry_async(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
) -> T:
    """The asyncio twin of :func:`call_with_retry`."""
    for n in range(1, policy.attempts_max + 1):
        try:
            return await attempt()
        except grpc.RpcError as exc:
            if n == policy.attempts_max or not _retryable(exc):
                raise
        await asyncio.sleep(policy.backoff_seconds(n))
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
