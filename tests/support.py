"""Helpers for tests that run the real services as processes on loopback."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


def missing_tool(message: str) -> NoReturn:
    """A tool a test needs (FUSE, a tmpfs mount, ...) is missing: skip locally, fail under
    ``CI=true``, so that a CI run never passes by skipping what it was meant to test."""
    import pytest

    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: a missing tool fails instead of skipping)")
    pytest.skip(message)


BIN = Path(sys.executable).parent


# Ports for test servers. Asking the kernel for a free port (bind port 0, read it, close it)
# races: between the close and the server's bind, any other process binding port 0 (another
# test, another engineer's pytest, a pytest-xdist worker) may be handed the same port. So tests
# take ports from a range OUTSIDE the kernel's ephemeral range (no bind(0) anywhere lands there),
# handed out by one machine-wide cursor in a file under /tmp held under fcntl.flock: every pytest
# process on the machine advances the same cursor, so a port is handed out again only after every
# other port of the range has been (thousands of allocations later), and only if it can be bound
# on 127.0.0.1 at that moment. The Node live tests (clients/node/test/live.test.js) call
# free_port() through Python, so they share the cursor.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
TEST_PORTS_FIRST = 20000  # below it sit well-known service ports (etcd 2379, Prometheus 9090, ...)
TEST_PORTS_MIN = 1000  # fewer ports than this outside the ephemeral range: refuse, clearly
# Under /tmp, not $TMPDIR: one cursor for every process of the machine (of this user).
PORT_CURSOR_FILE = Path("/tmp") / f"stemedb-test-ports-{os.getuid()}.cursor"


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's ephemeral port range (first, last), where bind(port 0) picks ports."""
    try:
        first, last = (int(x) for x in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        first, last = 32768, 60999  # the Linux default
    return first, last


def ports_for_tests() -> range:
    """The ports free_port() hands out: the largest span outside the ephemeral range, from
    TEST_PORTS_FIRST up to it when there is room (e.g. 20000-32767 for 32768-60999)."""
    first, last = ephemeral_port_range()
    below = range(TEST_PORTS_FIRST if first - TEST_PORTS_FIRST >= TEST_PORTS_MIN else 1024, first)
    above = range(last + 1, 65536)
    ports = max(below, above, key=len)
    if len(ports) < TEST_PORTS_MIN:
        raise RuntimeError(
            f"{EPHEMERAL_RANGE_FILE}: ephemeral range {first}-{last} leaves fewer than "
            f"{TEST_PORTS_MIN} ports outside it for test servers"
        )
    return ports


def port_bindable(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 right now (no SO_REUSEADDR: strict)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port for a test server: outside the ephemeral range, never handed to another
    process on the machine (see above), bindable on 127.0.0.1 when handed out."""
    ports = ports_for_tests()
    fd = os.open(PORT_CURSOR_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the close, even if this process dies
        raw = os.pread(fd, 32, 0)
        try:
            start = ports.index(int(raw))
        except ValueError:  # a new (or emptied) file, or the range changed: start anywhere
            start = random.randrange(len(ports))
        for i in range(len(ports)):
            port = ports[(start + i) % len(ports)]
            if port_bindable(port):
                following = ports[(start + i + 1) % len(ports)]
                record = f"{following:>10}\n".encode()
                os.pwrite(fd, record, 0)
                os.ftruncate(fd, len(record))
                return port
        raise RuntimeError(f"no port of {ports.start}-{ports.stop - 1} is free on 127.0.0.1")
    finally:
        os.close(fd)


def wait_until(
    condition: Callable[[], bool], timeout_seconds: float, what: str, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout_seconds}s waiting for {what}")


def health_status(target: str, service: str = "", credentials: Any = None) -> int | None:
    """The health status of ``service`` at ``target``, or None if it does not answer."""
    channel = (
        grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
        except grpc.RpcError:
            return None
        return int(resp.status)


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Service:
    """A service process (writer or ingestor) started with explicit ports."""

    def __init__(
        self, argv: list[str], listen: str, metrics: str, log: Path,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.argv = argv
        self.listen = listen
        self.metrics = metrics
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def wait_ready(self, timeout_seconds: float = 30.0, credentials: Any = None) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.argv[0]} exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            return health_status(self.listen, "", credentials) == SERVING

        wait_until(ready, timeout_seconds, f"{Path(self.argv[0]).name} to serve")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def wait_exit(self, timeout_seconds: float = 30.0) -> int:
        code = self.proc.wait(timeout=timeout_seconds)
        self._log.close()
        return code

    def terminate(self, timeout_seconds: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_seconds)
        self._log.close()
        return code


def start_writer(
    wal_dir: Path, *extra: str, log_dir: Path | None = None, env: dict[str, str] | None = None
) -> Service:
    port, mport = free_port(), free_port()
    listen, metrics = f"127.0.0.1:{port}", f"127.0.0.1:{mport}"
    argv = [
        str(BIN / "stemedb-writer"), "--wal-dir", str(wal_dir), "--listen", listen,
        "--metrics-listen", metrics, "--verify-workers", "1", *extra,
    ]  # fmt: skip
    log = (log_dir or wal_dir.parent) / f"writer-{port}.log"
    return Service(argv, listen, metrics, log, env)


# The signed tree head and the compact range are rewritten by the writer's checkpoint thread
# after earlier appends (docs/verifiable-log.md); they never hold a record, so "nothing was
# written" is the segments, WATERMARK and consumer checkpoints staying the same.
TREE_HEAD_FILES = ("CHECKPOINT", "TREE")


def tree_digest(path: Path, skip: tuple[str, ...] = ("LOCK", *TREE_HEAD_FILES)) -> dict[str, str]:
    """File name -> sha256 of every file under ``path`` (to prove nothing was written);
    temporary files of an atomic replacement in progress (``.*.tmp``) are left out too."""
    out = {}
    for f in sorted(path.rglob("*")):
        if (
            f.is_file()
            and f.name not in skip
            and not (f.name.startswith(".") and f.name.endswith(".tmp"))
        ):
            out[str(f.relative_to(path))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def start_ingestor(
    wal_dir: Path, db_dir: Path, *extra: str, log_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> Service:  # fmt: skip
    port, mport = free_port(), free_port()
    listen, metrics = f"127.0.0.1:{port}", f"127.0.0.1:{mport}"
    binary = BIN / "stemedb-ingestor"
    head = [str(binary)] if binary.exists() else [sys.executable, "-m", "stemedb.ingestor"]
    argv = [
        *head, "--wal-dir", str(wal_dir), "--db-dir", str(db_dir), "--listen", listen,
        "--metrics-listen", metrics, *extra,
    ]  # fmt: skip
    log = (log_dir or db_dir.parent) / f"ingestor-{port}.log"
    return Service(argv, listen, metrics, log, env)


def scan_all(
    store: str | Any, prefix: bytes = b"", min_lsn: int = 0, *, page_size: int = 1000
) -> list[tuple[bytes, bytes]]:
    """Every (key, value) under ``prefix`` from a store, following next_page_token.

    ``store`` is a target ("127.0.0.1:port") or a StoreServiceStub already connected."""
    from stemedb.v1 import store_pb2_grpc

    if not isinstance(store, str):
        return _scan_pages(store, prefix, min_lsn, page_size)
    with grpc.insecure_channel(store) as channel:
        stub = store_pb2_grpc.StoreServiceStub(channel)  # type: ignore[no-untyped-call]
        return _scan_pages(stub, prefix, min_lsn, page_size)


def _scan_pages(
    stub: Any, prefix: bytes, min_lsn: int, page_size: int
) -> list[tuple[bytes, bytes]]:
    from stemedb.v1 import store_pb2

    out: list[tuple[bytes, bytes]] = []
    token = ""
    while True:
        resp = stub.ScanPrefix(
            store_pb2.ScanPrefixRequest(
                prefix=prefix, page_size=page_size, page_token=token, min_lsn=min_lsn
            ),
            timeout=60,
        )
        out.extend((e.key, e.value) for e in resp.entries)
        token = resp.next_page_token
        if not token:
            return out
