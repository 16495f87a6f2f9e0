"""Fixtures: a real stemedb-writer process on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb.v1 import writer_pb2_grpc
from tests.support import Service, start_writer


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Service]:
    svc = start_writer(tmp_path / "wal")
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.kill()


@pytest.fixture
def stub(writer: Service) -> Iterator[writer_pb2_grpc.WriterServiceStub]:
    with grpc.insecure_channel(writer.listen) as channel:
        yield writer_pb2_grpc.WriterServiceStub(channel)


@pytest.fixture(scope="module")
def shared_writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One writer for a whole module, for tests that only need a live server."""
    svc = start_writer(tmp_path_factory.mktemp("shared") / "wal")
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.kill()


@pytest.fixture(scope="module")
def shared_stub(shared_writer: Service) -> Iterator[writer_pb2_grpc.WriterServiceStub]:
    with grpc.insecure_channel(shared_writer.listen) as channel:
        yield writer_pb2_grpc.WriterServiceStub(channel)
