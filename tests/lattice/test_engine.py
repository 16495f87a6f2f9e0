"""The incremental engine against the oracle, in process, on a real RocksDB (no gRPC)."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.ingestor._lattice import HISTORY_PREFIX, TALLY_PREFIX, VIEW_PREFIX, CandidateState
from stemedb.ingestor._oracle import replay

from tests.lattice.lattice_testlib import random_stream, wal_records


def _under(db: StoreDb, prefix: bytes) -> dict[bytes, bytes]:
    return {k: v for k, v in db.dump() if k.startswith(prefix)}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_engine_equals_oracle_and_batches_do_not_matter(tmp_path: Path, seed: int) -> None:
    print(f"seed={seed}")
    rng = random.Random(seed)
    stream = random_stream(rng, rng.randrange(1, 120))
    records = wal_records(stream.records)
    root = tmp_path / str(seed)
    one = StoreDb(root / "one")
    many = StoreDb(root / "many")
    try:
        ApplyEngine(one, stream.policy).apply(records)
        engine = ApplyEngine(many, stream.policy)
        pos = 0
        while pos < len(records):
            step = rng.randrange(1, 20)
            engine.apply(records[pos : pos + step])
            pos += step
        assert one.dump() == many.dump()
        log = [(r.lsn, rec) for r, rec in zip(records, stream.records, strict=True)]
        run = replay(log, stream.policy)
        assert _under(one, VIEW_PREFIX) == run.views
        assert _under(one, HISTORY_PREFIX) == run.history
        oracle = run.oracle
        for h in oracle.assertions:
            raw = one.get(TALLY_PREFIX + h.hex().encode())
            assert raw is not None
            expected = oracle.tally(h)
            assert expected is not None
            assert CandidateState.decode(raw).tally(h) == expected.message(h)
    finally:
        one.close()
        many.close()
