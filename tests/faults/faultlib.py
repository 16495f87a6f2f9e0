"""Helpers for the fault-injection tests: client load, WAL contents, metrics, tmpfs mounts."""

from __future__ import annotations

import contextlib
import random
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import dump_wal
from stemedb.walrecord import decode_payload
from tests.support import missing_tool
from tests.writer.records import assertion


class Load:
    """Client threads appending unique records; every acknowledged receipt is kept.

    ``acked`` holds (lsn, hash) pairs, recorded only after the writer's reply arrived, so each one
    is a promise the writer made. Errors are counted by status code; UNAVAILABLE (the writer was
    killed under us) makes a thread back off, never fail."""

    def __init__(self, target: str, threads: int, seed: int, tag: str, timeout: float = 10.0):
        self.acked: list[tuple[int, bytes]] = []
        self.errors: dict[grpc.StatusCode, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run, args=(target, seed * 1000 + i, f"{tag}-{i}", timeout), daemon=True
            )
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _run(self, target: str, seed: int, tag: str, timeout: float) -> None:
        rng = random.Random(seed)
        n = 0
        with grpc.insecure_channel(target) as ch:
            stub = writer_pb2_grpc.WriterServiceStub(ch)
            while not self._stop.is_set():
                n += 1
                try:
                    if rng.random() < 0.3:
                        recs = [pb.Record(assertion=assertion(f"{tag}-{n}-{j}"))
                                for j in range(rng.randint(2, 12))]  # fmt: skip
                        resp = stub.AppendBatch(
                            wpb.AppendBatchRequest(records=recs), timeout=timeout
                        )
                        got = [(r.lsn, r.hash) for r in resp.receipts]
                        local = [canonical.record_hash(r) for r in recs]
                        assert [h for _, h in got] == local, "receipt hash differs from local hash"
                    else:
                        r = stub.AppendAssertion(
                            wpb.AppendAssertionRequest(assertion=assertion(f"{tag}-{n}")),
                            timeout=timeout,
                        ).receipt
                        got = [(r.lsn, r.hash)]
                except grpc.RpcError as exc:
                    code = exc.code()
                    with self._lock:
                        self.errors[code] = self.errors.get(code, 0) + 1
                    self._stop.wait(0.02)
                    continue
                with self._lock:
                    self.acked.extend(got)

    def stop(self) -> list[tuple[int, bytes]]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a client thread hung"
        with self._lock:
            return list(self.acked)


def wal_contents(wal_dir: Path) -> dict[int, bytes]:
    """LSN -> content hash of every whole valid record (dump_wal), checking on the way that LSNs
    run 1, 2, 3... with no gap and that every payload decodes to a record with that hash."""
    out: dict[int, bytes] = {}
    expected = 1
    for rec in dump_wal(wal_dir):
        assert rec.lsn == expected, f"LSN gap: expected {expected}, found {rec.lsn}"
        expected += 1
        decoded = decode_payload(rec.record_type, rec.payload)
        assert canonical.record_hash(decoded.record) == decoded.content_hash, (
            f"LSN {rec.lsn}: payload does not hash to its stored content hash"
        )
        out[rec.lsn] = decoded.content_hash
    return out


def missing_acked(acked: dict[int, bytes], on_disk: dict[int, bytes]) -> list[int]:
    """Acknowledged LSNs that are gone or now hold another record."""
    return sorted(lsn for lsn, h in acked.items() if on_disk.get(lsn) != h)


def scrape(metrics: str) -> str:
    with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10) as resp:
        text: str = resp.read().decode()
        return text


def metric_value(text: str, name: str) -> float:
    """The value of the sample ``name`` (full name with labels, as exposed)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"metric {name} not exposed")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root can mount here); unmounted lazily even on failure."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        missing_tool(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
