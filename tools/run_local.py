"""`make run`: start the writer, the ingestor and the gateway on loopback, data under ./data.

Prints the endpoints and example commands, waits until all three serve, and stops them cleanly
(SIGTERM, then a bounded wait) on Ctrl-C or when any exits. Every flag of the services keeps
its default (DESIGN section 3), so what runs here is exactly what a user gets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STOP_WAIT_SECONDS = 20.0
READY_WAIT_SECONDS = 60.0


def _serving(target: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return resp.status == health_pb2.HealthCheckResponse.SERVING


def _http_up(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    data = Path("data")
    data.mkdir(exist_ok=True)
    procs = {
        "writer": subprocess.Popen([str(BIN / "stemedb-writer")]),
        "ingestor": subprocess.Popen([str(BIN / "stemedb-ingestor")]),
        "gateway": subprocess.Popen([str(BIN / "stemedb-gateway")]),
    }
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + READY_WAIT_SECONDS
    targets = {"writer": "127.0.0.1:50051", "ingestor": "127.0.0.1:50052"}
    ready: set[str] = set()
    while not stopping and len(ready) < len(procs) and time.monotonic() < deadline:
        for name in procs:
            if procs[name].poll() is not None:
                print(f"make run: {name} exited with {procs[name].returncode}", file=sys.stderr)
                stopping = True
            elif name not in ready and (
                _http_up("http://127.0.0.1:8080/openapi.json")
                if name == "gateway"
                else _serving(targets[name])
            ):
                ready.add(name)
        time.sleep(0.1)
    if len(ready) == len(procs):
        print(
            "\nStemeDB is running (data under ./data). Ctrl-C stops the services.\n"
            "  writer    gRPC 127.0.0.1:50051   metrics http://127.0.0.1:9101/metrics\n"
            "  ingestor  gRPC 127.0.0.1:50052   metrics http://127.0.0.1:9102/metrics\n"
            "  gateway   HTTP http://127.0.0.1:8080/ (explorer)  /docs  /metrics\n"
            "Try, in another terminal:\n"
            "  .venv/bin/stemedb assert Q42 name 'Douglas Adams'\n"
            "  curl -s 'http://127.0.0.1:8080/v1/subjects/Q42'\n",
            flush=True,
        )
    elif not stopping:
        print("make run: the services did not become ready in time", file=sys.stderr)
        stopping = True
    while not stopping:
        if any(p.poll() is not None for p in procs.values()):
            print("make run: a service exited; stopping the others", file=sys.stderr)
            break
        time.sleep(0.2)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    end = time.monotonic() + STOP_WAIT_SECONDS
    for p in procs.values():
        try:
            p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
    codes = [p.returncode for p in procs.values()]
    return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
