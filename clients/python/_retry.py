"""Retrying UNAVAILABLE with exponential backoff and full jitter, a bounded number of times, and
RESOURCE_EXHAUSTED when the server says when to come back.

UNAVAILABLE is retried: it means the request did not reach a server that could act on it
(connection refused, server shutting down). RESOURCE_EXHAUSTED is retried only when it carries a
``google.rpc.RetryInfo`` detail (the writer's meter: the agent is over its budget, and nothing
was written): the client waits exactly the delay the server named, instead of its own backoff,
at most ``retry_info_seconds_max``; without RetryInfo (a full disk, a request over its burst)
it is final. Retrying an append is safe even if an attempt did
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
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = ["RetryPolicy", "call_with_retry", "call_with_retry_async", "retry_delay_of"]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry UNAVAILABLE. ``attempts_max`` counts the first try."""

    attempts_max: int = 5
    initial_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 2.0
    multiplier: float = 2.0
    # The longest server-named delay (RetryInfo) the client waits for; a longer one is final.
    retry_info_seconds_max: float = 30.0

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


def retry_delay_of(exc: Any) -> float | None:
    """The delay a RESOURCE_EXHAUSTED error's ``google.rpc.RetryInfo`` names, in seconds."""
    code_of = getattr(exc, "code", None)
    trailing_of = getattr(exc, "trailing_metadata", None)
    if not callable(code_of) or code_of() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    if not callable(trailing_of):
        return None
    for key, value in trailing_of() or ():
        if key != _STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                seconds: float = info.retry_delay.ToTimedelta().total_seconds()
                return max(0.0, seconds)
    return None


def _wait_before_retry(exc: grpc.RpcError, policy: RetryPolicy, retry: int) -> float | None:
    """Seconds to wait before retrying ``exc``, or None when it is final."""
    code_of = getattr(exc, "code", None)
    if callable(code_of) and code_of() == grpc.StatusCode.UNAVAILABLE:
        return policy.backoff_seconds(retry)
    delay = retry_delay_of(exc)
    if delay is not None and delay <= policy.retry_info_seconds_max:
        return delay
    return None


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
            wait = _wait_before_retry(exc, policy, n)
            if n == policy.attempts_max or wait is None:
                raise
        sleep(wait)
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
            wait = _wait_before_retry(exc, policy, n)
            if n == policy.attempts_max or wait is None:
                raise
        await asyncio.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
