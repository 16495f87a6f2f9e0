"""The gRPC backends: one channel per backend for the gateway's lifetime, and their stubs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stemedb.client._channel import aio_channel
from stemedb.gateway._config import GatewayConfig
from stemedb.v1 import log_pb2_grpc, query_pb2_grpc, store_pb2_grpc, writer_pb2_grpc

__all__ = ["HEALTH_CHECK_SECONDS", "Backends"]

# /healthz must answer quickly even when a backend hangs: a probe's own timeout is a few seconds.
HEALTH_CHECK_SECONDS = 1.0


@dataclass
class Backends:
    """The channels (writer or wallet; the ingestor, serving StoreService, QueryService and
    LogService) and their stubs. No other state."""

    config: GatewayConfig
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.config
        # The wallet listens on a Unix socket or loopback, in the pod or on the host: plaintext.
        self.write_channel = (
            grpc.aio.insecure_channel(cfg.wallet)
            if cfg.wallet
            else aio_channel(cfg.writer, cfg.tls)
        )
        self.store_channel = aio_channel(cfg.store, cfg.tls)
        self._channels = [self.write_channel, self.store_channel]
        self.writer = writer_pb2_grpc.WriterServiceStub(self.write_channel)  # type: ignore[no-untyped-call]
        self.store = store_pb2_grpc.StoreServiceStub(self.store_channel)  # type: ignore[no-untyped-call]
        self.query = query_pb2_grpc.QueryServiceStub(self.store_channel)  # type: ignore[no-untyped-call]
        self.log = log_pb2_grpc.LogServiceStub(self.store_channel)  # type: ignore[no-untyped-call]
        self._health: dict[str, Any] = {
            "writer": health_pb2_grpc.HealthStub(self.write_channel),
            "store": health_pb2_grpc.HealthStub(self.store_channel),
        }

    async def health(self) -> dict[str, str]:
        """Each backend's grpc.health.v1 status name for the server (""), or UNREACHABLE."""

        async def one(stub: Any) -> str:
            try:
                resp = await stub.Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_CHECK_SECONDS
                )
            except grpc.aio.AioRpcError:
                return "UNREACHABLE"
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))

        names = list(self._health)
        statuses = await asyncio.gather(*(one(self._health[n]) for n in names))
        return dict(zip(names, statuses, strict=True))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
