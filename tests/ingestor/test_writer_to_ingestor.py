"""End to end over gRPC: the writer process appends, the ingestor process serves the reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import grpc
import nacl.signing
import pytest
from ingestor_testlib import Ingestor, assertion, epoch, running

from stemedb.canonical import record_hash
from stemedb.signing import public_key_of, sign_hash, signature_entry
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2, writer_pb2, writer_pb2_grpc
from tests.support import scan_all, start_writer

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("stemedb.writer.__main__") is None, reason="no writer service yet"
)


def test_writer_appends_are_readable_from_the_ingestor(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    writer = start_writer(wal_dir, log_dir=tmp_path)
    writer.wait_ready()
    address = writer.listen
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
        assert writer.terminate(20) == 0
