"""Co-signers beyond the 64 kept inside H: (under HS: keys) endorse exactly once in the Lattice,
whatever the batch boundaries, and a later vote by such a signer replaces its endorsement."""

from __future__ import annotations

import random
from pathlib import Path

from stemedb.canonical import record_hash
from stemedb.ingestor import ApplyEngine, ApplyState, StoreDb
from stemedb.ingestor._keys import SIGNATURES_INLINE_MAX
from stemedb.ingestor._policy import DEFAULT_POLICY
from stemedb.ingestor._query import Query, ViewsState
from stemedb.v1 import records_pb2 as pb
from tests.lattice.lattice_testlib import make_assertion, make_vote, wal_records

SIGNERS = SIGNATURES_INLINE_MAX + 36


def _stream() -> list[pb.Record]:
    agents = [i.to_bytes(2, "big") * 16 for i in range(1, SIGNERS + 1)]
    base = make_assertion("s", "p", "v", confidence=0.5, signers=agents[:1])
    records = [base]
    for n in range(1, SIGNERS):  # each re-append adds one signer and repeats an earlier one
        records.append(
            make_assertion("s", "p", "v", confidence=0.5, signers=[agents[n - 1], agents[n]])
        )
    h = record_hash(base)
    records.append(make_vote(h, agents[-1], -1.0))  # a signer held under HS: disputes instead
    return records


def test_cosigners_beyond_the_inline_bound_endorse_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    records = wal_records(_stream())
    h = record_hash(_stream()[0])
    one, many = StoreDb(tmp_path / "one"), StoreDb(tmp_path / "many")
    try:
        ApplyEngine(one, DEFAULT_POLICY).apply(records)
        pos = 0
        while pos < len(records):
            step = rng.randrange(1, 30)
            ApplyEngine(many, DEFAULT_POLICY).apply(records[pos : pos + step])
            pos += step
        assert one.dump() == many.dump()
        query = Query(one, ApplyState(len(records), b""), DEFAULT_POLICY, ViewsState())
        tally = query.get_tally(h).tally
        assert tally.supporters == SIGNERS - 1 and tally.disputers == 1
        assert tally.support == (SIGNERS - 1) * 0.5 and tally.dispute == 1.0
    finally:
        one.close()
        many.close()
