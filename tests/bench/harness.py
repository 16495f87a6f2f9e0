"""Shared benchmark plumbing: etcd as a baseline, process CPU accounting, load runs, stats."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from tests.bench.loadgen import write_requests
from tests.support import ROOT, free_port, wait_until

BENCH_OUT = ROOT / "build" / "bench"
TICKS = os.sysconf("SC_CLK_TCK")


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _pb_bytes(field_number: int, data: bytes) -> bytes:
    return _pb_varint(field_number << 3 | 2) + _pb_varint(len(data)) + data


# etcd's v3 API messages, encoded by hand from their documented field numbers (etcdserverpb):
# PutRequest{key=1, value=2}, RangeRequest{key=1}, TxnRequest{success=2 (RequestOp)},
# RequestOp{request_put=2}.
def etcd_put(key: bytes, value: bytes) -> bytes:
    return _pb_bytes(1, key) + _pb_bytes(2, value)


def etcd_range(key: bytes) -> bytes:
    return _pb_bytes(1, key)


def etcd_txn(puts: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(_pb_bytes(2, _pb_bytes(2, etcd_put(k, v))) for k, v in puts)


ETCD_PUT = "/etcdserverpb.KV/Put"
ETCD_RANGE = "/etcdserverpb.KV/Range"
ETCD_TXN = "/etcdserverpb.KV/Txn"


class Etcd:
    """A single-member etcd on loopback (Debian's etcd-server), data in a temp dir."""

    def __init__(self) -> None:
        binary = shutil.which("etcd")
        if binary is None:
            raise RuntimeError("etcd is not installed: make bench installs Debian's etcd-server")
        self.dir = Path(tempfile.mkdtemp(prefix="stemedb-etcd-"))
        port, peer = free_port(), free_port()
        self.target = f"127.0.0.1:{port}"
        self._log = open(self.dir / "etcd.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "--name", "bench", "--data-dir", str(self.dir / "data"),
             "--listen-client-urls", f"http://{self.target}",
             "--advertise-client-urls", f"http://{self.target}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
             "--log-level", "error"],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "ETCD_UNSUPPORTED_ARCH": os.uname().machine},
        )  # fmt: skip
        wait_until(self._ready, 60, "etcd to serve")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError((self.dir / "etcd.log").read_text())
        with grpc.insecure_channel(self.target) as ch:
            try:
                ch.unary_unary(ETCD_PUT)(etcd_put(b"ready", b"1"), timeout=1)
            except grpc.RpcError:
                return False
        return True

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (e.g. verify workers)."""
    total = 0.0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                pids.append(int(entry))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


@dataclass
class Run:
    calls: int
    seconds: float
    latencies: list[float]
    server_cpu_seconds: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def load(target: str, method: str, requests: list[bytes], concurrency: int, seconds: float,
         server_pid: int, processes: int | None = None) -> Run:  # fmt: skip
    """Drive ``method`` from separate load-generator processes; measure the server's CPU."""
    procs = processes or (1 if concurrency == 1 else 2)
    with tempfile.NamedTemporaryFile(suffix=".req", delete=False) as f:
        path = Path(f.name)
    write_requests(path, requests)
    per = max(1, concurrency // procs)
    cpu0 = tree_cpu_seconds(server_pid)
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.bench.loadgen",
                "--target",
                target,
                "--method",
                method,
                "--requests",
                str(path),
                "--concurrency",
                str(per),
                "--seconds",
                str(seconds),
                "--offset",
                str(i * per),
            ],
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        for i in range(procs)
    ]
    outs = [json.loads(c.communicate(timeout=seconds + 120)[0]) for c in children]
    cpu = tree_cpu_seconds(server_pid) - cpu0
    path.unlink()
    errors: dict[str, int] = {}
    for o in outs:
        for k, v in o["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return Run(
        calls=sum(o["calls"] for o in outs),
        seconds=max(o["seconds"] for o in outs),
        latencies=[x for o in outs for x in o["latencies"]],
        server_cpu_seconds=cpu,
        errors=errors,
    )


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def summarize(runs: list[Run], records_per_call: int = 1) -> dict[str, Any]:
    """Medians over repetitions, with min and max of the rate."""
    rates = [r.rate * records_per_call for r in runs]
    return {
        "records_per_s_median": statistics.median(rates),
        "records_per_s_min": min(rates),
        "records_per_s_max": max(rates),
        "calls_per_s_median": statistics.median(r.rate for r in runs),
        "p50_ms": statistics.median(pct(r.latencies, 0.5) * 1e3 for r in runs),
        "p99_ms": statistics.median(pct(r.latencies, 0.99) * 1e3 for r in runs),
        "server_cpu_us_per_call": statistics.median(
            r.server_cpu_seconds / max(1, r.calls) * 1e6 for r in runs
        ),
        "server_cpu_us_per_record": statistics.median(
            r.server_cpu_seconds / max(1, r.calls * records_per_call) * 1e6 for r in runs
        ),
        "errors": {k: sum(r.errors.get(k, 0) for r in runs) for r in runs for k in r.errors},
        "repetitions": len(runs),
    }


def save(name: str, data: dict[str, Any]) -> Path:
    BENCH_OUT.mkdir(parents=True, exist_ok=True)
    path = BENCH_OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path
