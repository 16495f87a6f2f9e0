"""``stemedb.v1.MeterService`` on the writer: an agent's live token bucket."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from stemedb.v1 import meter_pb2
from stemedb.writer._meter import Meter

__all__ = ["METER_SERVICE_NAME", "MeterServicer", "budget_response"]

METER_SERVICE_NAME = "stemedb.v1.MeterService"
_AGENT_BYTES_MAX = 1024


def budget_response(meter: Meter | None, agent: str) -> meter_pb2.GetBudgetResponse:
    """An agent's live bucket, as GetBudget answers it (``metered`` false without a meter)."""
    if meter is None:
        return meter_pb2.GetBudgetResponse(metered=False)
    budget = meter.config.budget_of(agent)
    return meter_pb2.GetBudgetResponse(
        metered=True, tokens=meter.tokens(agent, time.monotonic()), rate=budget.rate,
        burst=budget.burst,
    )  # fmt: skip


class MeterServicer:
    """Reads the meter the WriterServicer charges; ``meter()`` is None when nothing is metered.
    A writer front end has no meter of its own: ``remote`` asks the WAL owner's."""

    def __init__(
        self, meter: Callable[[], Meter | None],
        remote: Callable[[str], Awaitable[meter_pb2.GetBudgetResponse]] | None = None,
    ) -> None:  # fmt: skip
        self._meter = meter
        self._remote = remote

    async def GetBudget(
        self, request: meter_pb2.GetBudgetRequest, context: Any
    ) -> meter_pb2.GetBudgetResponse:
        if not request.agent or len(request.agent.encode("utf-8")) > _AGENT_BYTES_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"agent: 1 to {_AGENT_BYTES_MAX} bytes required"
            )
        if self._remote is not None:
            return await self._remote(request.agent)
        return budget_response(self._meter(), request.agent)
