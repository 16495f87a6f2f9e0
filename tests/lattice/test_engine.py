"""The incremental engine against the oracle, in process, on a real RocksDB (no gRPC)."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stemedb.ingestor import ApplyEngine, ApplyState, StoreDb
from stemedb.ingestor._lattice import HISTORY_PREFIX, TALLY_PREFIX, VIEW_PREFIX, CandidateState
from stemedb.ingestor._oracle import Oracle, replay
from stemedb.ingestor._query import Query, ViewsState
from stemedb.ingestor._rederive import rederive_if_needed

from stemedb.v1.query_pb2 import SlotView
from tests.lattice.lattice_testlib import random_policy, random_stream, wal_records


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
        # Resolve, now and as of earlier LSNs, answers what the oracle says of that prefix.
        query = Query(one, ApplyState(len(records), b""), stream.policy, ViewsState())
        checked = sorted(
            {len(records), *rng.sample(range(1, len(records) + 1), min(4, len(records)))}
        )
        for lsn in checked:
            prefix = Oracle.of(log[:lsn], stream.policy)
            for subject, predicate in oracle.slots():
                for lens in ("consensus", "skeptic", "recent"):
                    want = prefix.resolve(subject, predicate, lens)
                    want.as_of_lsn = lsn
                    as_of = 0 if lsn == len(records) else lsn
                    got = query.resolve(subject, predicate, lens, as_of).resolution
                    assert got == want, (subject, predicate, lens, lsn)
        for h in oracle.assertions:
            raw = one.get(TALLY_PREFIX + h.hex().encode())
            assert raw is not None
            expected = oracle.tally(h)
            assert expected is not None
            assert CandidateState.decode(raw).tally(h) == expected.message(h)
    finally:
        one.close()
        many.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_rederiving_for_a_new_policy_equals_building_under_it(tmp_path: Path, seed: int) -> None:
    print(f"seed={seed}")
    rng = random.Random(seed)
    stream = random_stream(rng, rng.randrange(1, 120))
    other = random_policy(rng)
    records = wal_records(stream.records)
    root = tmp_path / str(seed)
    changed = StoreDb(root / "changed")
    fresh = StoreDb(root / "fresh")
    try:
        ApplyEngine(changed, stream.policy).apply(records)
        views = ViewsState(ready=False)
        ratios: list[float] = []
        ran = rederive_if_needed(changed, other, views, ratios.append)
        assert views.ready and ratios[-1] == 1.0
        assert ran == (other.canonical() != stream.policy.canonical())
        ApplyEngine(fresh, other).apply(records)
        for prefix in (TALLY_PREFIX, b"SC:", b"CV:", b"ES:", b"EA:", b"LP:"):
            assert _under(changed, prefix) == _under(fresh, prefix), prefix
        got, want = _under(changed, VIEW_PREFIX), _under(fresh, VIEW_PREFIX)
        assert got.keys() == want.keys()
        for key, value in got.items():
            a, b = SlotView.FromString(value), SlotView.FromString(want[key])
            a.lsn = b.lsn = 0  # a re-derived view changed at the checkpoint's LSN
            assert a == b
        # Applying more records afterwards goes on exactly as in the fresh database.
        more = wal_records(random_stream(rng, 30).records, first_lsn=len(records) + 1)
        ApplyEngine(changed, other).apply(more)
        ApplyEngine(fresh, other).apply(more)
        assert _under(changed, TALLY_PREFIX) == _under(fresh, TALLY_PREFIX)
        assert rederive_if_needed(changed, other, views) is False
    finally:
        changed.close()
        fresh.close()
