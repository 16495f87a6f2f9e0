"""A revolution over many slots settles over bounded batches, and every answer is already the
eager one (DESIGN 9.3): in process, on a real RocksDB, against the oracle."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from stemedb.canonical import record_hash
from stemedb.ingestor import ApplyEngine, ApplyState, StoreDb, _lattice
from stemedb.ingestor._keys import Checkpoint
from stemedb.ingestor._lattice import SETTLE_SLOTS_PER_BATCH_MAX
from stemedb.ingestor._oracle import Oracle
from stemedb.ingestor._policy import DEFAULT_POLICY, TrustPolicy, load_policy
from stemedb.ingestor._query import Query, ViewsState, _SnapshotView
from stemedb.v1 import query_pb2
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalReader, WalRecord
from stemedb.walrecord import decode_payload
from tests.lattice.lattice_testlib import AGENTS, make_assertion, make_epoch, make_vote, wal_records
from tests.lattice.stack import Lab, hash_of, signed_epoch, write_policy
from tests.support import Service, scan_all, start_ingestor, start_writer, wait_until

SLOTS = 160
SEED = int(os.environ.get("STEMEDB_TEST_SEED", "12"))
# What one batch may write while settling: the batch's own records' keys (a few per record)
# plus, per settled slot, its view, a history entry and its RS: mark; an eager rewrite of the
# revolution writes two keys per slot (>= 320 here) in the epoch's batch.
RECORDS_PER_BATCH = 4
KEYS_PER_BATCH_MAX = 3 * SETTLE_SLOTS_PER_BATCH_MAX + 12 * RECORDS_PER_BATCH


def _log(rng: random.Random) -> list[pb.Record]:
    """Slots holding assertions of epoch F (and some of no epoch), then a revolution of F by a
    trusted signer, then votes and new assertions, some in slots not settled yet."""
    f = make_epoch("F", signers=[AGENTS[0]])
    records = [f]
    assertions: list[pb.Record] = []
    for i in range(SLOTS):
        a = make_assertion(f"s{i}", "p", f"old{i}", 0.9, [AGENTS[i % 3]], record_hash(f))
        assertions.append(a)
        records.append(a)
        if i % 3 == 0:
            b = make_assertion(f"s{i}", "p", f"plain{i}", 0.4, [AGENTS[3]])
            assertions.append(b)
            records.append(b)
    records.append(make_epoch("E", record_hash(f), pb.SUPERSESSION_TYPE_REVOLUTION, [AGENTS[1]]))
    for i in range(60):
        if i % 4 == 0:
            slot = rng.randrange(SLOTS)
            records.append(make_assertion(f"s{slot}", "p", f"new{i}", 0.7, [AGENTS[4]]))
        else:
            target = record_hash(rng.choice(assertions))
            records.append(make_vote(target, rng.choice(AGENTS), rng.choice([1.0, -1.0]), i + 1))
    return records


VIEW_PREFIXES = (b"MV:", b"MH:", b"TA:", b"SC:", b"LS:")


def _views(db: StoreDb) -> list[tuple[bytes, bytes]]:
    return [kv for kv in db.dump() if kv[0].startswith(VIEW_PREFIXES)]


def _one_batch_views(
    path: Path, wal: list[WalRecord], policy: TrustPolicy
) -> list[tuple[bytes, bytes]]:
    """The views, history, tallies and stats of the log applied in one batch, settled."""
    one = StoreDb(path)
    try:
        engine = ApplyEngine(one, policy)
        engine.apply(wal)
        while engine.settling:
            engine.settle()
        return _views(one)
    finally:
        one.close()


class _CountingDb(StoreDb):
    """A StoreDb that remembers how many keys each WriteBatch held."""

    batch_keys: list[int]

    def write(
        self,
        puts: Iterable[tuple[bytes, bytes]],
        checkpoint: Checkpoint,
        deletes: Iterable[bytes] = (),
        internal_puts: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        items = list(puts)
        self.batch_keys.append(len(items))
        super().write(items, checkpoint, deletes, internal_puts)


def _check(db: StoreDb, log: list[tuple[int, pb.Record]], policy: TrustPolicy, lsn: int,
           rng: random.Random) -> None:  # fmt: skip
    """Resolve now (and as of an earlier LSN) equals the oracle on the log up to that LSN."""
    query = Query(db, ApplyState(lsn, b""), policy, ViewsState())
    for as_of in sorted({lsn, rng.randrange(SLOTS, lsn + 1)}):
        oracle = Oracle.of(log[:as_of], policy)
        for slot in rng.sample(range(SLOTS), 40):
            for lens in ("consensus", "skeptic", "recent"):
                want = oracle.resolve(f"s{slot}", "p", lens)
                want.as_of_lsn = as_of
                got = query.resolve(f"s{slot}", "p", lens, 0 if as_of == lsn else as_of)
                assert got.resolution == want, (slot, lens, lsn, as_of)


@pytest.fixture(autouse=True)
def _slot_bound_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches settle by the slot bound alone (not by CPU time): the same batches every run."""
    monkeypatch.setattr(_lattice, "SETTLE_SECONDS_PER_BATCH_MAX", 3600.0)


def test_a_revolution_settles_over_bounded_batches_with_exact_answers(tmp_path: Path) -> None:
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    policy = TrustPolicy()
    records = _log(rng)
    wal = wal_records(records)
    log = [(r.lsn, rec) for r, rec in zip(wal, records, strict=True)]
    epoch_lsn = next(r.lsn for r, rec in zip(wal, records, strict=True) if rec.epoch.supersedes)
    db = _CountingDb(tmp_path / "db")
    db.batch_keys = []
    try:
        engine = ApplyEngine(db, policy)
        engine.apply(wal[: epoch_lsn - 1])  # the slots, in one batch
        db.batch_keys.clear()
        pos = epoch_lsn - 1
        checks = batches = 0
        while pos < len(wal):
            engine.apply(wal[pos : pos + RECORDS_PER_BATCH])
            pos += RECORDS_PER_BATCH
            batches += 1
            if engine.settling and checks < 6:
                checks += 1
                _check(db, log, policy, min(pos, len(wal)), rng)
        assert checks >= 3, "the revolution settled too fast to be checked while settling"
        while engine.settling:  # the rest settles in batches without records
            engine.settle()
        _check(db, log, policy, len(wal), rng)
        assert max(db.batch_keys) <= KEYS_PER_BATCH_MAX, db.batch_keys
        # Settled, the views and history are those of a database built in one batch.
        assert _views(db) == _one_batch_views(tmp_path / "one", wal, policy)
    finally:
        db.close()


def _two_revolutions(rng: random.Random) -> tuple[list[pb.Record], int]:
    """60 slots holding assertions of F, of G and of no epoch; E1 retiring F and E2 retiring
    G (at LSNs first and first + 1), then votes; returns the records and first."""
    f, g = make_epoch("F", signers=[AGENTS[0]]), make_epoch("G", signers=[AGENTS[0]])
    records = [f, g]
    hashes = []
    for i in range(60):
        for text, epoch, conf in (("f", f, 0.9), ("g", g, 0.6), ("x", None, 0.3)):
            a = make_assertion(f"s{i}", "p", f"{text}{i}", conf, [AGENTS[1]],
                               record_hash(epoch) if epoch else b"")  # fmt: skip
            records.append(a)
            hashes.append(record_hash(a))
    first = len(records) + 1
    kind = pb.SUPERSESSION_TYPE_REVOLUTION
    records += [make_epoch("E1", record_hash(f), kind, [AGENTS[2]]),
                make_epoch("E2", record_hash(g), kind, [AGENTS[2]])]  # fmt: skip
    records += [make_vote(rng.choice(hashes), AGENTS[3], 1.0, i + 1) for i in range(15)]
    return records, first


def test_two_revolutions_settling_in_one_slot_keep_each_lsn_exact(tmp_path: Path) -> None:
    """Slots hold assertions of F, of G and of no epoch; E1 retires F, E2 retires G, in one
    batch; each slot's retirements then settle one by one at their own LSNs."""
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    policy = TrustPolicy()
    records, first = _two_revolutions(rng)
    wal = wal_records(records)
    log = [(r.lsn, rec) for r, rec in zip(wal, records, strict=True)]
    db = StoreDb(tmp_path / "db")
    try:
        engine = ApplyEngine(db, policy)
        engine.apply(wal[: first - 1])
        engine.apply(wal[first - 1 : first + 1])  # both epochs in one batch
        assert engine.settling
        pos = first + 1
        while pos < len(wal) or engine.settling:
            if engine.settling:
                query = Query(db, ApplyState(pos, b""), policy, ViewsState())
                for as_of in (first - 1, first, first + 1, pos):
                    oracle = Oracle.of(log[:as_of], policy)
                    for slot in rng.sample(range(60), 8):
                        want = oracle.resolve(f"s{slot}", "p", "consensus")
                        want.as_of_lsn = as_of
                        got = query.resolve(f"s{slot}", "p", "consensus", as_of)
                        assert got.resolution == want, (slot, as_of, pos)
            if pos < len(wal):
                engine.apply(wal[pos : pos + 3])
                pos += 3
            else:
                engine.settle()
        assert _views(db) == _one_batch_views(tmp_path / "one", wal, policy)
    finally:
        db.close()


def _history(query: Query, subject: str, lens: str, page_size: int) -> list[query_pb2.HistoryEntry]:
    """Every ListHistory entry of the slot (subject, "p"), page by page."""
    entries: list[query_pb2.HistoryEntry] = []
    token = ""
    for _ in range(1000):
        page = query.list_history(subject, "p", lens, page_size, token)
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            return entries
    raise AssertionError("ListHistory pages never ended")


def test_list_history_while_settling_shows_the_retirements_at_their_lsns(tmp_path: Path) -> None:
    """While E1 and E2 settle, ListHistory of every slot, settled or not, pages through the
    entries an eager rewrite wrote up to the LSN asked about: those of the fully settled
    database built in one batch (the old code left out the retirement entries of unsettled
    slots)."""
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    policy = TrustPolicy()
    records, first = _two_revolutions(rng)
    wal = wal_records(records)
    one = StoreDb(tmp_path / "one")
    db = StoreDb(tmp_path / "db")
    try:
        reference = ApplyEngine(one, policy)
        reference.apply(wal)
        while reference.settling:
            reference.settle()
        settled = Query(one, ApplyState(len(wal), b""), policy, ViewsState())
        engine = ApplyEngine(db, policy)
        engine.apply(wal[: first - 1])
        engine.apply(wal[first - 1 : first + 1])  # both epochs in one batch
        pos, checks = first + 1, 0
        while pos < len(wal) or engine.settling:
            if engine.settling:
                checks += 1
                query = Query(db, ApplyState(pos, b""), policy, ViewsState())
                for slot in rng.sample(range(60), 12):
                    for lens in ("consensus", "skeptic", "recent"):
                        want = [e for e in _history(settled, f"s{slot}", lens, 100)
                                if e.lsn <= pos]  # fmt: skip
                        page_size = rng.choice([1, 2, 100])
                        got = _history(query, f"s{slot}", lens, page_size)
                        assert got == want, (slot, lens, pos, page_size)
                        assert any(e.lsn in (first, first + 1) for e in want) or lens != (
                            "consensus"
                        ), "the retirements changed no consensus winner: the check is void"
            if pos < len(wal):
                engine.apply(wal[pos : pos + 3])
                pos += 3
            else:
                engine.settle()
        assert checks >= 3, "the revolutions settled too fast to be checked while settling"
    finally:
        db.close()
        one.close()


KILLED_SLOTS = int(os.environ.get("STEMEDB_SETTLE_KILL_SLOTS", "1200"))
KILLS = 3
SETTLED_QUEUE = bytes(12)  # LQ:settle once empty


def _unsigned(subject: str, i: int, epoch: bytes) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject, predicate="p", object=pb.Value(number=float(i)),
            confidence=0.5, source_hash=bytes(32), epoch=epoch,
        )
    )  # fmt: skip


def _queue(target: str, lsn: int) -> bytes | None:
    found = dict(scan_all(target, b"LQ:", min_lsn=lsn))
    return found.get(b"LQ:settle")


@pytest.mark.slow
def test_sigkills_while_a_revolution_settles(tmp_path: Path) -> None:
    print(f"seed={SEED}")
    rng = random.Random(SEED)
    wal = tmp_path / "wal"
    policy_path = write_policy(tmp_path / "policy.json")
    flags = ("--trust-policy", str(policy_path))
    writer = start_writer(wal, log_dir=tmp_path)
    ingestor: Service | None = None
    lab: Lab | None = None
    try:
        writer.wait_ready()
        ingestor = start_ingestor(wal, tmp_path / "db", *flags, log_dir=tmp_path)
        ingestor.wait_ready()
        lab = Lab(writer, ingestor, wal)
        f = signed_epoch("F", signers=["A"])
        lab.append(f)
        subjects = [f"k{i}" for i in range(KILLED_SLOTS)]
        for start in range(0, KILLED_SLOTS, 500):
            lab.append(
                *(_unsigned(s, i, hash_of(f)) for i, s in enumerate(subjects[start : start + 500]))
            )
        lab.append(*(_unsigned(s, -1, b"") for s in subjects[:50]))  # survivors in some slots
        lab.resolve(subjects[-1], "p", min_lsn=lab.last_lsn)
        epoch_lsn = lab.append(
            signed_epoch("E", hash_of(f), pb.SUPERSESSION_TYPE_REVOLUTION, ["B"])
        )[0]
        records = []
        with WalReader(wal) as reader:
            while chunk := reader.read_available(1000):
                records += [(r.lsn, decode_payload(r.record_type, r.payload).record) for r in chunk]
        oracle = Oracle.of(records, load_policy(policy_path))
        killed_while_settling = 0
        for k in range(KILLS):
            if k:
                time.sleep(rng.uniform(0.0, 0.2))  # a random moment of the settling, not a wait
            # Seen pending just before the kill (the first kill comes as soon as the epoch is
            # applied, while its 1,200 slots still settle): the kill lands in the settling.
            queue = _queue(ingestor.listen, epoch_lsn)
            killed_while_settling += queue is not None and queue != SETTLED_QUEUE
            ingestor.kill()
            ingestor = start_ingestor(wal, tmp_path / "db", *flags, log_dir=tmp_path)
            ingestor.wait_ready()
            lab.ingestor = ingestor
            # Settled or not, every answer is the eager one: retired slots are EMPTY at once.
            for subject in rng.sample(subjects, 20):
                for lens in ("consensus", "recent"):
                    got = lab.resolve(subject, "p", lens, min_lsn=epoch_lsn)
                    want = oracle.resolve(subject, "p", lens)
                    want.as_of_lsn = got.as_of_lsn
                    assert got == want, (subject, lens)
        print(f"kills={KILLS} while settling={killed_while_settling}")
        assert killed_while_settling >= 1, "the revolution settled before any kill"
        wait_until(lambda: _queue(ingestor.listen, epoch_lsn) == SETTLED_QUEUE, 120, "settling")
        stored = {
            k: v
            for prefix in (b"MV:", b"MH:", b"TA:", b"SC:", b"LS:")
            for k, v in scan_all(ingestor.listen, prefix, min_lsn=epoch_lsn)
        }
        rebuilt = StoreDb(tmp_path / "rebuilt")
        try:
            engine = ApplyEngine(rebuilt, load_policy(policy_path))
            with WalReader(wal) as reader:
                while chunk := reader.read_available(700):
                    engine.apply(chunk)
            while engine.settling:
                engine.settle()
            want_keys = {
                k: v
                for k, v in rebuilt.dump()
                if k.startswith((b"MV:", b"MH:", b"TA:", b"SC:", b"LS:"))
            }
        finally:
            rebuilt.close()
        assert stored == want_keys
    finally:
        if lab is not None:
            lab.close()
        for service in (ingestor, writer):
            if service is not None:
                service.kill()


def test_resolve_racing_the_settling_answers_the_settled_view(tmp_path: Path) -> None:
    """Resolve reads the view and LQ:settle first, then (something pending) takes a snapshot.
    When the slot settles between the two, the snapshot shows it settled (its RS: mark): the
    answer must be the snapshot's view, not the view read before (which predates the
    retirement). Replayed deterministically: the first read, then the settling, then the rest."""
    f = make_epoch("F", signers=[AGENTS[0]])
    records = [f]
    slots = 3 * SETTLE_SLOTS_PER_BATCH_MAX
    for i in range(slots):
        records.append(make_assertion(f"r{i}", "p", f"old{i}", 0.9, [AGENTS[0]], record_hash(f)))
    records.append(make_epoch("E", record_hash(f), pb.SUPERSESSION_TYPE_REVOLUTION, [AGENTS[1]]))
    policy = DEFAULT_POLICY
    db = StoreDb(tmp_path / "db")
    try:
        engine = ApplyEngine(db, policy)
        log = wal_records(records)
        engine.apply(log[:-1])
        engine.apply(log[-1:])  # the revolution alone: it settles 32 slots, queues the rest
        assert engine.settling, "the revolution settled in its own batch: nothing to race"
        query = Query(db, ApplyState(len(records), b""), policy, ViewsState())
        oracle = Oracle.of(list(enumerate(records, start=1)), policy)
        pending = [
            i
            for i in range(slots)
            if db.get(_lattice.SETTLED_PREFIX + _lattice.slot_key(f"r{i}", "p")) is None
        ]
        subject = f"r{pending[-1]}"
        slot = _lattice.slot_key(subject, "p")
        queue, stale_view = db.multi_get([_lattice.SETTLE_KEY, _lattice.view_key(slot)])
        while engine.settling:
            engine.settle()
        settled_view = db.get(_lattice.view_key(slot))
        assert settled_view != stale_view
        got = query._settling(subject, "p", 0, 0, queue)
        assert got == _SnapshotView(settled_view)  # old code: None (the stale view answered)
        want = oracle.resolve(subject, "p", "consensus")
        answer = query.resolve(subject, "p", "consensus", 0).resolution
        want.as_of_lsn = answer.as_of_lsn
        assert answer == want and answer.status == query_pb2.STATUS_EMPTY
    finally:
        db.close()
