"""``--workers N``: several serving processes on one socket, their metrics summed, a clean stop."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import httpx

from tests.gateway.gwstack import GATEWAY, running_gateway
from tests.support import wait_until

WORKERS = 2
ROUTE_LINE = re.compile(
    r'^stemedb_gateway_http_requests_total\{code="200",method="GET",route="/v1/lenses"\} (\S+)$',
    re.M,
)


def _children(pid: int) -> list[int]:
    """The worker processes a supervisor spawned (multiprocessing's spawn_main children)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmd:
            out.append(int(entry))
    return sorted(out)


def _server_side_owner(worker_pids: list[int], port: int, client_port: int) -> int | None:
    """Which worker holds the server side of the connection from ``client_port`` to ``port``:
    /proc/net/tcp names its socket's inode, each worker's /proc/PID/fd its sockets."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            inode = fields[9]
    if inode is None:
        return None
    for pid in worker_pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if f"socket:[{inode}]" in links:
            return pid
    return None


def _get_lenses(conn: socket.socket) -> None:
    """GET /v1/lenses on a keep-alive connection; read the whole answer (Content-Length)."""
    conn.sendall(b"GET /v1/lenses HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "the gateway closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    match = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert match, head
    length = int(match.group(1))
    while len(body) < length:
        chunk = conn.recv(65536)
        assert chunk, "the gateway closed the connection"
        body += chunk


def test_workers_share_the_socket_and_metrics_sum_over_them(tmp_path: Path) -> None:
    with running_gateway(tmp_path, "--workers", str(WORKERS)) as g:
        wait_until(lambda: len(_children(g.gateway.proc.pid)) == WORKERS, 30, f"{WORKERS} workers")
        workers = _children(g.gateway.proc.pid)
        port = g.gateway.port
        # New connections until each worker holds at least one; each then carries requests, so
        # a /metrics answered by one worker alone would count fewer than were sent.
        conns: list[socket.socket] = []
        owners: dict[int, int] = {}
        try:
            for _ in range(200):
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
                conns.append(conn)
                _get_lenses(conn)
                owner = _server_side_owner(workers, port, conn.getsockname()[1])
                assert owner is not None, "the connection's server side is in no worker"
                owners[owner] = owners.get(owner, 0) + 1
                if len(owners) == WORKERS:
                    break
            assert len(owners) == WORKERS, f"every connection went to one worker: {owners}"
            sent = len(conns)
            for conn in conns:
                for _ in range(3):
                    _get_lenses(conn)
                    sent += 1
        finally:
            for conn in conns:
                conn.close()
        # Every scrape, whichever worker answers it, counts every request of every worker.
        for _ in range(2 * WORKERS):
            text = httpx.get(g.url + "/metrics", timeout=10).text
            counts = ROUTE_LINE.findall(text)
            assert counts and float(counts[0]) == sent, (sent, counts)
        code = g.gateway.terminate()
        assert code == 0, g.gateway.log_text()
        assert g.gateway.log_text().count("gateway stopped") == WORKERS


def test_workers_bound_is_checked() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    for argv in (["--workers", "0"], ["--workers", "65"]):
        out = subprocess.run(
            [str(GATEWAY), *argv], env=env, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 2 and "--workers" in out.stderr, (argv, out.stderr)
    out = subprocess.run(
        [str(GATEWAY)], env={**env, "STEMEDB_WORKERS": "many"}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "STEMEDB_WORKERS" in out.stderr, out.stderr
