"""The shell's drain with long-lived streams open, in real processes (writer, ingestor,
wallet): a grpc.health.v1 Watch sees NOT_SERVING, then its stream ends with OK; a server
reflection stream the client keeps open ends with OK; and the process exits about as soon as
its in-flight work is done, well before ``--shutdown-grace-seconds``."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support import NOT_SERVING, SERVING, Service, start_ingestor, start_writer
from tests.wallet.conftest import sock_dir  # noqa: F401 (the short Unix socket directory)
from tests.wallet.wallet_testlib import start_wallet

# A grace far longer than the bound: a process that waits it out fails the bound by far.
_GRACE_SECONDS = 60
_EXIT_BOUND_SECONDS = 15.0


def _requests(
    pending: queue.Queue[reflection_pb2.ServerReflectionRequest | None],
) -> Iterator[reflection_pb2.ServerReflectionRequest]:
    """The client's side of a reflection stream: open until None is queued."""
    while (request := pending.get()) is not None:
        yield request


def _writer(tmp: Path, short: Path) -> Service:
    return start_writer(tmp / "wal", "--shutdown-grace-seconds", str(_GRACE_SECONDS))


def _ingestor(tmp: Path, short: Path) -> Service:
    (tmp / "wal").mkdir()
    return start_ingestor(tmp / "wal", tmp / "db", "--shutdown-grace-seconds", str(_GRACE_SECONDS))


def _wallet(tmp: Path, short: Path) -> Service:
    return start_wallet(tmp / "ks", short, "--shutdown-grace-seconds", str(_GRACE_SECONDS))


@pytest.mark.parametrize(
    "start", [_writer, _ingestor, _wallet], ids=["writer", "ingestor", "wallet"]
)
def test_sigterm_ends_health_watch_streams_and_exits_promptly(
    tmp_path: Path,
    sock_dir: Path,  # noqa: F811 (the wallet tests' fixture, imported above)
    start: Callable[[Path, Path], Service],
) -> None:
    svc = start(tmp_path, sock_dir)
    try:
        svc.wait_ready()
        with grpc.insecure_channel(svc.listen) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watches = [
                health.Watch(health_pb2.HealthCheckRequest(service=name), timeout=120)
                for name in ("", "")  # two watchers of one name: both must end
            ]
            for watch in watches:
                assert next(watch).status == SERVING
            pending: queue.Queue[Any] = queue.Queue()
            reflect = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                _requests(pending), timeout=120
            )
            pending.put(reflection_pb2.ServerReflectionRequest(list_services=""))
            assert next(reflect).list_services_response.service
            started = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            for watch in watches:
                statuses = [msg.status for msg in watch]  # raises if the stream fails
                assert statuses == [NOT_SERVING], statuses
                assert watch.code() == grpc.StatusCode.OK
            assert list(reflect) == []  # the reflection stream ends, the client's side open
            assert reflect.code() == grpc.StatusCode.OK
            pending.put(None)
            code = svc.wait_exit(timeout_seconds=_GRACE_SECONDS + 30)
            elapsed = time.monotonic() - started
        assert code == 0, svc.log_text()
        print(f"exit after SIGTERM, streams open: {elapsed:.2f} s")
        assert elapsed < _EXIT_BOUND_SECONDS, (elapsed, svc.log_text())
    finally:
        svc.kill()
