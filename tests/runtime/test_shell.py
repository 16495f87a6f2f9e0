"""ServiceShell in-process, with a real grpc.aio server on loopback: one call adds a servicer
with its health name, reflection entry and metric series; the data-path limit spares health."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import CollectorRegistry, generate_latest

from stemedb.runtime import ServerSettings, ServiceShell, decoding_generic_handler
from stemedb.v1 import store_pb2, store_pb2_grpc, writer_pb2
from tests.support import free_port

_STORE = store_pb2.DESCRIPTOR.services_by_name["StoreService"]
_WRITER = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]
_SERVING = health_pb2.HealthCheckResponse.SERVING


class _ParkedStore(store_pb2_grpc.StoreServiceServicer):
    """Get parks until released; the shape of a min_lsn wait."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.parked = 0

    async def Get(  # type: ignore[override]
        self, request: store_pb2.GetRequest, context: Any
    ) -> store_pb2.GetResponse:
        self.parked += 1
        await self.release.wait()
        return store_pb2.GetResponse(found=False, applied_lsn=7)


def _settings() -> ServerSettings:
    return ServerSettings(
        listen=f"127.0.0.1:{free_port()}",
        metrics_listen=f"127.0.0.1:{free_port()}",
        shutdown_grace_seconds=1.0,
    )


async def _until(condition: Any, seconds: float) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.01)


async def _scenario() -> None:
    cfg = _settings()
    registry = CollectorRegistry()
    shell = ServiceShell(cfg, registry, _log(), data_rpcs_concurrent_max=2)
    store = _ParkedStore()
    shell.add_service(_STORE, decoding_generic_handler(_STORE, store))
    shell.add_service(_WRITER, grpc.method_handlers_generic_handler(_WRITER.full_name, {}))
    await shell.set_health("stemedb.extra", False)
    await shell.start()
    try:
        async with grpc.aio.insecure_channel(cfg.listen) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", _STORE.full_name, _WRITER.full_name):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert reply.status == _SERVING, name
            extra = await health.Check(
                health_pb2.HealthCheckRequest(service="stemedb.extra"), timeout=5
            )
            assert extra.status == health_pb2.HealthCheckResponse.NOT_SERVING
            assert {_STORE.full_name, _WRITER.full_name} <= await _reflected(channel)
            text = generate_latest(registry).decode()
            assert 'grpc_method="AppendBatch"' in text and 'grpc_method="ScanPrefix"' in text

            stub = store_pb2_grpc.StoreServiceStub(channel)
            parked = [
                asyncio.ensure_future(stub.Get(store_pb2.GetRequest(key=b"k"), timeout=30))
                for _ in range(2)
            ]
            await _until(lambda: store.parked == 2, 10)
            try:
                await stub.Get(store_pb2.GetRequest(key=b"k"), timeout=5)
                raise AssertionError("a third data call was admitted over the bound of 2")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == _SERVING
            assert await _reflected(channel)  # reflection is exempt too
            store.release.set()
            assert [(await p).applied_lsn for p in parked] == [7, 7]
            assert shell.limiter is not None and shell.limiter.in_flight == 0
    finally:
        await shell.drain()


async def _reflected(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: set[str] = set()
    async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
        names |= {s.name for s in reply.list_services_response.service}
    return names


def _log() -> Any:
    import logging

    return logging.getLogger("tests.runtime")


def test_one_call_per_servicer_and_health_spared_by_the_limit() -> None:
    asyncio.run(_scenario())


def test_add_service_after_start_is_refused() -> None:
    async def scenario() -> None:
        shell = ServiceShell(_settings(), CollectorRegistry(), _log())
        await shell.start()
        try:
            shell.add_service(_STORE, grpc.method_handlers_generic_handler(_STORE.full_name, {}))
            raise AssertionError("add_service after start was accepted")
        except RuntimeError as exc:
            assert "after start" in str(exc)
        finally:
            await shell.drain()

    asyncio.run(scenario())


@dataclasses.dataclass(frozen=True)
class _UnixSettings(ServerSettings):
    LISTEN_UNIX_ALLOWED: ClassVar[bool] = True


def test_a_unix_socket_is_0600_stale_ones_replaced_live_ones_and_files_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="--listen"):
        ServerSettings(listen=f"unix:{tmp_path}/x.sock")  # only where the service allows it
    with pytest.raises(ValueError, match="needs a path"):
        _UnixSettings(listen="unix:")
    sock_dir = Path(tempfile.mkdtemp(prefix="sts", dir="/tmp"))  # socket paths are short
    path = sock_dir / "svc.sock"

    def settings() -> _UnixSettings:
        return _UnixSettings(
            listen=f"unix:{path}", metrics_listen=f"127.0.0.1:{free_port()}",
            shutdown_grace_seconds=1.0,
        )  # fmt: skip

    async def scenario() -> None:
        # A socket left behind by a process that died: bound, never unlinked, nobody listens.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()
        old_umask = os.umask(0)  # the mode must not depend on the caller's umask
        try:
            shell = ServiceShell(settings(), CollectorRegistry(), _log())
            await shell.start()
        finally:
            os.umask(old_umask)
        try:
            assert stat.S_ISSOCK(path.lstat().st_mode)
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == _SERVING
            second = ServiceShell(settings(), CollectorRegistry(), _log())
            with pytest.raises(OSError, match="another process serves"):
                await second.start()
            await second.drain()
            assert path.exists(), "the live socket was kept"
        finally:
            await shell.drain()
        assert not path.exists(), "the drain removes the socket"
        path.write_bytes(b"not a socket")
        third = ServiceShell(settings(), CollectorRegistry(), _log())
        with pytest.raises(OSError, match="not a socket"):
            await third.start()
        await third.drain()
        assert path.read_bytes() == b"not a socket"

    try:
        asyncio.run(scenario())
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
