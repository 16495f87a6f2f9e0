"""The ingestor as a real process: reads of every key family, paging, read-your-writes,
halting on corruption and divergence, metrics, shutdown, and crash-torture with SIGKILL."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from ingestor_testlib import (
    NOT_SERVING,
    SERVING,
    Ingestor,
    assertion,
    epoch,
    mixed_records,
    running,
    sig,
    vote,
    wal_entry,
    write_wal,
)

from stemedb.canonical import record_hash
from stemedb.ingestor import StoreDb
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2
from stemedb.wal import SyncMode, Wal, WalConfig, WalReader, read_consumer_checkpoints
from tests.support import scan_all, wait_until


def hexkey(prefix: bytes, h: bytes) -> bytes:
    return prefix + h.hex().encode()


def test_every_key_family_comes_back(tmp_path: Path) -> None:
    a = assertion(1, subject="whales", signers=[1])
    ha = record_hash(a)
    v = vote(ha, 9)
    hv = record_hash(v)
    e = epoch(1)
    he = record_hash(e)
    last = write_wal(tmp_path / "wal", [a, v, e, assertion(1, subject="whales", signers=[2])])
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        store = ing.store
        ing.wait_applied(last)
        for key, record in (
            (hexkey(b"H:", ha), None),
            (hexkey(b"V:", hv), v),
            (hexkey(b"E:", he), e),
        ):
            reply = store.Get(store_pb2.GetRequest(key=key), timeout=5)
            assert reply.found and reply.HasField("record") and reply.applied_lsn == last
            if record is not None:
                assert reply.record == record and reply.value == record.SerializeToString()
        merged = store.Get(store_pb2.GetRequest(key=hexkey(b"H:", ha)), timeout=5).record
        assert list(merged.assertion.signatures) == [sig(1), sig(2)]
        for key, value in (
            (b"S:whales\x00" + ha.hex().encode(), ha),
            (b"VA:" + ha.hex().encode() + b":" + hv.hex().encode(), hv),
        ):
            reply = store.Get(store_pb2.GetRequest(key=key), timeout=5)
            assert reply.found and reply.value == value and not reply.HasField("record")
        missing = store.Get(store_pb2.GetRequest(key=b"H:" + b"0" * 64), timeout=5)
        assert not missing.found and missing.applied_lsn == last
        got = store.GetAssertion(store_pb2.GetAssertionRequest(hash=ha), timeout=5)
        assert got.found and got.assertion == merged.assertion
        listed = store.ListAssertionsBySubject(
            store_pb2.ListAssertionsBySubjectRequest(subject="whales"), timeout=5
        )
        assert [x.hash for x in listed.assertions] == [ha]
        votes = store.ListVotes(store_pb2.ListVotesRequest(assertion_hash=ha), timeout=5)
        assert [x.hash for x in votes.votes] == [hv] and votes.applied_lsn == last
        everything = scan_all(store)
        assert sorted(k[:2] for k, _ in everything) == [b"E:", b"H:", b"S:", b"V:", b"VA"]


def test_invalid_requests(tmp_path: Path) -> None:
    write_wal(tmp_path / "wal", [assertion(i) for i in range(3)])
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        store = ing.store
        page = store.ScanPrefix(store_pb2.ScanPrefixRequest(prefix=b"H:", page_size=1), timeout=5)
        assert page.next_page_token
        bad = [
            lambda: store.ScanPrefix(store_pb2.ScanPrefixRequest(page_size=-1), timeout=5),
            lambda: store.ScanPrefix(
                store_pb2.ScanPrefixRequest(prefix=b"S:", page_token=page.next_page_token),
                timeout=5,
            ),
            lambda: store.ScanPrefix(store_pb2.ScanPrefixRequest(page_token="%%%"), timeout=5),
            lambda: store.Get(store_pb2.GetRequest(key=b""), timeout=5),
            lambda: store.GetAssertion(store_pb2.GetAssertionRequest(hash=b"x"), timeout=5),
            lambda: store.ListVotes(store_pb2.ListVotesRequest(assertion_hash=b"x"), timeout=5),
        ]
        for call in bad:
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_paging_over_ten_thousand_keys(tmp_path: Path) -> None:
    records = [assertion(i, subject="crowded") for i in range(10_000)]
    last = write_wal(tmp_path / "wal", records)
    expected = sorted(b"S:crowded\x00" + record_hash(r).hex().encode() for r in records)
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_applied(last)
        for page_size in (0, 1000, 333):
            keys = [k for k, _ in scan_all(ing.store, b"S:crowded\x00", page_size=page_size)]
            assert keys == expected  # each key exactly once, in order
        seen: list[bytes] = []
        token = ""
        while True:
            reply = ing.store.ListAssertionsBySubject(
                store_pb2.ListAssertionsBySubjectRequest(
                    subject="crowded", page_size=1000, page_token=token
                ),
                timeout=10,
            )
            assert len(reply.assertions) <= 1000
            seen.extend(x.hash for x in reply.assertions)
            token = reply.next_page_token
            if not token:
                break
        assert [b"S:crowded\x00" + h.hex().encode() for h in seen] == expected


def test_pages_of_large_records_stay_under_the_byte_budget(tmp_path: Path) -> None:
    budget = 1024 * 1024
    big = [
        pb.Record(
            assertion=pb.Assertion(
                subject="large",
                predicate="p",
                object=pb.Value(text=f"{i:05d}" + "x" * 60_000),
                confidence=0.5,
                source_hash=bytes(32),
            )
        )
        for i in range(300)
    ]
    content_hash = record_hash(big[0])
    votes = [vote(content_hash, i) for i in range(50)]
    last = write_wal(tmp_path / "wal", big + votes)
    extra = ["--read-page-bytes-max", str(budget)]
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log", extra=extra)) as ing:
        ing.wait_applied(last)
        store = ing.store
        keys: list[bytes] = []
        token = ""
        pages = 0
        while True:
            reply = store.ScanPrefix(
                store_pb2.ScanPrefixRequest(prefix=b"H:", page_size=1000, page_token=token),
                timeout=30,
            )
            page_bytes = sum(len(e.key) + len(e.value) for e in reply.entries)
            assert 0 < page_bytes <= budget, page_bytes  # a short page, never over the budget
            keys.extend(e.key for e in reply.entries)
            pages += 1
            token = reply.next_page_token
            if not token:
                break
        assert sorted(keys) == keys and len(set(keys)) == len(big)  # everything exactly once
        assert keys == sorted(hexkey(b"H:", record_hash(r)) for r in big)
        assert pages >= len(big) * 60_000 // budget
        listed: list[bytes] = []
        token = ""
        while True:
            got = store.ListAssertionsBySubject(
                store_pb2.ListAssertionsBySubjectRequest(
                    subject="large", page_size=1000, page_token=token
                ),
                timeout=30,
            )
            assert 0 < sum(a.ByteSize() for a in got.assertions) <= budget
            listed.extend(a.hash for a in got.assertions)
            token = got.next_page_token
            if not token:
                break
        assert sorted(listed) == sorted(record_hash(r) for r in big) and len(listed) == len(big)
        # Small records are not cut: one page holds all 50 votes.
        few = store.ListVotes(
            store_pb2.ListVotesRequest(assertion_hash=content_hash, page_size=1000), timeout=30
        )
        assert len(few.votes) == 50 and not few.next_page_token


def test_min_lsn_read_your_writes_and_deadline(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    wal = Wal.open(WalConfig(dir=wal_dir))
    try:
        wal.append([wal_entry(assertion(i)) for i in range(10)])
        with running(Ingestor(wal_dir, tmp_path / "db", tmp_path / "log")) as ing:
            store = ing.store
            with pytest.raises(grpc.RpcError) as err:
                store.Get(store_pb2.GetRequest(key=b"x", min_lsn=11), timeout=0.3)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            new = assertion(1234, subject="fresh")
            key = hexkey(b"H:", record_hash(new))
            replies: list[store_pb2.GetResponse] = []
            waiting = threading.Thread(
                target=lambda: replies.append(
                    store.Get(store_pb2.GetRequest(key=key, min_lsn=11), timeout=20)
                )
            )
            waiting.start()
            wait_until(  # the read is parked on the server before the record exists
                lambda: "stemedb_ingestor_min_lsn_waiters 1.0" in ing.metrics_text(),
                20,
                "the read parked on min_lsn",
            )
            assert not replies
            (lsn,) = wal.append([wal_entry(new)])
            assert lsn == 11
            waiting.join(20)
            assert replies and replies[0].found and replies[0].applied_lsn >= 11
            # Read-your-writes for every read kind.
            (lsn,) = wal.append([wal_entry(vote(record_hash(new), 1))])
            votes = store.ListVotes(
                store_pb2.ListVotesRequest(assertion_hash=record_hash(new), min_lsn=lsn), timeout=10
            )
            assert len(votes.votes) == 1
    finally:
        wal.close()


def test_min_lsn_waits_are_capped_and_bounded(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", [assertion(i) for i in range(3)])
    extra = ["--min-lsn-wait-seconds-max", "0.5", "--min-lsn-waiters-max", "2"]
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log", extra=extra)) as ing:
        ing.wait_applied(last)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            ing.store.Get(store_pb2.GetRequest(key=b"x", min_lsn=last + 1), timeout=120)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "min-lsn-wait-seconds-max" in (err.value.details() or "")
        assert time.monotonic() - started < 60  # the server's 0.5 s, not the client's 120 s
        request = store_pb2.GetRequest(key=b"x", min_lsn=last + 1)

        def third_refused() -> bool:
            """Park two waits (0.5 s each), then try a third while they last."""
            parked = [ing.store.Get.future(request, timeout=30) for _ in range(2)]
            try:
                ing.store.Get(request, timeout=30)
                refused = False
            except grpc.RpcError as exc:
                refused = exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            for future in parked:
                with pytest.raises(grpc.RpcError):
                    future.result()
            return refused

        wait_until(third_refused, 30, "a third min_lsn wait refused with RESOURCE_EXHAUSTED")


def flip_byte_of(wal_dir: Path, lsn: int, at: int = 40) -> None:
    with WalReader(wal_dir) as reader:
        record = reader.record_at(lsn)
    assert record is not None
    with open(record.segment, "r+b") as f:
        f.seek(record.offset + at)
        byte = f.read(1)
        f.seek(record.offset + at)
        f.write(bytes((byte[0] ^ 0x40,)))


def test_corrupt_record_halts_applying_but_not_reads(tmp_path: Path) -> None:
    records = [assertion(i) for i in range(1000)]
    write_wal(tmp_path / "wal", records)
    flip_byte_of(tmp_path / "wal", 600)
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_health("stemedb.ingest", NOT_SERVING)
        assert ing.health("") == SERVING
        assert ing.health("stemedb.v1.StoreService") == SERVING
        assert ing.health("stemedb.ready") == NOT_SERVING  # a halted replica leaves readiness
        reply = ing.store.Get(
            store_pb2.GetRequest(key=hexkey(b"H:", record_hash(records[598]))), timeout=5
        )
        assert reply.found and reply.applied_lsn == 599  # every record before the damage
        with pytest.raises(grpc.RpcError) as err:
            ing.store.Get(store_pb2.GetRequest(key=b"x", min_lsn=700), timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "checksum" in (err.value.details() or "")
        metrics = ing.metrics_text()
        assert "stemedb_ingestor_halted 1.0" in metrics
        assert 'stemedb_ingestor_halt_info{cause="corruption"} 1.0' in metrics
        halts = [json.loads(line) for line in ing.log().splitlines() if '"apply halted"' in line]
        assert len(halts) == 1
        assert halts[0]["lsn"] == 600 and halts[0]["offset"] > 0
        assert halts[0]["file"].endswith(".wal") and halts[0]["reason"]


def test_undecodable_record_halts(tmp_path: Path) -> None:
    wal = Wal.open(WalConfig(dir=tmp_path / "wal", sync_mode=SyncMode.NONE))
    wal.append([wal_entry(assertion(1)), (1, b"\x00" * 32 + b"\xff\xff"), wal_entry(epoch(1))])
    wal.close()
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_health("stemedb.ingest", NOT_SERVING)
        assert ing.wait_applied(1) == 1
        assert 'stemedb_ingestor_halt_info{cause="undecodable"} 1.0' in ing.metrics_text()


def test_record_with_unknown_fields_halts(tmp_path: Path) -> None:
    """Defence in depth: a WAL record carrying a field the schema does not know (written with
    the WAL API, bypassing the writer's check) is undecodable: nothing of it is stored."""
    good = assertion(1)
    smuggled = assertion(2, signers=[1])
    body = smuggled.SerializeToString() + b"\xa0\x06" + b"\x01"  # field 100, varint 1
    wal = Wal.open(WalConfig(dir=tmp_path / "wal", sync_mode=SyncMode.NONE))
    wal.append([wal_entry(good), (1, record_hash(smuggled) + body), wal_entry(epoch(1))])
    wal.close()
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_health("stemedb.ingest", NOT_SERVING)
        assert ing.health("") == SERVING and ing.health("stemedb.v1.StoreService") == SERVING
        assert ing.wait_applied(1) == 1
        smuggled_key = hexkey(b"H:", record_hash(smuggled))
        assert not ing.store.Get(store_pb2.GetRequest(key=smuggled_key), timeout=5).found
        with pytest.raises(grpc.RpcError) as err:
            ing.store.Get(store_pb2.GetRequest(key=b"x", min_lsn=2), timeout=5)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "unknown field 100" in (err.value.details() or "")
        assert 'stemedb_ingestor_halt_info{cause="undecodable"} 1.0' in ing.metrics_text()
        halts = [json.loads(line) for line in ing.log().splitlines() if '"apply halted"' in line]
        assert len(halts) == 1 and halts[0]["lsn"] == 2
        assert "record: unknown field 100" in halts[0]["reason"]


def test_thousands_of_cosigners(tmp_path: Path) -> None:
    """Re-appends with fresh co-signers apply fast and every read of the assertion works."""
    from stemedb.ingestor._keys import SIGNATURES_INLINE_MAX

    signers = 5000
    base = assertion(7, subject="popular", signers=[0])
    content_hash = record_hash(base)
    records = [base] + [assertion(7, subject="popular", signers=[n]) for n in range(signers)]
    last = write_wal(tmp_path / "wal", records)
    ing = Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")
    started = time.monotonic()
    with running(ing):
        assert ing.wait_applied(last) == last
        elapsed = time.monotonic() - started
        print(
            f"{signers} re-appends with a fresh co-signer each: process start to applied "
            f"in {elapsed:.2f} s"
        )
        assert elapsed < 30, elapsed  # the unbounded merge took minutes for this
        store = ing.store
        got = store.GetAssertion(store_pb2.GetAssertionRequest(hash=content_hash), timeout=5)
        assert got.found and got.more_signers
        assert len(got.assertion.signatures) == SIGNATURES_INLINE_MAX
        raw = store.Get(store_pb2.GetRequest(key=hexkey(b"H:", content_hash)), timeout=5)
        assert raw.found and raw.record.assertion.subject == "popular"
        assert len(raw.value) < 20_000  # the stored value stays bounded
        listed: list[bytes] = []
        token = ""
        while True:
            reply = store.ListSigners(
                store_pb2.ListSignersRequest(
                    assertion_hash=content_hash, page_size=700, page_token=token, min_lsn=last
                ),
                timeout=10,
            )
            assert 0 < len(reply.signatures) <= 700 and reply.applied_lsn == last
            listed.extend(s.public_key for s in reply.signatures)
            token = reply.next_page_token
            if not token:
                break
        assert len(listed) == signers and set(listed) == {sig(n).public_key for n in range(signers)}
        # The incremental database equals one rebuilt in a single pass over the same WAL.
        assert scan_all(store) == reference_dump(tmp_path / "wal", tmp_path)


def test_replica_whose_segments_are_gone_halts_and_leaves_readiness(tmp_path: Path) -> None:
    wal = Wal.open(
        WalConfig(dir=tmp_path / "wal", sync_mode=SyncMode.NONE, segment_size_bytes=16 * 1024)
    )
    for i in range(20):
        wal.append([wal_entry(assertion(i * 100 + j)) for j in range(100)])
    wal.close()
    segments = sorted((tmp_path / "wal").glob("*.wal"))
    assert len(segments) >= 2
    segments[0].unlink()  # as retention would, below a consumer that was away
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_health("stemedb.ingest", NOT_SERVING)
        assert ing.health("stemedb.ready") == NOT_SERVING
        assert ing.health("stemedb.v1.StoreService") == SERVING
        metrics = ing.metrics_text()
        assert 'stemedb_ingestor_halt_info{cause="wal"} 1.0' in metrics
        assert "stemedb_ingestor_ready 0.0" in metrics
        halts = [json.loads(line) for line in ing.log().splitlines() if '"apply halted"' in line]
        assert len(halts) == 1 and halts[0]["cause"] == "wal" and halts[0]["lsn"] == 1
        assert "LSN 1" in halts[0]["reason"]


def test_diverged_log_halts(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", [assertion(i) for i in range(50)])
    ing = Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")
    with running(ing):
        ing.wait_applied(last)
    shutil.rmtree(tmp_path / "wal")
    write_wal(tmp_path / "wal", [assertion(i + 1) for i in range(60)])  # another history
    with running(ing):
        ing.wait_health("stemedb.ingest", NOT_SERVING)
        assert 'stemedb_ingestor_halt_info{cause="diverged"} 1.0' in ing.metrics_text()
        assert ing.store.Get(store_pb2.GetRequest(key=b"x"), timeout=5).applied_lsn == 50
    assert "diverged" in ing.log()


def test_waits_for_the_wal_directory(tmp_path: Path) -> None:
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        assert ing.health("stemedb.ingest") == NOT_SERVING
        assert ing.health("stemedb.ready") == NOT_SERVING
        assert "stemedb_ingestor_ready 0.0" in ing.metrics_text()
        last = write_wal(tmp_path / "wal", [assertion(i) for i in range(5)])
        ing.wait_health("stemedb.ingest", SERVING)
        assert ing.wait_applied(last) == last
        ing.wait_health("stemedb.ready", SERVING)
        assert "stemedb_ingestor_ready 1.0" in ing.metrics_text()
    assert "waiting for the WAL directory" in ing.log()


def test_sigterm_exits_zero_and_publishes_the_checkpoint(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", [assertion(i) for i in range(100)])
    ing = Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log", name="replica-1").start()
    ing.wait_applied(last)
    # A read parked on min_lsn must not hold up the shutdown.
    parked = ing.store.Get.future(store_pb2.GetRequest(key=b"x", min_lsn=10**9), timeout=30)
    wait_until(
        lambda: "stemedb_ingestor_min_lsn_waiters 1.0" in ing.metrics_text(),
        20,
        "the read parked on min_lsn",
    )
    started = time.monotonic()
    assert ing.terminate(timeout=15) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(grpc.RpcError):
        parked.result()
    checkpoints = read_consumer_checkpoints(tmp_path / "wal")
    assert checkpoints["replica-1"].lsn == last
    assert '"ingestor stopped"' in ing.log()


def test_metrics_endpoint(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", mixed_records(500, 1))
    with running(Ingestor(tmp_path / "wal", tmp_path / "db", tmp_path / "log")) as ing:
        ing.wait_applied(last)
        ing.store.Get(store_pb2.GetRequest(key=b"x"), timeout=5)
        text = ing.metrics_text()
    for name in (
        "stemedb_ingestor_applied_lsn 500.0",
        "stemedb_ingestor_watermark_lsn 500.0",
        "stemedb_ingestor_lag_records 0.0",
        "stemedb_ingestor_lag_seconds 0.0",
        'stemedb_ingestor_records_applied_total{kind="assertion"}',
        "stemedb_ingestor_apply_batch_duration_seconds_bucket",
        "stemedb_ingestor_halted 0.0",
        "stemedb_ingestor_db_size_bytes",
        "grpc_server_started_total",
        'grpc_server_handled_total{grpc_code="OK",grpc_method="Get",'
        'grpc_service="stemedb.v1.StoreService",grpc_type="unary"} 2.0',
        "grpc_server_handling_seconds_bucket",
    ):
        assert name in text, name
    promtool = shutil.which("promtool")
    if promtool is None and os.environ.get("CI"):
        pytest.fail("promtool not found: `make promtool` installs it")
    if promtool is not None:
        check = subprocess.run(
            [promtool, "check", "metrics"], input=text.encode(), capture_output=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert not check.stdout.strip(), check.stdout


def reference_dump(wal_dir: Path, tmp_path: Path) -> list[tuple[bytes, bytes]]:
    """The DB built from scratch, in-process, in one pass over the same WAL."""
    from stemedb.ingestor import ApplyEngine

    db = StoreDb(tmp_path / "reference-db")
    engine = ApplyEngine(db)
    with WalReader(wal_dir) as reader:
        while records := reader.read_available(5000):
            engine.apply(records)
    dump = db.dump()
    db.close()
    return dump


def applied_lsn_of(ing: Ingestor) -> int:
    """The applied LSN from the metrics endpoint; 0 while it does not answer yet."""
    try:
        text = ing.metrics_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("stemedb_ingestor_applied_lsn "):
            return int(float(line.split()[1]))
    return 0


@pytest.mark.slow
def test_sigkill_while_applying_then_catch_up(tmp_path: Path, seed: int) -> None:
    wal_dir = tmp_path / "wal"
    records = mixed_records(100_000, seed)
    rng = random.Random(seed)
    ing = Ingestor(
        wal_dir, tmp_path / "db", tmp_path / "log", extra=["--apply-batch-records-max", "64"]
    )
    at_kill: list[int] = []
    wal = Wal.open(WalConfig(dir=wal_dir, sync_mode=SyncMode.NONE))
    try:
        wal.append([wal_entry(r) for r in records[:40_000]])
        for round_ in range(6):
            ing.start(wait=False)
            if round_ > 0 and rng.random() < 0.2:
                pass  # seeded: a kill during start-up
            else:  # seeded: anywhere in the apply, past a random LSN
                target = (at_kill[-1] if at_kill else 0) + rng.randrange(1, 8000)
                wait_until(
                    lambda t=target: applied_lsn_of(ing) >= t,  # type: ignore[misc]
                    60,
                    f"applied LSN {target}",
                    0.005,
                )
            ing.kill()
            db = StoreDb(tmp_path / "db")
            at_kill.append(db.read_checkpoint().lsn)
            db.close()
            # The log keeps growing while the ingestor is down, so it always has work.
            chunk = records[40_000 + 10_000 * round_ : 50_000 + 10_000 * round_]
            wal.append([wal_entry(r) for r in chunk])
        last = wal.durable_lsn
    finally:
        wal.close()
    print(f"applied LSN at each SIGKILL: {at_kill} of {last}")
    assert sum(1 for lsn in at_kill if lsn > 0) >= 3, at_kill  # most kills hit a running apply
    with running(ing):
        assert ing.wait_applied(last) == last
        crashed = scan_all(ing.store)
    replica = Ingestor(wal_dir, tmp_path / "db2", tmp_path / "log2", name="replica")
    with running(replica):
        replica.wait_applied(last)
        fresh = scan_all(replica.store)
    assert crashed == fresh  # two ingestors on one WAL agree
    assert crashed == reference_dump(wal_dir, tmp_path)  # and equal a from-scratch build
    stopped = StoreDb(tmp_path / "db")
    assert stopped.read_checkpoint().lsn == last
    stopped.close()
