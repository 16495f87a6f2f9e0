"""A gRPC load generator, run as separate processes by the benchmarks.

It sends pre-serialized request bytes to one method path with a fixed number of calls in flight
for a fixed time, and prints JSON: calls, errors, seconds and latency samples. The same code
drives StemeDB and etcd, so the comparison measures the servers, not two clients.

    python -m tests.bench.loadgen --target 127.0.0.1:50051 \
        --method /stemedb.v1.WriterService/AppendAssertion --requests FILE \
        --concurrency 16 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import sys
import time
from pathlib import Path

import grpc
import grpc.aio


def read_requests(path: Path) -> list[bytes]:
    """Requests are stored as 4-byte big-endian length + bytes, back to back."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def write_requests(path: Path, requests: list[bytes]) -> None:
    path.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in requests))


async def run(target: str, method: str, requests: list[bytes], concurrency: int,
              seconds: float, offset: int) -> dict[str, object]:  # fmt: skip
    options = [
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.max_receive_message_length", 64 << 20),
    ]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(method)
        await channel.channel_ready()
        latencies: list[float] = []
        errors: dict[str, int] = {}
        stop_at = time.perf_counter() + seconds

        async def worker(index: int) -> None:
            i = offset + index
            while time.perf_counter() < stop_at:
                req = requests[i % len(requests)]
                i += concurrency
                t0 = time.perf_counter()
                try:
                    await call(req, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                    continue
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"calls": len(latencies), "errors": errors, "seconds": elapsed,
            "latencies": latencies}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--requests", required=True, type=Path)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--offset", type=int, default=0)
    a = p.parse_args()
    result = asyncio.run(
        run(a.target, a.method, read_requests(a.requests), a.concurrency, a.seconds, a.offset)
    )
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
