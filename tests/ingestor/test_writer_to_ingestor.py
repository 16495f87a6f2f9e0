"""End to end over gRPC: the writer process appends, the ingestor process serves the reads."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import nacl.signing
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ingestor_testlib import Ingestor, assertion, epoch, free_port, running, scan_all

from stemedb.canonical import record_hash
from stemedb.signing import public_key_of, sign_hash, signature_entry
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2, writer_pb2, writer_pb2_grpc

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("stemedb.writer.__main__") is None, reason="no writer service yet"
)


def start_writer(wal_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    address = f"127.0.0.1:{free_port()}"
    cmd = [
        sys.executable,
        "-m",
        "stemedb.writer",
        "--wal-dir",
        str(wal_dir),
        "--listen",
        address,
        "--metrics-listen",
        f"127.0.0.1:{free_port()}",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return proc, address
            except grpc.RpcError:
                pass
            time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"writer never became ready:\n{log.read_text()}")


def test_writer_appends_are_readable_from_the_ingestor(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    writer, address = start_writer(wal_dir, tmp_path / "writer.log")
    agent = nacl.signing.SigningKey(bytes(range(32)))
    try:
        with (
            grpc.insecure_channel(address) as channel,
            running(Ingestor(wal_dir, tmp_path / "db", tmp_path / "ingestor.log")) as ing,
        ):
            append = writer_pb2_grpc.WriterServiceStub(channel)
            a = assertion(1, subject="e2e")
            ha = record_hash(a)
            a.assertion.signatures.append(signature_entry(agent, ha))
            v = pb.Record(
                vote=pb.Vote(assertion_hash=ha, agent_id=public_key_of(agent), weight=1.0)
            )
            v.vote.signature = sign_hash(agent, record_hash(v))
            batch = [a, v, epoch(1)]
            reply = append.AppendBatch(writer_pb2.AppendBatchRequest(records=batch), timeout=10)
            receipts = list(reply.receipts)
            assert [r.hash for r in receipts] == [record_hash(r) for r in batch]
            # Read-your-writes: the read waits on the server until the append is applied.
            got = ing.store.Get(
                store_pb2.GetRequest(key=b"H:" + ha.hex().encode(), min_lsn=receipts[0].lsn),
                timeout=10,
            )
            assert got.found and got.record == a and got.applied_lsn >= receipts[0].lsn
            votes = ing.store.ListVotes(
                store_pb2.ListVotesRequest(assertion_hash=ha, min_lsn=receipts[-1].lsn), timeout=10
            )
            assert [x.hash for x in votes.votes] == [receipts[1].hash]
            keys = [k for k, _ in scan_all(ing.store)]
            assert sorted({k.split(b":")[0] for k in keys}) == [b"E", b"H", b"S", b"V", b"VA"]
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(20) == 0
