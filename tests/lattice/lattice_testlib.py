"""Record streams for the Lattice tests: random logs, WAL records in memory, dumps."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from stemedb.ingestor._policy import TrustPolicy

from stemedb.canonical import record_hash
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalRecord
from stemedb.walrecord import TYPE_OF_KIND, encode_payload

AGENTS = [bytes([0xA0 + i]) * 32 for i in range(5)]
SOURCE = bytes(32)


def fake_sig(agent: bytes) -> pb.SignatureEntry:
    """A signature the ingestor stores as is (the writer is the one that verifies)."""
    return pb.SignatureEntry(public_key=agent, signature=agent + agent)


def make_assertion(
    subject: str,
    predicate: str,
    text: str,
    confidence: float = 0.8,
    signers: list[bytes] | None = None,
    epoch: bytes = b"",
) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject,
            predicate=predicate,
            object=pb.Value(text=text),
            confidence=confidence,
            source_hash=SOURCE,
            epoch=epoch,
            signatures=[fake_sig(s) for s in signers or []],
        )
    )


def make_vote(assertion_hash: bytes, agent: bytes, weight: float, sequence: int = 0) -> pb.Record:
    return pb.Record(
        vote=pb.Vote(
            assertion_hash=assertion_hash,
            agent_id=agent,
            weight=weight,
            sequence=sequence,
            signature=agent + agent,
        )
    )


def make_epoch(
    name: str,
    supersedes: bytes = b"",
    kind: int = pb.SUPERSESSION_TYPE_UNSPECIFIED,
    signers: list[bytes] | None = None,
) -> pb.Record:
    return pb.Record(
        epoch=pb.Epoch(
            name=name,
            supersedes=supersedes,
            supersession_type=kind,  # type: ignore[arg-type]
            signatures=[fake_sig(s) for s in signers or []],
        )
    )


def wal_records(records: list[pb.Record], first_lsn: int = 1) -> list[WalRecord]:
    out = []
    for i, rec in enumerate(records):
        kind = rec.WhichOneof("kind")
        assert kind is not None
        payload = encode_payload(record_hash(rec), rec.SerializeToString())
        lsn = first_lsn + i
        out.append(
            WalRecord(
                lsn, TYPE_OF_KIND[kind], lsn, payload, lsn.to_bytes(16, "little"), Path("x"), 0
            )
        )
    return out


@dataclass(frozen=True)
class Stream:
    records: list[pb.Record]
    policy: TrustPolicy


def random_policy(rng: random.Random) -> TrustPolicy:
    agents = {a: rng.choice([0.0, 0.25, 0.5, 1.0]) for a in AGENTS if rng.random() < 0.6}
    return TrustPolicy(
        default_weight=rng.choice([1.0, 0.5, 0.75]),
        agents=dict(sorted(agents.items())),
        epoch_authority_min=rng.choice([1.0, 0.5]),
        candidates_max=rng.choice([2, 3, 10]),
        contested_margin=rng.choice([0.1, 0.5]),
        min_supporters=rng.choice([1, 2]),
        threshold=rng.choice([0.3, 0.6]),
    )


def random_stream(rng: random.Random, count: int) -> Stream:
    """Assertions (some in epochs), votes and re-votes with sequences, replays, votes before
    their assertion, re-appends with new co-signers, epochs of every type, signed and not."""
    slots = [(s, p) for s in ("s1", "s2") for p in ("p", "q\x00r")]
    epochs: list[pb.Record] = [make_epoch(f"base{i}", signers=[AGENTS[i]]) for i in range(2)]
    epoch_hashes = [record_hash(e) for e in epochs]
    kinds = [
        pb.SUPERSESSION_TYPE_EXTENSION,
        pb.SUPERSESSION_TYPE_REFINEMENT,
        pb.SUPERSESSION_TYPE_REVOLUTION,
    ]
    for i in range(4):
        signers = rng.sample(AGENTS, rng.choice([0, 1, 1, 2]))
        target = rng.choice(epoch_hashes[:2] if rng.random() < 0.7 else epoch_hashes)
        e = make_epoch(f"e{i}", target, rng.choice(kinds), signers)
        epochs.append(e)
        epoch_hashes.append(record_hash(e))
    pool: list[pb.Record] = []
    for i in range(12):
        s, p = rng.choice(slots)
        epoch = rng.choice(epoch_hashes[:3]) if rng.random() < 0.7 else b""
        signers = rng.sample(AGENTS, rng.randrange(0, 3))
        conf = rng.choice([0.0, 0.3, 0.5, 1.0, 0.1])
        pool.append(make_assertion(s, p, f"v{i}", conf, signers, epoch))
    pool_hashes = [record_hash(a) for a in pool]
    out: list[pb.Record] = []
    votes: list[pb.Record] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3:
            out.append(rng.choice(pool))
        elif roll < 0.4:
            a = pb.Record()
            a.CopyFrom(rng.choice(pool))
            del a.assertion.signatures[:]
            a.assertion.signatures.extend(fake_sig(s) for s in rng.sample(AGENTS, 2))
            out.append(a)
        elif roll < 0.75:
            v = make_vote(
                rng.choice(pool_hashes),
                rng.choice(AGENTS),
                rng.choice([1.0, -1.0, 0.5, -0.25, 0.0, 0.1]),
                rng.choice([0, 0, 1, 2, 3]),
            )
            votes.append(v)
            out.append(v)
        elif roll < 0.85 and votes:
            out.append(rng.choice(votes))  # a replay: same bytes, new LSN
        else:
            out.append(rng.choice(epochs))
    return Stream(out, random_policy(rng))
