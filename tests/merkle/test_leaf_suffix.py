"""The writer's leaf path (leaf_suffix from the request's canonical bytes, hashed later with the
LSN) gives exactly the leaf of the record as appended (record_leaf_hash, the spec's)."""

from __future__ import annotations

import random

import pytest

from stemedb import canonical, merkle
from stemedb.v1 import records_pb2 as pb
from tests.writer.records import assertion, epoch, vote


def test_suffix_leaf_hash_is_the_record_leaf_hash(seed: int) -> None:
    rng = random.Random(seed)
    records = [
        pb.Record(assertion=assertion(f"Q{i}", signers=i % 4)) for i in range(8)
    ] + [pb.Record(vote=vote(rng.randbytes(32), i % 4)) for i in range(4)] + [
        pb.Record(epoch=epoch(f"e{i}", signers=1 + i % 3)) for i in range(4)
    ]  # fmt: skip
    for record in records:
        lsn = rng.randrange(1, 2**64)
        body = canonical.record_bytes(record)
        expected = merkle.record_leaf_hash(lsn, record)
        assert merkle.suffix_leaf_hash(lsn, merkle.leaf_suffix(record, body)) == expected
        assert merkle.suffix_leaf_hash(lsn, merkle.leaf_suffix(record)) == expected
        assert merkle.leaf_bytes(lsn, record).endswith(merkle.leaf_suffix(record))
    with pytest.raises(ValueError, match="lsn"):
        merkle.suffix_leaf_hash(0, merkle.leaf_suffix(records[0]))
