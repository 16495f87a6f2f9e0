"""A real writer and ingestor for the Lattice tests, with signed records and query helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nacl.signing

from stemedb import canonical, signing
from stemedb.v1 import (
    query_pb2,
    query_pb2_grpc,
    writer_pb2,
    writer_pb2_grpc,
)
from stemedb.v1 import (
    records_pb2 as pb,
)
from tests.support import Service, start_ingestor, start_writer

KEYS = {name: nacl.signing.SigningKey(bytes([i + 1]) * 32) for i, name in enumerate("ABCDEFLZ")}
PUB = {name: signing.public_key_of(key) for name, key in KEYS.items()}
SOURCE = bytes(range(32))
# Z has trust 0 and L trust 0.5 (below epoch_authority_min 1.0); everyone else weighs 1.0.
POLICY = {"agents": {PUB["Z"].hex(): 0.0, PUB["L"].hex(): 0.5}}
RPC_SECONDS = 30.0


def signed_assertion(
    subject: str,
    predicate: str,
    text: str,
    signers: Sequence[str] = ("A",),
    confidence: float = 0.9,
    epoch: bytes = b"",
) -> pb.Record:
    a = pb.Assertion(
        subject=subject,
        predicate=predicate,
        object=pb.Value(text=text),
        confidence=confidence,
        source_hash=SOURCE,
        epoch=epoch,
    )
    h = canonical.record_hash(pb.Record(assertion=a))
    a.signatures.extend(signing.signature_entry(KEYS[s], h) for s in signers)
    return pb.Record(assertion=a)


def signed_vote(assertion_hash: bytes, agent: str, weight: float, sequence: int = 0) -> pb.Record:
    v = pb.Vote(
        assertion_hash=assertion_hash, agent_id=PUB[agent], weight=weight, sequence=sequence
    )
    v.signature = signing.sign_hash(KEYS[agent], canonical.record_hash(pb.Record(vote=v)))
    return pb.Record(vote=v)


def signed_epoch(
    name: str, supersedes: bytes = b"", kind: int = 0, signers: Sequence[str] = ()
) -> pb.Record:
    e = pb.Epoch(name=name, supersedes=supersedes, supersession_type=kind)  # type: ignore[arg-type]
    h = canonical.record_hash(pb.Record(epoch=e))
    e.signatures.extend(signing.signature_entry(KEYS[s], h) for s in signers)
    return pb.Record(epoch=e)


def hash_of(record: pb.Record) -> bytes:
    return canonical.record_hash(record)


@dataclass
class Lab:
    writer: Service
    ingestor: Service
    wal_dir: Path
    channels: list[grpc.Channel] = field(default_factory=list)
    last_lsn: int = 0  # the highest LSN this lab appended

    def _channel(self, target: str) -> grpc.Channel:
        channel = grpc.insecure_channel(target)
        self.channels.append(channel)
        return channel

    @property
    def writer_stub(self) -> writer_pb2_grpc.WriterServiceStub:
        return writer_pb2_grpc.WriterServiceStub(self._channel(self.writer.listen))

    def query(self, ingestor: Service | None = None) -> query_pb2_grpc.QueryServiceStub:
        return query_pb2_grpc.QueryServiceStub(self._channel((ingestor or self.ingestor).listen))

    def append(self, *records: pb.Record) -> list[int]:
        """Append in one batch; the receipts' LSNs."""
        reply = self.writer_stub.AppendBatch(
            writer_pb2.AppendBatchRequest(records=list(records)), timeout=RPC_SECONDS
        )
        lsns = [r.lsn for r in reply.receipts]
        self.last_lsn = max(self.last_lsn, *lsns)
        return lsns

    def resolve(
        self, subject: str, predicate: str, lens: str = "", min_lsn: int = 0, as_of_lsn: int = 0
    ) -> query_pb2.Resolution:
        reply = self.query().Resolve(
            query_pb2.ResolveRequest(
                subject=subject, predicate=predicate, lens=lens, min_lsn=min_lsn,
                as_of_lsn=as_of_lsn,
            ),
            timeout=RPC_SECONDS,
        )  # fmt: skip
        return reply.resolution

    def tally(self, assertion_hash: bytes, min_lsn: int = 0) -> query_pb2.GetTallyResponse:
        return self.query().GetTally(
            query_pb2.GetTallyRequest(assertion_hash=assertion_hash, min_lsn=min_lsn),
            timeout=RPC_SECONDS,
        )

    def close(self) -> None:
        for channel in self.channels:
            channel.close()


def write_policy(path: Path, policy: dict[str, object] | None = None) -> Path:
    path.write_text(json.dumps(POLICY if policy is None else policy))
    return path


@contextmanager
def running_lab(root: Path, *ingestor_flags: str) -> Iterator[Lab]:
    root.mkdir(parents=True, exist_ok=True)
    wal = root / "wal"
    writer = start_writer(wal, log_dir=root)
    ingestor: Service | None = None
    lab: Lab | None = None
    try:
        writer.wait_ready()
        policy = write_policy(root / "policy.json")
        ingestor = start_ingestor(
            wal, root / "db", "--trust-policy", str(policy), *ingestor_flags, log_dir=root
        )
        ingestor.wait_ready()
        lab = Lab(writer, ingestor, wal)
        yield lab
    finally:
        if lab is not None:
            lab.close()
        if ingestor is not None:
            ingestor.kill()
        writer.kill()
