"""`make run`: start the writer and the ingestor on loopback with data under ./data.

Prints both endpoints and example commands, waits until both serve, and stops both cleanly
(SIGTERM, then a bounded wait) on Ctrl-C or when either exits. Every flag of the services keeps
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


def main() -> int:
    data = Path("data")
    data.mkdir(exist_ok=True)
    procs = {
        "writer": subprocess.Popen([str(BIN / "stemedb-writer")]),
        "ingestor": subprocess.Popen([str(BIN / "stemedb-ingestor")]),
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
    while not stopping and len(ready) < 2 and time.monotonic() < deadline:
        for name, target in targets.items():
            if procs[name].poll() is not None:
                print(f"make run: {name} exited with {procs[name].returncode}", file=sys.stderr)
                stopping = True
            elif name not in ready and _serving(target):
                ready.add(name)
        time.sleep(0.1)
    if len(ready) == 2:
        print(
            "\nStemeDB is running (data under ./data). Ctrl-C stops both services.\n"
            "  writer    gRPC 127.0.0.1:50051   metrics http://127.0.0.1:9101/metrics\n"
            "  ingestor  gRPC 127.0.0.1:50052   metrics http://127.0.0.1:9102/metrics\n"
            "Try, in another terminal:\n"
            "  .venv/bin/stemedb assert Q42 name 'Douglas Adams'\n",
            flush=True,
        )
    elif not stopping:
        print("make run: the services did not become ready in time", file=sys.stderr)
        stopping = True
    while not stopping:
        if any(p.poll() is not None for p in procs.values()):
            print("make run: a service exited; stopping the other", file=sys.stderr)
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
