"""``stemedb.v1.MeterService`` on the writer: an agent's live token bucket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from stemedb.v1 import meter_pb2
from stemedb.writer._meter import Meter

__all__ = ["METER_SERVICE_NAME", "MeterServicer"]

METER_SERVICE_NAME = "stemedb.v1.MeterService"
_AGENT_BYTES_MAX = 1024


class MeterServicer:
    """Reads the meter the WriterServicer charges; ``meter()`` is None when nothing is metered."""

    def __init__(self, meter: Callable[[], Meter | None]) -> None:
        self._meter = meter

    async def GetBudget(
        self, request: meter_pb2.GetBudgetRequest, context: Any
    ) -> meter_pb2.GetBudgetResponse:
        if not request.agent or len(request.agent.encode("utf-8")) > _AGENT_BYTES_MAX:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"agent: 1 to {_AGENT_BYTES_MAX} bytes required"
            )
        meter = self._meter()
        if meter is None:
            return meter_pb2.GetBudgetResponse(metered=False)
        budget = meter.config.budget_of(request.agent)
        return meter_pb2.GetBudgetResponse(
            metered=True,
            tokens=meter.tokens(request.agent, time.monotonic()),
            rate=budget.rate,
            burst=budget.burst,
        )
