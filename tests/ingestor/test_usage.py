"""Per-agent usage (DESIGN 12): job envelopes counted once, against a plain oracle, a rebuild
with other batch boundaries, and real writer + ingestor processes killed with SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import threading
from collections import defaultdict
from pathlib import Path

import grpc
import pytest
from ingestor_testlib import assertion, vote

from stemedb import canonical, signing
from stemedb.canonical import record_hash
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.ingestor._usage import USAGE_PREFIX, USAGE_RANK_PREFIX
from stemedb.v1 import meter_pb2, meter_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalRecord, dump_wal
from stemedb.walrecord import (
    TYPE_WITH_JOB_OF_KIND,
    JobEnvelope,
    decode_payload,
    encode_payload_with_job,
)
from tests.support import start_ingestor, start_writer, wait_until

Totals = dict[str, tuple[int, int, float, int, float, float]]


def _oracle(jobs: list[JobEnvelope]) -> Totals:
    """Usage straight from the definition: per agent, sums in log order."""
    acc: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0, 0, 0.0, 0.0])
    for j in jobs:
        a = acc[j.agent]
        a[0] += 1
        a[1] += j.records
        a[2] += j.units
        a[3] += j.tokens
        a[4] += j.compute_seconds
        a[5] += j.value
    return {k: (int(v[0]), int(v[1]), v[2], int(v[3]), v[4], v[5]) for k, v in acc.items()}


def _stored(db: StoreDb) -> Totals:
    out: Totals = {}
    for key, value in db.dump():
        if key.startswith(USAGE_PREFIX):
            u = meter_pb2.Usage.FromString(value)
            out[u.agent] = (
                u.requests, u.records, u.units, u.tokens, u.compute_seconds, u.value
            )  # fmt: skip
    return out


def _records(seed: int, n: int) -> tuple[list[WalRecord], list[JobEnvelope]]:
    rng = random.Random(seed)
    agents = ["anonymous", "ab" * 32, "CN=agent-7", "cd" * 32]
    out: list[WalRecord] = []
    jobs: list[JobEnvelope] = []
    for i in range(n):
        rec = assertion(rng.randrange(n // 2 + 1))  # re-appends of the same record count too
        if rng.random() < 0.3:
            rec = vote(record_hash(rec), i)
        kind = rec.WhichOneof("kind")
        assert kind is not None
        job = JobEnvelope(
            rng.choice(agents), records=rng.randrange(1, 5), units=rng.choice([1.0, 2.5, 0.1]),
            tokens=rng.randrange(1000), compute_seconds=rng.random(), value=rng.random() * 10,
        )  # fmt: skip
        jobs.append(job)
        payload = encode_payload_with_job(record_hash(rec), rec.SerializeToString(), job)
        out.append(
            WalRecord(
                i + 1,
                TYPE_WITH_JOB_OF_KIND[kind],
                i,
                payload,
                (i + 1).to_bytes(16, "little"),
                Path("00000000000000000001.wal"),
                40 + 64 * i,
            )
        )
    return out, jobs


def test_usage_equals_the_oracle_and_a_rebuild_with_other_batches(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    records, jobs = _records(seed, 400)
    one = StoreDb(tmp_path / "one")
    many = StoreDb(tmp_path / "many")
    try:
        ApplyEngine(one).apply(records)
        engine, rng, i = ApplyEngine(many), random.Random(seed), 0
        while i < len(records):
            step = rng.randrange(1, 40)
            engine.apply(records[i : i + step])
            i += step
        assert _stored(one) == _oracle(jobs)
        assert one.dump() == many.dump()  # byte for byte, rank index included
        ranks = [k for k, _ in one.dump() if k.startswith(USAGE_RANK_PREFIX)]
        assert len(ranks) == len(_oracle(jobs))  # old rank keys are deleted, one per agent
    finally:
        one.close()
        many.close()


def _signed(key: signing.SigningKey, text: str) -> pb.Assertion:
    a = pb.Assertion(
        subject="Q9", predicate="p", object=pb.Value(text=text), confidence=0.5,
        source_hash=b"\x09" * 32,
    )  # fmt: skip
    a.signatures.append(
        signing.signature_entry(key, canonical.content_hash(canonical.assertion_bytes(a)))
    )
    return a


@pytest.mark.slow
def test_usage_survives_sigkills_of_both_services_exactly_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    keys = [signing.SigningKey(bytes([0x60 + i]) * 32) for i in range(3)]
    meter = tmp_path / "meter.json"
    meter.write_text(json.dumps({"default": {"rate": 1e9, "burst": 1e9}}))
    wal, db = tmp_path / "wal", tmp_path / "db"
    writer = start_writer(wal, "--meter-config", str(meter))
    ingestor = start_ingestor(wal, db)
    acked: list[int] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                with grpc.insecure_channel(writer.listen) as ch:
                    req = wpb.AppendAssertionRequest(
                        assertion=_signed(keys[n % 3], f"fact {n}"),
                        job=meter_pb2.JobInfo(tokens=n, compute_seconds=0.5, value=100),
                    )
                    resp = writer_pb2_grpc.WriterServiceStub(ch).AppendAssertion(req, timeout=5)
                acked.append(resp.receipt.lsn)
            except grpc.RpcError:
                continue

    try:
        writer.wait_ready()
        ingestor.wait_ready()
        for _round in range(4):
            stop.clear()
            thread = threading.Thread(target=load)
            thread.start()
            target = len(acked) + rng.randrange(20, 80)
            wait_until(lambda t=target: len(acked) >= t, 60.0, "appends to be acknowledged")
            victim = rng.choice(["writer", "ingestor", "both"])
            if victim in ("writer", "both"):
                writer.proc.send_signal(signal.SIGKILL)
            if victim in ("ingestor", "both"):
                ingestor.proc.send_signal(signal.SIGKILL)
            stop.set()
            thread.join()
            writer.kill()
            ingestor.kill()
            writer = start_writer(wal, "--meter-config", str(meter))
            ingestor = start_ingestor(wal, db)
            writer.wait_ready()
            ingestor.wait_ready()
        jobs = [
            j
            for r in dump_wal(wal)
            if (j := decode_payload(r.record_type, r.payload).job) is not None
        ]
        last = max(r.lsn for r in dump_wal(wal))
        assert len(jobs) >= len(acked) > 0
        expected = _oracle(jobs)
        with grpc.insecure_channel(ingestor.listen) as ch:
            usage = meter_pb2_grpc.UsageServiceStub(ch)
            for agent, totals in expected.items():
                got = usage.GetUsage(
                    meter_pb2.GetUsageRequest(agent=agent, min_lsn=last), timeout=30
                )
                u = got.usage
                assert got.found and (
                    u.requests, u.records, u.units, u.tokens, u.compute_seconds, u.value
                ) == totals  # fmt: skip
            top = usage.ListTopSpenders(meter_pb2.ListTopSpendersRequest(limit=2), timeout=10)
            ranked = sorted(expected, key=lambda a: (-expected[a][2], a))[:2]
            assert [u.agent for u in top.usages] == ranked
            missing = usage.GetUsage(meter_pb2.GetUsageRequest(agent="nobody"), timeout=10)
            assert not missing.found
            with pytest.raises(grpc.RpcError) as err:
                usage.ListTopSpenders(meter_pb2.ListTopSpendersRequest(limit=5000), timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        print(f"usage after 4 SIGKILL rounds: {len(acked)} acknowledged, {len(jobs)} in the WAL")
    finally:
        stop.set()
        writer.kill()
        ingestor.kill()
