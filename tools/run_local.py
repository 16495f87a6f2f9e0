"""`make run`: start the writer, the ingestor and the gateway on loopback, data under ./data.

Relays every line the services log with the service's name in front (readable console lines,
coloured on a terminal), waits until all three serve, then prints a banner: the endpoints (the
explorer's URL among them), a few commands to try, where the data lives and how many records
the log already holds. Stops them cleanly (SIGTERM, then a bounded wait) on Ctrl-C or when any
exits. Every flag of the
services keeps its default (DESIGN section 3), so what runs here is exactly what a user gets;
the options below only move the ports (tests run it beside a `make run` of one's own).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BIN = Path(sys.executable).parent
STOP_WAIT_SECONDS = 20.0
READY_WAIT_SECONDS = 60.0
LINE_BYTES_MAX = 1 << 20  # a relayed log line longer than this is cut into pieces

_PREFIX_COLOURS = {"writer": "\x1b[35m", "ingestor": "\x1b[34m", "gateway": "\x1b[36m"}
_RESET = "\x1b[0m"


@dataclass(frozen=True)
class Endpoints:
    writer: str = "127.0.0.1:50051"
    writer_metrics: str = "127.0.0.1:9101"
    ingestor: str = "127.0.0.1:50052"
    ingestor_metrics: str = "127.0.0.1:9102"
    gateway: str = "127.0.0.1:8080"


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


def _parse_args(argv: list[str] | None) -> Endpoints:
    default = Endpoints()
    parser = argparse.ArgumentParser(prog="run_local.py", description=__doc__.split("\n")[0])
    for field in ("writer", "writer_metrics", "ingestor", "ingestor_metrics", "gateway"):
        flag = "--" + field.replace("_", "-") + "-listen"
        parser.add_argument(flag, dest=field, default=getattr(default, field), metavar="HOST:PORT")
    return Endpoints(**vars(parser.parse_args(argv)))


def _service_argv(name: str, endpoints: Endpoints) -> list[str]:
    """The service's command line: its defaults, plus only the ports that were moved."""
    default = Endpoints()
    argv = [str(BIN / f"stemedb-{name}")]
    if name == "gateway":  # one HTTP listener (metrics at /metrics); it calls the other two
        moved = [
            ("--listen", endpoints.gateway, default.gateway),
            ("--writer", endpoints.writer, default.writer),
            ("--store", endpoints.ingestor, default.ingestor),
        ]
        for flag, value, was in moved:
            if value != was:
                argv += [flag, value]
        return argv
    for suffix, flag in (("", "--listen"), ("_metrics", "--metrics-listen")):
        value = getattr(endpoints, name + suffix)
        if value != getattr(default, name + suffix):
            argv += [flag, value]
    return argv


def _http_up(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _up(name: str, target: str) -> bool:
    if name == "gateway":
        return _http_up(f"http://{target}/openapi.json")
    return _serving(target)


def _relay(name: str, stream: IO[bytes], colour: bool, lock: threading.Lock) -> None:
    """Copy the service's output line by line, its name in front, until it closes."""
    label = f"{name:<8} |"
    if colour:
        label = f"{_PREFIX_COLOURS.get(name, '')}{label}{_RESET}"
    out = sys.stdout.buffer
    for raw in iter(lambda: stream.readline(LINE_BYTES_MAX), b""):
        with lock:
            out.write(label.encode() + b" " + raw.rstrip(b"\r\n") + b"\n")
            out.flush()


def _records_held(wal_dir: Path) -> int:
    """How many records the WAL holds now (its durable LSN minus what retention removed)."""
    from stemedb.wal import WalReader

    reader = WalReader(wal_dir)
    try:
        durable = reader.watermark()
        first = reader.first_available_lsn() or 1
    finally:
        reader.close()
    return max(0, durable - first + 1)


def banner(endpoints: Endpoints, data: Path, records: int) -> str:
    """What `make run` prints once both services serve: what runs, what to try, where data is."""
    cli = ".venv/bin/stemedb"
    moved = endpoints != Endpoints()
    if moved:
        cli += f" --writer {endpoints.writer} --store {endpoints.ingestor}"
    held = (
        f"the log already holds {records} record{'s' if records != 1 else ''}"
        if records
        else "the log is new (no records yet)"
    )
    return (
        "\nStemeDB is running. Ctrl-C stops the services.\n"
        f"  writer    gRPC {endpoints.writer:<18} "
        f"metrics http://{endpoints.writer_metrics}/metrics\n"
        f"  ingestor  gRPC {endpoints.ingestor:<18} "
        f"metrics http://{endpoints.ingestor_metrics}/metrics\n"
        f"  gateway   HTTP http://{endpoints.gateway}/ (the explorer)  /docs  /metrics\n"
        f"Data: {data.resolve()} (WAL in wal/, RocksDB in db/); {held}.\n"
        "Try, in another terminal:\n"
        f"  {cli} assert Q42 name 'Douglas Adams'\n"
        f"  {cli} subject Q42\n"
        f"  {cli} scan S:Q42\n"
        f"  curl -s 'http://{endpoints.gateway}/v1/query?subject=Q42&predicate=name'\n"
        f"  {cli} --help\n"
    )


def main(argv: list[str] | None = None) -> int:
    endpoints = _parse_args(argv)
    data = Path("data")
    data.mkdir(exist_ok=True)
    terminal = sys.stdout.isatty()
    env = dict(os.environ)
    # The services' own default is JSON off a terminal; here a person reads their lines.
    env.setdefault("STEMEDB_LOG_FORMAT", "console")
    if terminal:
        env.setdefault("FORCE_COLOR", "1")
    lock = threading.Lock()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    relays = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline = time.monotonic() + READY_WAIT_SECONDS
    targets = {
        "writer": endpoints.writer, "ingestor": endpoints.ingestor, "gateway": endpoints.gateway,
    }  # fmt: skip
    ready: set[str] = set()
    # The writer first: the ingestor then finds the WAL it creates instead of warning that the
    # directory is missing.
    for name, target in targets.items():
        if stopping:
            break
        proc = subprocess.Popen(
            _service_argv(name, endpoints),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        procs[name] = proc
        if proc.stdout is None:  # cannot happen with stdout=PIPE; mypy cannot know
            raise RuntimeError(f"no output pipe from {name}")
        relay = threading.Thread(
            target=_relay, args=(name, proc.stdout, terminal, lock), daemon=True
        )
        relay.start()
        relays.append(relay)
        while not stopping and time.monotonic() < deadline:
            if proc.poll() is not None:
                print(f"make run: {name} exited with {proc.returncode}", file=sys.stderr)
                stopping = True
            elif _up(name, target):
                ready.add(name)
                break
            time.sleep(0.1)
    if len(ready) == len(targets):
        text = banner(endpoints, data, _records_held(data / "wal"))
        with lock:
            print(text, flush=True)
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
    for relay in relays:
        relay.join(timeout=max(0.1, end - time.monotonic()))
    codes = [p.returncode for p in procs.values()]
    return 0 if all(c in (0, -signal.SIGTERM) for c in codes) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
