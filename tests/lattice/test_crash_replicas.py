"""DESIGN 9.7 point 8: SIGKILLs during apply, two replicas, a rebuild, and as_of answers.

A writer takes a vote-heavy load; one ingestor is SIGKILLed again and again while it applies,
a second one (a replica on the same WAL) runs undisturbed and answers Resolve along the way.
Afterwards every Lattice key of the two equals, byte for byte, those of a database rebuilt in
process from the WAL; each view equals the oracle's; and Resolve with as_of_lsn gives exactly
what Resolve said at that LSN.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import grpc
import pytest
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.ingestor._oracle import Oracle
from stemedb.ingestor._policy import load_policy

from stemedb.v1 import query_pb2, store_pb2, store_pb2_grpc
from stemedb.wal import WalReader
from stemedb.walrecord import decode_payload
from tests.lattice.stack import (
    Lab,
    hash_of,
    signed_assertion,
    signed_epoch,
    signed_vote,
    write_policy,
)
from tests.support import Service, scan_all, start_ingestor, start_writer

LATTICE_PREFIXES = (b"MV:", b"MH:", b"TA:", b"SC:", b"CV:", b"ES:", b"EA:", b"LP:")
KILLS = int(os.environ.get("STEMEDB_LATTICE_KILLS", "8"))


def _load(lab: Lab, rng: random.Random, stop: threading.Event) -> list[int]:
    """Assertions in 12 slots, then votes (re-votes, replays) and a revolution; the LSNs."""
    epoch = signed_epoch("old", signers=["A"])
    lsns = lab.append(epoch)
    pool = [
        signed_assertion(
            f"crash{i % 4}", f"p{i % 3}", f"v{i}", signers=rng.sample("ABCD", rng.randrange(3)),
            epoch=hash_of(epoch) if i % 5 == 0 else b"",
        )
        for i in range(36)
    ]  # fmt: skip
    lsns += lab.append(*pool)
    sent = []
    for round_ in range(120):
        batch = []
        for _ in range(50):
            if sent and rng.random() < 0.1:
                batch.append(rng.choice(sent))  # a replay
                continue
            vote = signed_vote(
                hash_of(rng.choice(pool)), rng.choice("ABCDEFZL"),
                rng.choice([1.0, -1.0, 0.5, 0.25]), rng.randrange(1, 20),
            )  # fmt: skip
            sent.append(vote)
            batch.append(vote)
        if round_ == 60:
            rev = signed_epoch("new", hash_of(epoch), 3, signers=["B"])
            batch.append(rev)
        lsns += lab.append(*batch)
        if stop.is_set():
            break
    return lsns


def _rebuilt(wal_dir: Path, db_dir: Path, policy_path: Path) -> dict[bytes, bytes]:
    db = StoreDb(db_dir)
    engine = ApplyEngine(db, load_policy(policy_path))
    with WalReader(wal_dir) as reader:
        while records := reader.read_available(700):
            engine.apply(records)
    dump = {k: v for k, v in db.dump() if k.startswith(LATTICE_PREFIXES)}
    db.close()
    return dump


def _applied(ingestor: Service) -> int:
    with grpc.insecure_channel(ingestor.listen) as channel:
        reply = store_pb2_grpc.StoreServiceStub(channel).Get(
            store_pb2.GetRequest(key=b"-"), timeout=30
        )
        return int(reply.applied_lsn)


def _durable(lab: Lab) -> int:
    """The last LSN appended so far (an empty batch is refused, so ask for a no-op read)."""
    return _applied(lab.ingestor) if lab.last_lsn == 0 else lab.last_lsn


def _lattice_keys(target: str, lsn: int) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for prefix in LATTICE_PREFIXES:
        out.update(scan_all(target, prefix, min_lsn=lsn))
    return out


@pytest.mark.slow
def test_sigkills_replicas_rebuild_and_as_of(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    wal = tmp_path / "wal"
    policy = write_policy(tmp_path / "policy.json")
    writer = start_writer(wal, log_dir=tmp_path)
    flags = ("--trust-policy", str(policy), "--apply-batch-records-max", "64")
    victim: Service | None = None
    replica: Service | None = None
    lab: Lab | None = None
    try:
        writer.wait_ready()
        victim = start_ingestor(wal, tmp_path / "victim", *flags, "--name", "v", log_dir=tmp_path)
        replica = start_ingestor(wal, tmp_path / "replica", *flags, "--name", "r", log_dir=tmp_path)
        victim.wait_ready()
        replica.wait_ready()
        lab = Lab(writer, replica, wal)
        stop = threading.Event()
        result: list[list[int]] = []
        loader = threading.Thread(target=lambda: result.append(_load(lab, rng, stop)))
        loader.start()
        samples: list[query_pb2.Resolution] = []
        kills = 0
        while kills < KILLS and (loader.is_alive() or _applied(victim) < _durable(lab)):
            time.sleep(rng.uniform(0.05, 0.4))  # a random moment of the apply, not a wait
            victim.kill()
            kills += 1
            victim = start_ingestor(
                wal, tmp_path / "victim", *flags, "--name", "v", log_dir=tmp_path
            )
            victim.wait_ready()
            for subject in ("crash0", "crash1"):
                samples.append(lab.resolve(subject, "p0"))
        loader.join()
        assert result, "the load failed"
        last = result[0][-1]
        print(f"kills={kills} last_lsn={last} samples={len(samples)}")
        assert kills >= min(KILLS, 3), f"only {kills} kills happened during the apply"
        victim_keys = _lattice_keys(victim.listen, last)
        replica_keys = _lattice_keys(replica.listen, last)
        assert victim_keys == replica_keys
        assert victim_keys == _rebuilt(wal, tmp_path / "rebuilt", policy)
        # The views equal the oracle's (the oracle does not track when a view last changed).
        records = []
        with WalReader(wal) as reader:
            while chunk := reader.read_available(1000):
                records += [(r.lsn, decode_payload(r.record_type, r.payload).record) for r in chunk]
        oracle = Oracle.of(records, load_policy(policy))
        for subject, predicate in oracle.slots():
            key = b"MV:" + subject.encode() + b"\x00" + predicate.encode()
            stored = query_pb2.SlotView.FromString(victim_keys[key])
            stored.lsn = 0
            assert stored == oracle.view(subject, predicate)
        # What Resolve said at an LSN, it says again as of that LSN, on both ingestors.
        assert samples
        for said in samples:
            for ingestor in (victim, replica):
                again = lab.query(ingestor).Resolve(
                    query_pb2.ResolveRequest(
                        subject=said.subject, predicate=said.predicate, as_of_lsn=said.as_of_lsn
                    ),
                    timeout=30,
                )
                assert again.resolution == said
    finally:
        if lab is not None:
            lab.close()
        for service in (victim, replica, writer):
            if service is not None:
                service.kill()
