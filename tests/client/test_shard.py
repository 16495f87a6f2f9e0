"""Sharding: the routing rule is deterministic and spreads subjects; records land where it says."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import blake3
import pytest

from stemedb.client import (
    AgentKey,
    AsyncShardedClient,
    ShardedClient,
    ShardLookupError,
    make_assertion,
    make_epoch,
    shard_of_hash,
    shard_of_subject,
)
from tests.client.stack import Stack, running_stack

KEY = AgentKey.from_seed(b"\x21" * 32)


def test_rule_is_blake3_prefix_mod_n() -> None:
    for subject in ["Q42", "Q420", "", "ünïcode", "x" * 1000]:
        digest = blake3.blake3(subject.encode("utf-8")).digest()
        for n in (1, 2, 3, 7, 16):
            assert shard_of_subject(subject, n) == int.from_bytes(digest[:8], "big") % n
    assert shard_of_hash(bytes(range(32)), 5) == int.from_bytes(bytes(range(8)), "big") % 5


def test_rule_is_pinned() -> None:
    # Other clients (Node.js) must route identically: these values are part of the contract.
    expected = {s: shard_of_subject(s, 4) for s in ["Q42", "Q1", "Douglas Adams"]}
    assert expected == {
        s: int.from_bytes(blake3.blake3(s.encode()).digest()[:8], "big") % 4 for s in expected
    }
    assert [shard_of_subject("Q42", n) for n in (1, 2, 3, 4, 5)] == [
        0,
        *[int.from_bytes(blake3.blake3(b"Q42").digest()[:8], "big") % n for n in (2, 3, 4, 5)],
    ]


def test_rule_spreads_subjects_evenly() -> None:
    n, subjects = 8, 40_000
    counts = Counter(shard_of_subject(f"Q{i}", n) for i in range(subjects))
    assert set(counts) == set(range(n))
    for shard, count in counts.items():
        assert abs(count - subjects / n) < 0.05 * subjects / n, (shard, counts)


def test_rule_rejects_zero_shards() -> None:
    with pytest.raises(ValueError):
        shard_of_subject("Q42", 0)
    with pytest.raises(ValueError):
        ShardedClient([])


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Stack]]:
    root = tmp_path_factory.mktemp("shards")
    with ExitStack() as stack:
        yield [stack.enter_context(running_stack(root / f"shard{i}")) for i in range(2)]


def _subject_on(shard: int, n: int = 2, prefix: str = "S") -> str:
    return next(f"{prefix}{i}" for i in range(1000) if shard_of_subject(f"{prefix}{i}", n) == shard)


def test_records_land_on_their_shards(two_shards: list[Stack], tmp_path: Path) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]
    with ShardedClient(pairs) as db:
        for shard in (0, 1):
            subject = _subject_on(shard)
            a = make_assertion(subject, "p", "o", source_hash=b"\x01" * 32)
            r = db.append_assertion(a)
            assert r.shard == shard
            # read-your-writes on the shard that holds it; the other shard never sees it
            assert db.get("H:" + r.hash_hex, r.lsn, shard=shard).found
            assert not db.shards[1 - shard].get("H:" + r.hash_hex).found
            assert [
                x.hash for x in db.list_assertions_by_subject(subject, min_lsn=r.lsn).items
            ] == [r.hash]
            # a vote follows its assertion: by subject, or located when the subject is not given
            v1 = db.append_vote(KEY.vote(r.hash, 0.5), subject=subject)
            fresh = ShardedClient(pairs)  # no cache: must ask the stores
            with fresh:
                v2 = fresh.append_vote(KEY.vote(r.hash, -0.5))
            assert v1.shard == v2.shard == shard
            votes = db.list_votes(r.hash, min_lsn=max(v1.lsn, v2.lsn), subject=subject)
            assert {x.hash for x in votes.items} == {v1.hash, v2.hash}
            assert db.get("H:" + r.hash_hex).found  # fan-out read without a shard
        e = db.append_epoch(make_epoch("sharded epoch"))
        assert e.shard == shard_of_hash(e.hash, 2)


def test_batch_is_split_per_shard_in_input_order(two_shards: list[Stack]) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]
    s0, s1 = _subject_on(0), _subject_on(1)
    a0 = make_assertion(s0, "batch", 1, source_hash=b"\x02" * 32)
    a1 = make_assertion(s1, "batch", 2, source_hash=b"\x02" * 32)
    with ShardedClient(pairs) as db:
        receipts = db.append_batch([a0, a1, KEY.vote(db_hash(a1), 1.0), a0])
        assert [r.shard for r in receipts] == [0, 1, 1, 0]
        assert receipts[0].hash == receipts[3].hash
        assert receipts[3].lsn == receipts[0].lsn + 1


def db_hash(a: object) -> bytes:
    from stemedb import canonical
    from stemedb.v1 import records_pb2 as pb

    assert isinstance(a, pb.Assertion)
    return canonical.record_hash(pb.Record(assertion=a))


def test_vote_on_an_unknown_assertion_cannot_be_routed(two_shards: list[Stack]) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]
    with ShardedClient(pairs) as db, pytest.raises(ShardLookupError, match="pass its subject"):
        db.append_vote(KEY.vote(b"\x09" * 32, 0.5))


def test_async_sharded_client_routes_like_the_sync_one(two_shards: list[Stack]) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]

    async def run() -> None:
        async with AsyncShardedClient(pairs) as db:
            for shard in (0, 1):
                subject = _subject_on(shard)
                a = make_assertion(subject, "async", "o", source_hash=b"\x03" * 32)
                r = await db.append_assertion(a)
                assert r.shard == shard == db.shard_for_subject(subject)
                assert (await db.get("H:" + r.hash_hex, r.lsn, shard=shard)).found
                page = await db.list_assertions_by_subject(subject, min_lsn=r.lsn)
                assert r.hash in [x.hash for x in page.items]
                listed = [x.hash async for x in db.iter_assertions_by_subject(subject, 1)]
                assert r.hash in listed
                assert (await db.get("H:" + r.hash_hex)).found  # fan-out without a shard
            async with AsyncShardedClient(pairs) as fresh:  # no cache: locates by asking
                assert await fresh.locate_assertion(r.hash) == 1
                v = await fresh.append_vote(KEY.vote(r.hash, 0.25))
            assert v.shard == 1
            s0 = _subject_on(0)
            a0 = make_assertion(s0, "async-batch", 1, source_hash=b"\x04" * 32)
            receipts = await db.append_batch([a0, KEY.vote(db_hash(a0), 1.0), a])
            assert [x.shard for x in receipts] == [0, 0, 1]
            with pytest.raises(ShardLookupError):
                await db.append_vote(KEY.vote(b"\x0a" * 32, 0.5))

    asyncio.run(run())


def test_subjects_route_in_nfc() -> None:
    nfd, nfc = "Cafe\u0301", "Caf\u00e9"
    with ShardedClient([("127.0.0.1:1", "127.0.0.1:1")] * 7) as db:
        assert db.shard_for_subject(nfd) == db.shard_for_subject(nfc) == shard_of_subject(nfc, 7)


def test_queries_follow_the_subject_and_tallies_the_assertion(two_shards: list[Stack]) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]
    with ShardedClient(pairs) as db:
        for shard in (0, 1):
            subject = _subject_on(shard, prefix="query:")
            r = db.append_assertion(
                KEY.sign_assertion(make_assertion(subject, "q", "o", source_hash=b"\x05" * 32))
            )
            v = db.append_vote(KEY.vote(r.hash, 1.0), subject=subject)
            res = db.resolve(subject, "q", min_lsn=v.lsn).resolution
            assert res.winner.hash == r.hash
            other = db.shards[1 - shard].resolve(subject, "q").resolution
            assert not other.candidates, "the other shard knows nothing of the slot"
            assert [x.predicate for x in db.iter_resolve_subject(subject, min_lsn=v.lsn)] == ["q"]
            assert db.resolve_subject(subject).items[0].winner.hash == r.hash
            assert db.list_history(subject, "q").items[0].winner_hash == r.hash
            assert next(iter(db.iter_history(subject, "q"))).lsn == r.lsn
            assert db.get_tally(r.hash, v.lsn, subject=subject).tally.supporters == 1
            assert db.get_tally(r.hash, v.lsn, shard=shard).found
            with ShardedClient(pairs) as fresh:  # no cache: every shard asked until one knows
                assert fresh.get_tally(r.hash).tally.votes == 1
                with pytest.raises(ValueError, match="min_lsn is per shard"):
                    fresh.get_tally(r.hash, v.lsn)
            assert db.get_checkpoint(shard).checkpoint
            assert db.get_inclusion_proof(shard, r.lsn).leaf_index == r.lsn - 1
            assert db.list_record_lsns(shard, r.hash).items == [r.lsn]
        assert next(x.name for x in db.list_lenses(shard=1).lenses) == "consensus"
        assert not db.get_tally(b"\x0b" * 32).found


def test_async_sharded_queries(two_shards: list[Stack]) -> None:
    pairs = [(s.writer.listen, s.ingestor.listen) for s in two_shards]
    subject = _subject_on(1, prefix="aquery:")

    async def run() -> None:
        async with AsyncShardedClient(pairs) as db:
            r = await db.append_assertion(
                KEY.sign_assertion(make_assertion(subject, "aq", 1, source_hash=b"\x06" * 32))
            )
            res = (await db.resolve(subject, "aq", min_lsn=r.lsn)).resolution
            assert res.winner.hash == r.hash
            assert (await db.get_tally(r.hash)).found  # remembered from the append
            assert [x.lsn async for x in db.iter_history(subject, "aq")] == [r.lsn]
            assert "aq" in [x.predicate async for x in db.iter_resolve_subject(subject)]
            assert (await db.list_lenses()).lenses
            assert (await db.get_consistency_proof(1, 1, 1)).hashes == []

    asyncio.run(run())
