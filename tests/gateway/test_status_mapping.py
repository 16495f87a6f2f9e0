"""The gRPC-to-HTTP table of DESIGN section 10, and the wallet's key header as gRPC metadata.

The writer cannot be made to answer every code on demand, so a real gRPC WriterService in this
process refuses each request with the code its subject names; the gateway runs as a process.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from stemedb.v1 import records_pb2, writer_pb2, writer_pb2_grpc
from tests.gateway.gwstack import Gateway
from tests.support import free_port


class _Refusing(writer_pb2_grpc.WriterServiceServicer):
    """Refuses with the gRPC code named by the subject; ``OK`` answers with a receipt."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def AppendAssertion(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
        name, _, retry = request.assertion.subject.partition("+")
        if name == "OK":
            return writer_pb2.AppendAssertionResponse(
                receipt=records_pb2.Receipt(hash=b"\x01" * 32, lsn=7)
            )
        code = grpc.StatusCode[name]
        message = f"assertion.predicate: refused with {name}"
        if retry:
            status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=message)
            status.details.add().Pack(
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=5))
            )
            context.set_trailing_metadata(
                (("grpc-status-details-bin", status.SerializeToString()),)
            )
        context.abort(code, message)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Refusing, Gateway]]:
    servicer = _Refusing()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    writer_pb2_grpc.add_WriterServiceServicer_to_server(servicer, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    root: Path = tmp_path_factory.mktemp("map")
    dead = free_port()
    gateway = Gateway(root / "gw.log", "--wallet", f"127.0.0.1:{port}", "--writer",
                      f"127.0.0.1:{dead}", "--store", f"127.0.0.1:{dead}")  # fmt: skip
    try:
        gateway.wait_listening()
        yield servicer, gateway
    finally:
        gateway.kill()
        server.stop(grace=None)


def _assertion(subject: str) -> dict[str, Any]:
    return {"subject": subject, "predicate": "p", "object": {"text": "v"}, "confidence": 1,
            "source_hash": "00" * 32}  # fmt: skip


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("INVALID_ARGUMENT", 400),
        ("FAILED_PRECONDITION", 400),
        ("PERMISSION_DENIED", 403),
        ("NOT_FOUND", 404),
        ("RESOURCE_EXHAUSTED", 503),
        ("UNAVAILABLE", 503),
        ("DEADLINE_EXCEEDED", 504),
        ("UNAUTHENTICATED", 401),
        ("INTERNAL", 500),
    ],
)
def test_grpc_code_maps_to_http(
    refusing: tuple[_Refusing, Gateway], code: str, status: int
) -> None:
    _, gateway = refusing
    r = httpx.post(gateway.url + "/v1/assertions", json=_assertion(code), timeout=30)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["grpc_status"] == code and body["status"] == status
    assert body["backend"] == "wallet"
    assert "Retry-After" not in r.headers
    if status == 400 or code == "PERMISSION_DENIED":
        assert body["field"] == "assertion.predicate"


def test_retry_info_is_429_with_retry_after(refusing: tuple[_Refusing, Gateway]) -> None:
    _, gateway = refusing
    r = httpx.post(gateway.url + "/v1/assertions", json=_assertion("RESOURCE_EXHAUSTED+retry"),
                   timeout=30)  # fmt: skip
    assert r.status_code == 429, r.text
    assert r.headers["Retry-After"] == "3"  # 2.000000005 s, rounded up
    assert r.json()["grpc_status"] == "RESOURCE_EXHAUSTED"


def test_key_header_becomes_stemedb_key_metadata(refusing: tuple[_Refusing, Gateway]) -> None:
    servicer, gateway = refusing
    r = httpx.post(gateway.url + "/assert", json=_assertion("OK"),
                   headers={"X-Stemedb-Key": "alice"}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    receipt = r.json()["receipt"]
    assert receipt["hash"] == "01" * 32 and receipt["lsn"] == 7
    assert servicer.metadata[-1].get("stemedb-key") == "alice"
    r = httpx.post(gateway.url + "/assert", json=_assertion("OK"), timeout=30)
    assert r.status_code == 201 and "stemedb-key" not in servicer.metadata[-1]
