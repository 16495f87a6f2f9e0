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


@pytest.mark.parametrize("seed", [3, 17])
def test_suffix_leaf_hashes_is_suffix_leaf_hash_of_consecutive_lsns(seed: int) -> None:
    """The batch form the writer's log tree uses: consecutive LSNs from ``first_lsn``, the
    unsigned fast path of leaf_suffix included, and the LSN range checked at both ends."""
    rng = random.Random(seed)
    records = [pb.Record(assertion=assertion(f"Q{i}", signers=i % 3)) for i in range(6)] + [
        pb.Record(vote=vote(rng.randbytes(32), 1)),
        pb.Record(epoch=epoch("e", signers=0)),
    ]
    suffixes = [merkle.leaf_suffix(r, canonical.record_bytes(r)) for r in records]
    for first in (1, rng.randrange(2, 2**63), 2**64 - len(records)):
        expected = [merkle.suffix_leaf_hash(first + i, s) for i, s in enumerate(suffixes)]
        assert merkle.suffix_leaf_hashes(first, suffixes) == expected
        assert expected == [merkle.record_leaf_hash(first + i, r) for i, r in enumerate(records)]
    assert merkle.suffix_leaf_hashes(5, []) == []
    with pytest.raises(ValueError, match="lsn"):
        merkle.suffix_leaf_hashes(0, suffixes)
    with pytest.raises(ValueError, match="lsn"):
        merkle.suffix_leaf_hashes(2**64 - 1, suffixes)  # the last would be past 2**64 - 1
