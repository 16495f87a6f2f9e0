"""Per-agent usage (DESIGN section 12): the meter's job envelopes, counted exactly once.

The writer puts a job envelope (``stemedb.walrecord.JobEnvelope``) on the first record of each
metered request; applying that record adds the request to its agent's usage in the same
WriteBatch as the records, so a crash anywhere counts each request once. Keys::

    U:<agent>                              stemedb.v1.Usage (the agent's totals)
    UR:<8-byte rank><agent>                empty; the rank is ~bits(units) big-endian, so a
                                           prefix scan lists agents by units spent, highest
                                           first, then by agent (ListTopSpenders)

``<agent>`` is the meter's name for the agent in UTF-8 (64 hex digits of a public key, an mTLS
identity, or ``anonymous``). Units are sums of non-negative finite doubles in log order, so every
ingestor and every rebuild holds the same bytes.
"""

from __future__ import annotations

import struct
from typing import Any

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import InvalidRequest
from stemedb.ingestor._state import ApplyState
from stemedb.ingestor._waiter import ReadRunner
from stemedb.v1 import meter_pb2
from stemedb.walrecord import JobEnvelope

__all__ = [
    "USAGE_PREFIX",
    "USAGE_RANK_PREFIX",
    "UsageBatch",
    "UsageReader",
    "UsageServicer",
    "usage_key",
]

USAGE_PREFIX = b"U:"
USAGE_RANK_PREFIX = b"UR:"
TOP_SPENDERS_MAX = 1000
_TOP_SPENDERS_DEFAULT = 10
_AGENT_BYTES_MAX = 1024
_BITS = struct.Struct(">Q")
_DOUBLE = struct.Struct(">d")


def usage_key(agent: str) -> bytes:
    return USAGE_PREFIX + agent.encode("utf-8")


def _rank_key(agent: str, units: float) -> bytes:
    # For non-negative doubles the IEEE bit pattern orders like the value; inverting it makes an
    # ascending key scan list the biggest spenders first.
    (bits,) = _BITS.unpack(_DOUBLE.pack(units))
    return USAGE_RANK_PREFIX + _BITS.pack(0xFFFF_FFFF_FFFF_FFFF - bits) + agent.encode("utf-8")


class UsageBatch:
    """The usage changes of one apply batch (one per batch, used by the apply thread)."""

    def __init__(self, db: StoreDb) -> None:
        self._db = db
        self._usage: dict[str, meter_pb2.Usage] = {}
        self._old_rank: dict[str, bytes | None] = {}

    def add(self, job: JobEnvelope) -> None:
        usage = self._usage.get(job.agent)
        if usage is None:
            stored = self._db.get(usage_key(job.agent))
            usage = meter_pb2.Usage(agent=job.agent)
            if stored is not None:
                usage.ParseFromString(stored)
            self._usage[job.agent] = usage
            self._old_rank[job.agent] = (
                _rank_key(job.agent, usage.units) if stored is not None else None
            )
        usage.requests += 1
        usage.records += job.records
        usage.units += job.units
        usage.tokens += job.tokens
        usage.compute_seconds += job.compute_seconds
        usage.value += job.value

    def changes(self) -> tuple[dict[bytes, bytes], list[bytes]]:
        """(puts, deletes) to write with the batch."""
        puts: dict[bytes, bytes] = {}
        deletes: list[bytes] = []
        for agent, usage in self._usage.items():
            puts[usage_key(agent)] = usage.SerializeToString(deterministic=True)
            new_rank = _rank_key(agent, usage.units)
            old_rank = self._old_rank[agent]
            if old_rank is not None and old_rank != new_rank:
                deletes.append(old_rank)
            puts[new_rank] = b""
        return puts, deletes


class UsageReader:
    """Reads of the usage keys, at the applied LSN."""

    def __init__(self, db: StoreDb, state: ApplyState) -> None:
        self._db = db
        self._state = state

    def get(self, agent: str) -> meter_pb2.GetUsageResponse:
        _check_agent(agent)
        applied = self._state.applied_lsn
        stored = self._db.get(usage_key(agent))
        if stored is None:
            return meter_pb2.GetUsageResponse(found=False, applied_lsn=applied)
        return meter_pb2.GetUsageResponse(
            found=True, usage=meter_pb2.Usage.FromString(stored), applied_lsn=applied
        )

    def top(self, limit: int) -> meter_pb2.ListTopSpendersResponse:
        if limit > TOP_SPENDERS_MAX:
            raise InvalidRequest(f"limit: at most {TOP_SPENDERS_MAX}, got {limit}")
        applied = self._state.applied_lsn
        page = self._db.scan(USAGE_RANK_PREFIX, USAGE_RANK_PREFIX, limit or _TOP_SPENDERS_DEFAULT)
        agents = [key[len(USAGE_RANK_PREFIX) + _BITS.size :] for key, _ in page.entries]
        stored = self._db.multi_get([USAGE_PREFIX + a for a in agents])
        usages = [meter_pb2.Usage.FromString(v) for v in stored if v is not None]
        return meter_pb2.ListTopSpendersResponse(usages=usages, applied_lsn=applied)


def _check_agent(agent: str) -> None:
    if not agent or len(agent.encode("utf-8")) > _AGENT_BYTES_MAX:
        raise InvalidRequest(f"agent: 1 to {_AGENT_BYTES_MAX} bytes of UTF-8 required")


class UsageServicer:
    """``stemedb.v1.UsageService``: GetUsage and ListTopSpenders, with min_lsn waits."""

    def __init__(self, reader: UsageReader, reads: ReadRunner) -> None:
        self._reader = reader
        self._reads = reads

    async def GetUsage(
        self, request: meter_pb2.GetUsageRequest, context: Any
    ) -> meter_pb2.GetUsageResponse:
        return await self._reads.serve(
            context, lambda: self._reader.get(request.agent), min_lsn=request.min_lsn
        )

    async def ListTopSpenders(
        self, request: meter_pb2.ListTopSpendersRequest, context: Any
    ) -> meter_pb2.ListTopSpendersResponse:
        return await self._reads.serve(
            context, lambda: self._reader.top(request.limit), min_lsn=request.min_lsn, paged=True
        )
