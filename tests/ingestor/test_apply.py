"""The apply engine, the database and paging on a real RocksDB, without gRPC."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingestor_testlib import assertion, epoch, mixed_records, sig, vote, wal_entry
from stemedb.ingestor import (
    ApplyEngine,
    ApplyState,
    Checkpoint,
    InvalidRequest,
    SchemaMismatch,
    Store,
    StoreDb,
    decode_page_token,
    encode_page_token,
    page_size_of,
)
from stemedb.ingestor._keys import INTERNAL_CF, prefix_upper_bound

from stemedb.canonical import record_hash
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalRecord
from stemedb.walrecord import encode_payload


def wal_records(records: list[pb.Record], first_lsn: int = 1) -> list[WalRecord]:
    out = []
    for i, rec in enumerate(records):
        record_type, payload = wal_entry(rec)
        lsn = first_lsn + i
        out.append(
            WalRecord(
                lsn,
                record_type,
                1_000 + lsn,
                payload,
                lsn.to_bytes(16, "little"),
                Path("00000000000000000001.wal"),
                40 + 64 * i,
            )
        )
    return out


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StoreDb]:
    store_db = StoreDb(tmp_path / "db")
    yield store_db
    store_db.close()


def test_every_key_family_is_written(db: StoreDb) -> None:
    a = assertion(1, subject="cats", signers=[1])
    ha = record_hash(a)
    v = vote(ha, 7)
    hv = record_hash(v)
    e = epoch(3)
    he = record_hash(e)
    # Views off (policy=None): this test pins the record key families; tests/lattice has the rest.
    outcome = ApplyEngine(db, policy=None).apply(wal_records([a, v, e]))
    assert outcome.failure is None
    assert outcome.checkpoint == Checkpoint(3, (3).to_bytes(16, "little"))
    assert dict(outcome.records_by_kind) == {"assertion": 1, "vote": 1, "epoch": 1}
    dump = dict(db.dump())
    assert dump == {
        b"H:" + ha.hex().encode(): a.SerializeToString(),
        b"V:" + hv.hex().encode(): v.SerializeToString(),
        b"E:" + he.hex().encode(): e.SerializeToString(),
        b"S:cats\x00" + ha.hex().encode(): ha,
        b"VA:" + ha.hex().encode() + b":" + hv.hex().encode(): hv,
    }
    # The checkpoint lives in its own column family, out of every user scan.
    assert db.read_checkpoint().lsn == 3
    assert not any(b"checkpoint" in k or b"schema" in k for k in dump)
    assert len(db.scan(b"", b"", 1000).entries) == 5


def test_reapplying_a_range_changes_nothing(db: StoreDb, seed: int) -> None:
    records = wal_records(mixed_records(3000, seed))
    engine = ApplyEngine(db)
    engine.apply(records[:2000])
    once = db.dump()
    # A crash after the write but "before the checkpoint" is impossible (they are one batch);
    # replaying an already applied range must still be harmless.
    engine.apply(records[1000:2000])
    assert db.dump() == once
    engine.apply(records[2000:])
    assert db.read_checkpoint().lsn == 3000


def test_batch_boundaries_do_not_change_the_result(tmp_path: Path, seed: int) -> None:
    records = wal_records(mixed_records(3000, seed))
    one = StoreDb(tmp_path / "one")
    ApplyEngine(one).apply(records)
    many = StoreDb(tmp_path / "many")
    engine = ApplyEngine(many)
    rng = random.Random(seed)
    pos = 0
    while pos < len(records):
        step = rng.randrange(1, 400)
        engine.apply(records[pos : pos + step])
        pos += step
    assert one.dump() == many.dump()
    assert one.read_checkpoint() == many.read_checkpoint()
    one.close()
    many.close()


def test_cosignatures_merge_across_and_within_batches(db: StoreDb) -> None:
    # Views off: with them on, a re-append moves the `recent` lens (docs/lattice.md).
    engine = ApplyEngine(db, policy=None)
    first = assertion(5, signers=[1])
    key = b"H:" + record_hash(first).hex().encode()
    engine.apply(wal_records([first]))
    # In one batch: the same assertion again with {1, 2}, then with {3}, then unchanged.
    engine.apply(
        wal_records(
            [assertion(5, signers=[1, 2]), assertion(5, signers=[3]), assertion(5, signers=[2])],
            first_lsn=2,
        )
    )
    stored = pb.Record.FromString(db.get(key) or b"")
    assert list(stored.assertion.signatures) == [sig(1), sig(2), sig(3)]
    assert len([k for k, _ in db.dump() if k.startswith(b"S:")]) == 1
    before = db.dump()
    engine.apply(wal_records([assertion(5, signers=[3, 1])], first_lsn=5))
    assert db.dump() == before


def test_undecodable_record_applies_the_records_before_it(db: StoreDb) -> None:
    records = wal_records([assertion(1), assertion(2), assertion(3)])
    bad = records[1]
    records[1] = WalRecord(
        bad.lsn, 1, bad.timestamp_ns, b"\x01" * 40, bad.checksum, bad.segment, bad.offset
    )
    outcome = ApplyEngine(db, policy=None).apply(records)
    assert outcome.failure is not None
    assert outcome.failure.lsn == 2
    assert "decode" in outcome.failure.reason
    assert db.read_checkpoint().lsn == 1
    assert len(db.dump()) == 2  # H: and S: of the first record


def test_vote_with_a_short_assertion_hash_is_undecodable(db: StoreDb) -> None:
    bad = vote(b"\x01" * 5, 1)
    payload = encode_payload(bytes(32), bad.SerializeToString())
    record = WalRecord(1, 2, 0, payload, bytes(16), Path("x.wal"), 40)
    outcome = ApplyEngine(db).apply([record])
    assert outcome.failure is not None and "assertion_hash" in outcome.failure.reason
    assert db.dump() == []


def test_schema_version_is_checked(tmp_path: Path) -> None:
    import rocksdict

    StoreDb(tmp_path / "db").close()
    opts = rocksdict.Options(raw_mode=True)
    raw = rocksdict.Rdict(
        str(tmp_path / "db"), opts, column_families={INTERNAL_CF: rocksdict.Options(raw_mode=True)}
    )
    internal = raw.get_column_family(INTERNAL_CF)
    internal[b"schema_version"] = b"99"
    internal.close()
    raw.close()
    del internal, raw
    with pytest.raises(SchemaMismatch):
        StoreDb(tmp_path / "db")


def test_scan_pages_cover_the_prefix_exactly_once(db: StoreDb) -> None:
    keys = [b"S:x\x00%03d" % i for i in range(25)]
    db.write([(k, b"v") for k in [*keys, b"S:w", b"S:y", b"T"]], Checkpoint(1, bytes(16)))
    seen: list[bytes] = []
    start = b"S:x\x00"
    while True:
        page = db.scan(b"S:x\x00", start, 7)
        seen.extend(k for k, _ in page.entries)
        if page.next_key is None:
            break
        start = page.next_key
    assert seen == keys


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound(b"S:") == b"S;"
    assert prefix_upper_bound(b"a\xff\xff") == b"b"
    assert prefix_upper_bound(b"\xff") is None
    assert prefix_upper_bound(b"") is None


def test_page_size_and_tokens() -> None:
    assert page_size_of(0) == 100
    assert page_size_of(5) == 5
    assert page_size_of(5000) == 1000
    with pytest.raises(InvalidRequest):
        page_size_of(-1)
    token = encode_page_token(b"scan", b"H:", b"H:abc")
    assert decode_page_token(token, b"scan", b"H:") == b"H:abc"
    assert decode_page_token("", b"scan", b"H:") == b"H:"
    for bad_scope, bad_prefix in ((b"scan", b"V:"), (b"votes", b"H:")):
        with pytest.raises(InvalidRequest, match="different prefix"):
            decode_page_token(token, bad_scope, bad_prefix)
    for junk in ("!!!", "AA", "x" * 9000, encode_page_token(b"scan", b"H:", b"H:")[:-3] + "***"):
        with pytest.raises(InvalidRequest):
            decode_page_token(junk, b"scan", b"H:")


def test_store_reads(db: StoreDb) -> None:
    a = assertion(1, subject="dogs")
    ha = record_hash(a)
    v = vote(ha, 2)
    ApplyEngine(db).apply(wal_records([a, v]))
    store = Store(db, ApplyState(2, bytes(16)))
    got = store.get(b"H:" + ha.hex().encode())
    assert got.found and got.applied_lsn == 2 and got.record == a
    index = store.get(b"S:dogs\x00" + ha.hex().encode())
    assert index.found and index.value == ha and not index.HasField("record")
    assert not store.get(b"H:00").found
    with pytest.raises(InvalidRequest):
        store.get(b"")
    assert store.get_assertion(ha).assertion == a.assertion
    listed = store.list_assertions_by_subject("dogs", 0, "")
    assert [x.hash for x in listed.assertions] == [ha] and not listed.next_page_token
    votes = store.list_votes(ha, 0, "")
    assert [x.vote for x in votes.votes] == [v.vote]
    with pytest.raises(InvalidRequest):
        store.list_votes(b"short", 0, "")
    with pytest.raises(InvalidRequest):
        store.list_assertions_by_subject("a\x00b", 0, "")
