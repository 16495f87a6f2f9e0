"""The clients and the meter: the Python client's retry honours RetryInfo, the error carries
when to come back, and the CLI prints it (DESIGN 12), against a real metered writer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.client import AsyncClient, Client, RetryPolicy, RpcFailed, make_assertion
from stemedb.v1 import records_pb2 as pb
from tests.client.stack import cli_env, run_cli
from tests.support import Service, start_writer

NO_RETRY = RetryPolicy(attempts_max=1)


def _assertion(i: int) -> pb.Assertion:
    return make_assertion("Q7", "p", f"fact {i}", source_hash=b"\x05" * 32)


def _metered(tmp_path: Path, rate: float, burst: float) -> Service:
    cfg = tmp_path / "meter.json"
    cfg.write_text(json.dumps({"default": {"rate": rate, "burst": burst}}))
    svc = start_writer(tmp_path / "wal", "--meter-config", str(cfg))
    svc.wait_ready()
    return svc


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Service]:
    # An unsigned assertion costs 2 units (1 record + 1 KiB); the burst holds two of them.
    svc = _metered(tmp_path, rate=10.0, burst=4.0)
    try:
        yield svc
    finally:
        svc.kill()


def test_rpc_failed_carries_the_retry_time(writer: Service) -> None:
    with Client(writer.listen, "127.0.0.1:1", retry=NO_RETRY) as client:
        client.append_assertion(_assertion(1))
        client.append_assertion(_assertion(2))
        with pytest.raises(RpcFailed) as err:
            client.append_assertion(_assertion(3))
    assert err.value.code.name == "RESOURCE_EXHAUSTED"
    assert err.value.retry_after_seconds is not None
    assert 0 < err.value.retry_after_seconds <= 2 / 10.0 + 0.01


def test_sync_client_waits_the_named_delay_then_succeeds(writer: Service) -> None:
    with Client(writer.listen, "127.0.0.1:1", retry=RetryPolicy(attempts_max=3)) as client:
        client.append_assertion(_assertion(1))
        client.append_assertion(_assertion(2))
        started = time.monotonic()
        receipt = client.append_assertion(_assertion(3))  # refused once, then admitted
        waited = time.monotonic() - started
    assert receipt.lsn == 3
    assert waited >= 0.1  # the bucket needed ~0.2 s to hold 2 units again; backoff would not


def test_async_client_honours_retry_info_too(writer: Service) -> None:
    async def go() -> int:
        async with AsyncClient(writer.listen, "127.0.0.1:1") as client:
            for i in range(2):
                await client.append_assertion(_assertion(i))
            receipt = await client.append_assertion(_assertion(9))
            return receipt.lsn

    assert asyncio.run(go()) == 3


def test_a_delay_beyond_the_policy_is_final(tmp_path: Path) -> None:
    svc = _metered(tmp_path, rate=0.001, burst=2.0)
    try:
        with Client(svc.listen, "127.0.0.1:1", retry=RetryPolicy(attempts_max=5)) as client:
            client.append_assertion(_assertion(1))
            started = time.monotonic()
            with pytest.raises(RpcFailed) as err:
                client.append_assertion(_assertion(2))
            assert time.monotonic() - started < 5  # not retried: 2,000 s is past the bound
        assert err.value.retry_after_seconds is not None
        assert err.value.retry_after_seconds > RetryPolicy().retry_info_seconds_max
    finally:
        svc.kill()


def test_cli_prints_when_to_retry(tmp_path: Path) -> None:
    svc = _metered(tmp_path, rate=0.001, burst=2.0)
    env = cli_env(tmp_path / "home")
    try:
        first = run_cli("assert", "Q1", "name", "one", "--writer", svc.listen, env=env)
        assert first.returncode == 0, first.stderr
        second = run_cli("assert", "Q1", "name", "two", "--writer", svc.listen, env=env)
        assert second.returncode != 0
        assert "RESOURCE_EXHAUSTED" in second.stderr
        assert "nothing was written; retry in" in second.stderr
    finally:
        svc.kill()
