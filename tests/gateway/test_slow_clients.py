"""Slow clients: a request's head must arrive within --head-read-seconds (408 and closed beyond,
or closed when nothing came), while requests whose head did arrive are never cut by it."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.gwstack import GatewayStack, running_gateway

HEAD_SECONDS = 1.0
# A generous bound for "closed by the deadline": the deadline plus a loaded machine's latency.
CLOSED_WITHIN_SECONDS = HEAD_SECONDS + 9.0


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    root = tmp_path_factory.mktemp("slow")
    with running_gateway(root, "--head-read-seconds", str(HEAD_SECONDS)) as g:
        yield g


def _connect(gw: GatewayStack) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", gw.gateway.port), timeout=30)
    return conn


def _read_until_closed(conn: socket.socket) -> tuple[bytes, float]:
    """Everything the gateway sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def test_a_connection_that_sends_nothing_is_closed(gw: GatewayStack) -> None:
    with _connect(gw) as conn:
        data, seconds = _read_until_closed(conn)
    assert data == b"" and seconds < CLOSED_WITHIN_SECONDS, (data, seconds)


def test_a_head_that_never_ends_is_408_and_closed(gw: GatewayStack) -> None:
    with _connect(gw) as conn:
        conn.sendall(b"GET /v1/query?subject=a&predicate=b HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        data, seconds = _read_until_closed(conn)
    assert data.startswith(b"HTTP/1.1 408 "), data
    assert b"connection: close" in data.lower() and seconds < CLOSED_WITHIN_SECONDS, seconds
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower(), head
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["title"] == "Request Timeout", problem
    length = re.search(rb"content-length: (\d+)", head)
    assert length and int(length.group(1)) == len(body), head


def test_the_next_request_on_a_keep_alive_connection_has_the_same_bound(gw: GatewayStack) -> None:
    """The deadline is re-armed by the first byte of each request, not only at the connection."""
    with _connect(gw) as conn:
        conn.sendall(b"GET /v1/lenses HTTP/1.1\r\nHost: t\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first:
            first += conn.recv(65536)
        assert first.startswith(b"HTTP/1.1 200"), first
        conn.sendall(b"GET /v1/lenses HTTP/1.1\r\nHo")
        data, seconds = _read_until_closed(conn)
    assert b"HTTP/1.1 408 " in data and seconds < CLOSED_WITHIN_SECONDS, (data, seconds)


def test_a_request_in_flight_longer_than_the_head_bound_is_answered(gw: GatewayStack) -> None:
    """A min_lsn wait of 3 s (its deadline) outlives the 1 s head bound and still gets its 504."""
    r = httpx.get(
        gw.url + "/v1/query",
        params={"subject": "s", "predicate": "p", "min_lsn": 10**12},
        headers={"X-Stemedb-Timeout": str(HEAD_SECONDS * 3)},
        timeout=30,
    )
    assert r.status_code == 504 and r.json()["grpc_status"] == "DEADLINE_EXCEEDED", r.text


def test_slow_heads_do_not_lock_others_out(tmp_path: Path) -> None:
    """With --connections-max 4, four clients that never finish a head would hold every slot;
    once their deadline closes them, a normal request is served."""
    with running_gateway(
        tmp_path, "--head-read-seconds", str(HEAD_SECONDS), "--connections-max", "4"
    ) as g:
        hogs = [_connect(g) for _ in range(4)]
        for hog in hogs:
            hog.sendall(b"GET /v1/lenses HTTP/1.1\r\n")
        closed = threading.Barrier(len(hogs) + 1, timeout=60)

        def drain(conn: socket.socket) -> None:
            _read_until_closed(conn)
            closed.wait()

        threads = [threading.Thread(target=drain, args=(h,)) for h in hogs]
        for t in threads:
            t.start()
        closed.wait()  # every hog was closed by the gateway, none by us
        r = httpx.get(g.url + "/v1/lenses", timeout=30)
        assert r.status_code == 200, r.text
        for t in threads:
            t.join(timeout=30)
        for hog in hogs:
            hog.close()
