"""Point reads answered from the stored bytes (Get, GetAssertion, BatchGet), the read cache and
its invalidation, over a real RocksDB; BatchGet and the clients' batch_get over a real process."""

from __future__ import annotations

import asyncio
import random
import re
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest
from ingestor_testlib import Ingestor, assertion, epoch, running, sig, vote, write_wal

from stemedb.canonical import record_hash
from stemedb.client import AsyncClient, Client, ShardedClient
from stemedb.ingestor import ApplyEngine
from stemedb.ingestor._db import DbOptions, ScanResult, StoreDb
from stemedb.ingestor._errors import InvalidRequest
from stemedb.ingestor._keys import SIGNATURES_INLINE_MAX, Checkpoint, is_record_key, signer_key
from stemedb.ingestor._lattice import SETTLE_KEY, history_key, slot_key, view_key
from stemedb.ingestor._policy import DEFAULT_POLICY
from stemedb.ingestor._query import Query, ViewsState
from stemedb.ingestor._state import ApplyState
from stemedb.ingestor._store import BATCH_GET_KEYS_MAX, Store
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2
from tests.lattice.lattice_testlib import AGENTS, make_assertion, make_vote, wal_records

CACHE_BYTES = 64 * 1024


def hexkey(prefix: bytes, h: bytes) -> bytes:
    return prefix + h.hex().encode()


def reference_get(db: StoreDb, key: bytes, applied: int) -> bytes:
    """GetResponse built the ordinary way: parse the stored record, serialize the message."""
    value = db.get(key)
    if value is None:
        return store_pb2.GetResponse(found=False, applied_lsn=applied).SerializeToString()
    response = store_pb2.GetResponse(found=True, value=value, applied_lsn=applied)
    if is_record_key(key):
        response.record.ParseFromString(value)
    return response.SerializeToString()


def reference_get_assertion(db: StoreDb, content_hash: bytes, applied: int) -> bytes:
    value = db.get(hexkey(b"H:", content_hash))
    response = store_pb2.GetAssertionResponse(applied_lsn=applied)
    if value is not None:
        response.found = True
        response.assertion.CopyFrom(pb.Record.FromString(value).assertion)
        if len(response.assertion.signatures) >= SIGNATURES_INLINE_MAX:
            key = signer_key(content_hash, bytes(32))
            prefix = key[: key.rindex(b":") + 1]
            response.more_signers = bool(db.scan(prefix, prefix, 1).entries)
    return response.SerializeToString()


def random_records(rng: random.Random, count: int) -> list[pb.Record]:
    out: list[pb.Record] = []
    for i in range(count):
        kind = rng.randrange(3)
        if kind == 0:
            signers = rng.sample(range(1000), rng.randrange(0, 5))
            out.append(assertion(rng.randrange(10**6), signers=signers))
        elif kind == 1:
            out.append(vote(rng.randbytes(32), i))
        else:
            out.append(epoch(rng.randrange(10**6)))
    return out


def prefix_of(record: pb.Record) -> bytes:
    return {"assertion": b"H:", "vote": b"V:", "epoch": b"E:"}[str(record.WhichOneof("kind"))]


@pytest.fixture(params=[0, CACHE_BYTES], ids=["no-cache", "cache"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> StoreDb:
    opened = StoreDb(tmp_path / "db", DbOptions(read_cache_bytes_max=request.param))
    request.addfinalizer(opened.close)
    return opened


def test_get_answers_protobufs_own_encoding(db: StoreDb, seed: int) -> None:
    rng = random.Random(seed)
    records = random_records(rng, 300)
    puts = [(hexkey(prefix_of(r), record_hash(r)), r.SerializeToString()) for r in records]
    puts += [(b"S:s\x00" + bytes([i]) * 32, bytes([i]) * 32) for i in range(20)]  # index keys
    puts += [(b"UR:" + bytes(8) + b"agent", b""), (hexkey(b"H:", bytes(32)), b"")]  # empty values
    db.write(puts, Checkpoint(1, bytes(16)))
    keys = [k for k, _ in puts] + [hexkey(b"H:", rng.randbytes(32)), b"S:missing"]
    for applied in (0, 1, 127, 128, 2**40 + rng.randrange(2**20)):
        store = Store(db, ApplyState(applied, bytes(16)))
        for key in rng.sample(keys, len(keys)) * 2:  # twice: misses, then cache hits
            assert store.get_bytes(key) == reference_get(db, key, applied), key
        batch = rng.sample(keys, 50)
        expected = store_pb2.BatchGetResponse(
            results=[
                store_pb2.GetResponse.FromString(reference_get(db, k, applied)) for k in batch
            ],
            applied_lsn=applied,
        )
        assert store.batch_get_bytes(batch) == expected.SerializeToString()
        assert store.batch_get(batch) == expected


def test_get_assertion_answers_protobufs_own_encoding(db: StoreDb, seed: int) -> None:
    rng = random.Random(seed)
    few = assertion(1, signers=[1, 2, 3])
    full = assertion(2, signers=range(SIGNATURES_INLINE_MAX))  # 64 inline, no HS: keys
    beyond = assertion(3, signers=range(SIGNATURES_INLINE_MAX))  # 64 inline and HS: keys
    bare = assertion(4)
    hashes = [record_hash(r) for r in (few, full, beyond, bare)]
    puts = [
        (hexkey(b"H:", h), r.SerializeToString())
        for h, r in zip(hashes, (few, full, beyond, bare), strict=True)
    ]
    extra = sig(10_000)
    puts.append((signer_key(hashes[2], extra.public_key), extra.signature))
    db.write(puts, Checkpoint(1, bytes(16)))
    store = Store(db, ApplyState(rng.randrange(1, 2**30), bytes(16)))
    for content_hash in [*hashes, rng.randbytes(32)]:
        got = store.get_assertion_bytes(content_hash)
        assert got == reference_get_assertion(db, content_hash, store.applied_lsn)
    flags = [store.get_assertion(h) for h in hashes]
    assert [f.more_signers for f in flags] == [False, False, True, False]


def test_batch_get_bounds_name_the_field(tmp_path: Path) -> None:
    db = StoreDb(tmp_path / "db")
    try:
        value = b"x" * 1000
        db.write([(b"K:%04d" % i, value) for i in range(100)], Checkpoint(1, bytes(16)))
        store = Store(db, ApplyState(1, bytes(16)), page_bytes_max=50_000)
        cases = [
            ([], "keys: at least one key"),
            ([b"K:0001"] * (BATCH_GET_KEYS_MAX + 1), f"keys: at most {BATCH_GET_KEYS_MAX} keys"),
            ([b"K:0001", b"K:0002", b""], "keys[2] is required"),
            ([b"K:0001", b"x" * 5000], "keys[1] is longer than 4096 bytes"),
            ([b"K:%04d" % i for i in range(51)], "keys: the 51 values total 51000 bytes"),
        ]
        for keys, message in cases:
            with pytest.raises(InvalidRequest, match=re.escape(message)):
                store.batch_get(keys)
        ok = store.batch_get([b"K:%04d" % i for i in range(50)])
        assert len(ok.results) == 50 and all(r.found and r.value == value for r in ok.results)
    finally:
        db.close()


def test_read_cache_is_bounded_and_counts(tmp_path: Path) -> None:
    db = StoreDb(tmp_path / "db", DbOptions(read_cache_bytes_max=CACHE_BYTES))
    try:
        records = [assertion(i) for i in range(2000)]
        keys = [hexkey(b"H:", record_hash(r)) for r in records]
        db.write(
            [(k, r.SerializeToString()) for k, r in zip(keys, records, strict=True)],
            Checkpoint(1, bytes(16)),
        )
        store = Store(db, ApplyState(1, bytes(16)))
        cache = db.cache
        assert cache is not None
        for key in keys:
            store.get(key)
            assert cache.bytes <= CACHE_BYTES
        assert cache.misses == len(keys) and cache.hits == 0
        assert 0 < len(cache) < len(keys)  # bounded: the oldest were evicted
        store.get(keys[-1])
        store.get_assertion(record_hash(records[-2]))
        assert cache.hits == 2
        store.get(keys[0])  # evicted long ago
        assert cache.misses == len(keys) + 1
        store.get(b"S:not-a-record-key")  # index keys bypass the cache
        assert cache.misses == len(keys) + 1
    finally:
        db.close()


def test_a_merged_cosigner_is_never_served_stale(tmp_path: Path) -> None:
    """H: values change when a co-signer is merged: the write drops the cached value, and a
    value read before that write is not cached after it."""
    db = StoreDb(tmp_path / "db", DbOptions(read_cache_bytes_max=CACHE_BYTES))
    try:
        before, after = assertion(1, signers=[1]), assertion(1, signers=[1, 2])
        key = hexkey(b"H:", record_hash(before))
        db.write([(key, before.SerializeToString())], Checkpoint(1, bytes(16)))
        store = Store(db, ApplyState(1, bytes(16)))
        assert store.get_bytes(key) == reference_get(db, key, 1)  # now cached
        db.write([(key, after.SerializeToString())], Checkpoint(2, bytes(16)))
        merged = store.get(key).record
        assert merged == after
        assert list(merged.assertion.signatures) == [sig(1), sig(2)]
        # A read that missed before a merge and offers the old value after it: refused.
        cache = db.cache
        assert cache is not None
        other = hexkey(b"H:", record_hash(assertion(2)))
        missed, generation = cache.lookup(other)
        assert missed is None
        db.write([(other, assertion(2, signers=[3]).SerializeToString())], Checkpoint(3, bytes(16)))
        cache.offer(other, assertion(2).SerializeToString(), generation)
        got = store.get(other).record
        assert list(got.assertion.signatures) == [sig(3)]
    finally:
        db.close()


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported:\n{text}")


def test_batch_get_over_grpc_and_the_clients(tmp_path: Path) -> None:
    shard_records = [
        [assertion(i, subject=f"s{i}") for i in range(s * 10, s * 10 + 10)] for s in (0, 1)
    ]
    lasts = [write_wal(tmp_path / f"wal{s}", shard_records[s]) for s in (0, 1)]
    keys = [[hexkey(b"H:", record_hash(r)) for r in recs] for recs in shard_records]
    missing = hexkey(b"H:", bytes(32))
    ing0 = Ingestor(tmp_path / "wal0", tmp_path / "db0", tmp_path / "log0")
    ing1 = Ingestor(tmp_path / "wal1", tmp_path / "db1", tmp_path / "log1")
    with running(ing0), running(ing1):
        ing0.wait_applied(lasts[0])
        ing1.wait_applied(lasts[1])
        store = ing0.store
        wanted = [
            keys[0][3],
            missing,
            b"S:s1\x00" + record_hash(shard_records[0][1]).hex().encode(),
            keys[0][3],
        ]
        got = store.BatchGet(store_pb2.BatchGetRequest(keys=wanted, min_lsn=lasts[0]), timeout=10)
        singles = [store.Get(store_pb2.GetRequest(key=k), timeout=10) for k in wanted]
        assert list(got.results) == singles and got.applied_lsn == lasts[0]
        assert [r.found for r in got.results] == [True, False, True, True]
        for request, field in (
            (store_pb2.BatchGetRequest(), "keys: at least one key"),
            (store_pb2.BatchGetRequest(keys=[b"H:x", b""]), r"keys\[1\] is required"),
            (store_pb2.BatchGetRequest(keys=[b"k"] * (BATCH_GET_KEYS_MAX + 1)), "keys: at most"),
        ):
            with pytest.raises(grpc.RpcError) as err:
                store.BatchGet(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert re.search(field, err.value.details() or "")
        # Repeated point reads of a record key are served from the read cache (on by default).
        hits = _metric(ing0.metrics_port, "stemedb_ingestor_read_cache_hits_total")
        assert hits >= 1
        with Client(store=ing0.address) as client:
            results = client.batch_get(wanted, min_lsn=lasts[0])
        assert [r.found for r in results] == [True, False, True, True]
        assert results[0].record == shard_records[0][3] and results[0].key == keys[0][3]

        async def via_asyncio() -> list[bool]:
            async with AsyncClient(store=ing0.address) as client:
                return [r.found for r in await client.batch_get(wanted)]

        assert asyncio.run(via_asyncio()) == [True, False, True, True]
        pairs = [("127.0.0.1:1", ing0.address), ("127.0.0.1:1", ing1.address)]
        with ShardedClient(pairs) as sharded:
            mixed = [keys[1][0], missing, keys[0][5], keys[1][9]]
            found = sharded.batch_get(mixed)
            assert [r.found for r in found] == [True, False, True, True]
            assert [r.key for r in found] == mixed
            assert found[0].record == shard_records[1][0]
            on_one = sharded.batch_get(mixed, lasts[1], shard=1)
            assert [r.found for r in on_one] == [True, False, False, True]
            with pytest.raises(ValueError, match="min_lsn is per shard"):
                sharded.batch_get(mixed, 1)


class CountingDb(StoreDb):
    """A real StoreDb that records every read it serves (method, key or prefix)."""

    reads: list[tuple[str, bytes]]

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(("get", key))
        return super().get(key)

    def multi_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self.reads.extend(("multi_get", k) for k in keys)
        return super().multi_get(keys)

    def scan(
        self, prefix: bytes, start: bytes, limit: int, bytes_max: int | None = None
    ) -> ScanResult:
        self.reads.append(("scan", prefix))
        return super().scan(prefix, start, limit, bytes_max)

    def last_before(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        self.reads.append(("last_before", key))
        return super().last_before(prefix, key)


def test_resolve_reads_one_key(tmp_path: Path) -> None:
    """Resolve reads exactly the slot's MV: view and the settle queue (LQ:settle, one fixed key:
    docs/lattice.md "Settling") in one multi_get; with as_of_lsn, the queue and one backward
    history seek, not the view."""
    db = CountingDb(tmp_path / "db")
    db.reads = []
    try:
        x = make_assertion("Pluto", "classification", "planet", 0.9, [AGENTS[0]])
        y = make_assertion("Pluto", "classification", "dwarf planet", 0.8, [AGENTS[1]])
        log = [x, y, make_vote(record_hash(x), AGENTS[2], 1.0, 1)]
        ApplyEngine(db, DEFAULT_POLICY).apply(wal_records(log))
        query = Query(db, ApplyState(len(log), b""), DEFAULT_POLICY, ViewsState())
        slot = slot_key("Pluto", "classification")
        for lens in ("", "skeptic", "recent"):
            db.reads = []
            res = query.resolve("Pluto", "classification", lens, 0).resolution
            assert res.candidates
            assert db.reads == [("multi_get", SETTLE_KEY), ("multi_get", view_key(slot))]
        db.reads = []
        query.resolve("Pluto", "classification", "", 1)
        assert db.reads == [("get", SETTLE_KEY), ("last_before", history_key(slot, 1))]
    finally:
        db.close()
