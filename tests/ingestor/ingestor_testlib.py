"""Helpers for the ingestor tests: records, WAL logs, real ingestor processes, dumps."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from stemedb.canonical import record_hash
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2, store_pb2_grpc
from stemedb.wal import SyncMode, Wal, WalConfig
from stemedb.walrecord import TYPE_OF_KIND, encode_payload
from tests.support import free_port

READY_SECONDS_MAX = 20.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# -- records ----------------------------------------------------------------------------------


def sig(n: int) -> pb.SignatureEntry:
    """A fake co-signature (the ingestor stores signatures, the writer verifies them)."""
    return pb.SignatureEntry(
        public_key=n.to_bytes(4, "big") * 8, signature=n.to_bytes(4, "big") * 16
    )


def assertion(i: int, subject: str | None = None, signers: Sequence[int] = ()) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject if subject is not None else f"subject-{i % 50}",
            predicate="p",
            object=pb.Value(text=f"value {i}"),
            confidence=0.5,
            source_hash=bytes(32),
            signatures=[sig(n) for n in signers],
        )
    )


def vote(assertion_hash: bytes, i: int) -> pb.Record:
    return pb.Record(
        vote=pb.Vote(
            assertion_hash=assertion_hash,
            agent_id=i.to_bytes(4, "big") * 8,
            weight=0.5,
            signature=bytes(64),
        )
    )


def epoch(i: int) -> pb.Record:
    return pb.Record(epoch=pb.Epoch(name=f"epoch {i}", description="d"))


def wal_entry(record: pb.Record) -> tuple[int, bytes]:
    kind = record.WhichOneof("kind")
    assert kind is not None
    payload = encode_payload(record_hash(record), record.SerializeToString())
    return TYPE_OF_KIND[kind], payload


def mixed_records(count: int, seed: int) -> list[pb.Record]:
    """Assertions, votes on them, epochs, and re-appends with new co-signers."""
    rng = random.Random(seed)
    out: list[pb.Record] = []
    hashes: list[bytes] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.55 or not hashes:
            rec = assertion(i, signers=[i % 7])
            hashes.append(record_hash(rec))
        elif roll < 0.85:
            rec = vote(rng.choice(hashes), rng.randrange(20))
        elif roll < 0.9:
            rec = epoch(rng.randrange(100))
        else:
            j = rng.randrange(i)
            rec = assertion(j, signers=[rng.randrange(10), rng.randrange(10)])
        out.append(rec)
    return out


def write_wal(wal_dir: Path, records: Iterable[pb.Record], chunk: int = 2000) -> int:
    """Append records (no fsync: tests only); returns the last LSN."""
    wal = Wal.open(WalConfig(dir=wal_dir, sync_mode=SyncMode.NONE))
    last = 0
    try:
        batch: list[tuple[int, bytes]] = []
        for rec in records:
            batch.append(wal_entry(rec))
            if len(batch) >= chunk:
                last = wal.append(batch)[-1]
                batch = []
        if batch:
            last = wal.append(batch)[-1]
        return last or wal.durable_lsn
    finally:
        wal.close()


# -- processes --------------------------------------------------------------------------------


class Ingestor:
    """A real ``python -m stemedb.ingestor`` process on free loopback ports."""

    def __init__(
        self,
        wal_dir: Path,
        db_dir: Path,
        log_path: Path,
        name: str = "ingestor",
        extra: Sequence[str] = (),
    ) -> None:
        self.wal_dir, self.db_dir, self.log_path, self.name = wal_dir, db_dir, log_path, name
        self.extra = list(extra)
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: grpc.Channel | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Ingestor:
        cmd = [
            sys.executable,
            "-m",
            "stemedb.ingestor",
            "--wal-dir",
            str(self.wal_dir),
            "--db-dir",
            str(self.db_dir),
            "--listen",
            self.address,
            "--metrics-listen",
            f"127.0.0.1:{self.metrics_port}",
            "--name",
            self.name,
            *self.extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        self.channel = grpc.insecure_channel(self.address)
        if wait:
            self.wait_health("", SERVING)
        return self

    @property
    def store(self) -> store_pb2_grpc.StoreServiceStub:
        assert self.channel is not None
        return store_pb2_grpc.StoreServiceStub(self.channel)

    def health(self, service: str) -> int | None:
        assert self.channel is not None
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
        except grpc.RpcError:
            return None
        return int(reply.status)

    def wait_health(self, service: str, status: int, timeout: float = READY_SECONDS_MAX) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"ingestor exited {self.proc.returncode}:\n{self.log()}")
            if self.health(service) == status:
                return
            time.sleep(0.02)
        raise AssertionError(f"health {service!r} never became {status}:\n{self.log()}")

    def wait_applied(self, lsn: int, timeout: float = 60.0) -> int:
        """Block (server-side, via min_lsn) until ``lsn`` is applied; returns applied_lsn."""
        reply = self.store.Get(store_pb2.GetRequest(key=b"-", min_lsn=lsn), timeout=timeout)
        return int(reply.applied_lsn)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_channel()

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_channel()
        return code

    def _close_channel(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def metrics_text(self) -> str:
        import urllib.request

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())


@contextlib.contextmanager
def running(ingestor: Ingestor) -> Iterator[Ingestor]:
    ingestor.start()
    try:
        yield ingestor
    finally:
        ingestor.kill()
