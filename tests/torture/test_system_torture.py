"""System torture: writer, ingestor and client processes under load while a chaos loop SIGKILLs
the writer or the ingestor at random moments and restarts it.

At the end: every acknowledged hash is readable with identical content, nothing is readable
that no client sent, the ingestor's applied LSN equals the durable LSN, and the WAL verifies.
The summary line gives kills, acknowledged, verified and lost (which must be 0). `make test`
runs a short version; `make torture` the long one (STEMEDB_TORTURE_KILLS, default 200).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc
from stemedb.wal import WalReader, verify_wal
from tests.support import ROOT, Service, scan_all, start_ingestor, start_writer


def _restart(svc: Service) -> Service:
    fresh = Service(svc.argv, svc.listen, svc.metrics, svc.log_path)
    fresh.wait_ready(timeout_seconds=60)
    return fresh


def _read_logs(paths: list[Path]) -> tuple[set[str], dict[str, int]]:
    sent: set[str] = set()
    acked: dict[str, int] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "SENT":
                sent.add(parts[1])
            elif len(parts) == 3 and parts[0] == "ACK":
                acked[parts[1]] = int(parts[2])
    return sent, acked


def run_torture(tmp_path: Path, seed: int, kills: int, clients: int) -> dict[str, int]:
    rng = random.Random(seed)
    wal_dir, db_dir = tmp_path / "wal", tmp_path / "db"
    writer = start_writer(wal_dir)
    writer.wait_ready()
    ingestor = start_ingestor(wal_dir, db_dir)
    ingestor.wait_ready()
    logs = [tmp_path / f"client-{i}.log" for i in range(clients)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.torture.client",
                "--target",
                writer.listen,
                "--log",
                str(log),
                "--seed",
                str(seed * 100 + i),
            ],
            cwd=ROOT,
        )
        for i, log in enumerate(logs)
    ]
    killed = {"writer": 0, "ingestor": 0}
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.05, 0.4))  # a random moment under load, bounded
            victim = rng.choice(["writer", "ingestor"])
            if victim == "writer":
                writer.kill()
                writer = _restart(writer)
            else:
                ingestor.kill()
                ingestor = _restart(ingestor)
            killed[victim] += 1
            for p in procs:
                assert p.poll() is None, "a torture client failed (see its stderr)"
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    try:
        durable = WalReader(wal_dir).watermark()
        stored = {
            key[2:].decode(): pb.Record.FromString(value)
            for key, value in scan_all(ingestor.listen, b"H:", durable)
        }
        with grpc.insecure_channel(ingestor.listen) as ch:
            got = store_pb2_grpc.StoreServiceStub(ch).Get(
                spb.GetRequest(key=b"H:" + b"0" * 64, min_lsn=durable), timeout=60
            )
        applied = got.applied_lsn
    finally:
        writer.terminate()
        ingestor.terminate()
    sent, acked = _read_logs(logs)
    verified = sum(1 for h in acked if h in stored and canonical.record_hash(stored[h]).hex() == h)
    lost = len(acked) - verified
    strangers = [h for h in stored if h not in sent]
    report = verify_wal(wal_dir)
    summary = {
        "kills": sum(killed.values()), "writer_kills": killed["writer"],
        "ingestor_kills": killed["ingestor"], "acknowledged": len(acked),
        "verified": verified, "lost": lost, "strangers": len(strangers),
        "durable_lsn": durable, "applied_lsn": applied,
    }  # fmt: skip
    print(
        f"torture summary: seed={seed} kills={summary['kills']} "
        f"(writer {killed['writer']}, ingestor {killed['ingestor']}) "
        f"acknowledged={len(acked)} verified={verified} lost={lost} "
        f"unsent_but_stored={len(strangers)} durable_lsn={durable} applied_lsn={applied} "
        f"wal_verify={'clean' if report.ok else 'CORRUPT'}"
    )
    assert report.ok, report.errors
    assert lost == 0
    assert not strangers
    assert applied == durable
    assert len(acked) > 0
    return summary


def test_torture_short(tmp_path: Path, seed: int) -> None:
    run_torture(tmp_path, seed, kills=int(os.environ.get("STEMEDB_TORTURE_SHORT_KILLS", "12")),
                clients=3)  # fmt: skip


@pytest.mark.torture
def test_torture_long(tmp_path: Path, seed: int) -> None:
    run_torture(tmp_path, seed, kills=int(os.environ.get("STEMEDB_TORTURE_KILLS", "200")),
                clients=4)  # fmt: skip
