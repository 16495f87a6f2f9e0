"""The verifiable log end to end, on real processes: the writer signs checkpoints, the ingestor
stores the tree and serves LogService, and the client verifier (stemedb.merkle) checks every
receipt and every pair of checkpoints, also after SIGKILLs and WAL retention, and catches a
record rewritten offline (docs/verifiable-log.md)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, merkle, note
from stemedb.merkle import oracle
from stemedb.v1 import log_pb2, log_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import writer_pb2 as wpb
from stemedb.wal import WalReader
from stemedb.wal._encoder import RECORD_MAGIC, encode_record
from stemedb.walrecord import decode_payload
from tests.support import start_ingestor, start_writer, wait_until
from tests.writer.records import assertion, epoch, vote


@dataclass(frozen=True)
class Acked:
    lsn: int
    content_hash: bytes
    tree_size: int


class _Load:
    """Appending threads that keep every acknowledged receipt; the target can move (restarts)."""

    def __init__(self, target: str, threads: int, seed: int) -> None:
        self.target = target
        self.acked: list[Acked] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(seed * 1000 + i,), daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        n = 0
        while not self._stop.is_set():
            target = self.target
            with grpc.insecure_channel(target) as channel:
                stub = writer_pb2_grpc.WriterServiceStub(channel)
                while not self._stop.is_set() and target == self.target:
                    req = wpb.AppendBatchRequest()
                    for _ in range(rng.randrange(1, 6)):
                        n += 1
                        kind = rng.randrange(3)
                        if kind == 0:
                            a = assertion(f"s{seed}-{n}", signers=rng.randrange(3))
                            req.records.add(assertion=a)
                        elif kind == 1:
                            req.records.add(vote=vote(rng.randbytes(32), rng.randrange(4)))
                        else:
                            req.records.add(epoch=epoch(f"e{seed}-{n % 7}", rng.randrange(1, 3)))
                    try:
                        resp = stub.AppendBatch(req, timeout=5)
                    except grpc.RpcError:
                        time.sleep(0.01)  # the writer is down; the outer loop reconnects
                        break
                    with self._lock:
                        self.acked.extend(Acked(r.lsn, r.hash, r.tree_size) for r in resp.receipts)

    def count(self) -> int:
        with self._lock:
            return len(self.acked)

    def stop(self) -> list[Acked]:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        return list(self.acked)


def _verifier(wal_dir: Path) -> note.Verifier:
    """The pinned key: read from the writer's side, never from the service answering proofs."""
    return note.Verifier.parse((wal_dir / "log.pub").read_text().strip())


def _checkpoint(stub: log_pb2_grpc.LogServiceStub) -> log_pb2.GetCheckpointResponse | None:
    try:
        resp: log_pb2.GetCheckpointResponse = stub.GetCheckpoint(
            log_pb2.GetCheckpointRequest(), timeout=5
        )
        return resp
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.FAILED_PRECONDITION):
            return None
        raise


def _size(text: str, verifier: note.Verifier) -> int:
    return note.open_checkpoint(text, verifier).tree_size


@contextmanager
def _log_stub(target: str) -> Iterator[log_pb2_grpc.LogServiceStub]:
    with grpc.insecure_channel(target) as channel:
        yield log_pb2_grpc.LogServiceStub(channel)


def _served_at_least(target: str, size: int, verifier: note.Verifier) -> str:
    """Wait until the ingestor serves a checkpoint of at least ``size``; return its text."""
    seen: list[str] = []

    def reached() -> bool:
        with _log_stub(target) as stub:
            resp = _checkpoint(stub)
        if resp is None or _size(resp.checkpoint, verifier) < size:
            return False
        seen.append(resp.checkpoint)
        return True

    wait_until(reached, 60, f"a served checkpoint of size >= {size}")
    return seen[-1]


def _check_receipts(
    target: str, acked: list[Acked], checkpoint: str, verifier: note.Verifier
) -> None:
    """Every receipt's inclusion proof verifies against ``checkpoint`` with the client code."""
    size = _size(checkpoint, verifier)
    with _log_stub(target) as stub:
        for r in acked:
            assert r.lsn <= r.tree_size, r
            resp = stub.GetInclusionProof(
                log_pb2.GetInclusionProofRequest(lsn=r.lsn, tree_size=size), timeout=10
            )
            merkle.check_record_inclusion(
                checkpoint, verifier, r.lsn, resp.record, list(resp.hashes), resp.tree_size
            )
            assert canonical.content_hash(canonical.record_bytes(resp.record)) == r.content_hash
            assert len(resp.hashes) <= max(1, (size - 1).bit_length())


def _check_consistent(target: str, checkpoints: list[str], verifier: note.Verifier) -> None:
    """Every checkpoint seen extends the one before it (sizes in the order they were seen)."""
    # RFC 9162 defines no proof from the empty tree (the writer signs it at a first start).
    nonempty = {t for t in checkpoints if _size(t, verifier) > 0}
    ordered = sorted(nonempty, key=lambda t: _size(t, verifier))
    with _log_stub(target) as stub:
        for older, newer in itertools.pairwise(ordered):
            resp = stub.GetConsistencyProof(
                log_pb2.GetConsistencyProofRequest(
                    first_size=_size(older, verifier), second_size=_size(newer, verifier)
                ),
                timeout=10,
            )
            merkle.check_consistency(older, newer, verifier, list(resp.hashes))


def _code(call: object, request: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)  # type: ignore[operator]
    code: grpc.StatusCode = info.value.code()
    return code


def _poll_checkpoints(target: str, out: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            with _log_stub(target) as stub:
                resp = _checkpoint(stub)
            if resp is not None:
                out.append(resp.checkpoint)
        except grpc.RpcError:
            pass
        stop.wait(0.05)


def test_every_receipt_proves_after_retention(tmp_path: Path) -> None:
    wal_dir, db_dir = tmp_path / "wal", tmp_path / "db"
    writer = start_writer(wal_dir, "--segment-size-bytes", "65536", "--retention")
    writer.wait_ready()
    ingestor = start_ingestor(wal_dir, db_dir, "--checkpoint-publish-seconds", "0.1")
    seen: list[str] = []
    stop_polling = threading.Event()
    try:
        ingestor.wait_ready()
        verifier = _verifier(wal_dir)
        poller = threading.Thread(
            target=_poll_checkpoints, args=(ingestor.listen, seen, stop_polling), daemon=True
        )
        poller.start()
        load = _Load(writer.listen, 3, seed=7)
        wait_until(lambda: load.count() >= 1500, 120, "1500 acknowledged records")
        acked = load.stop()
        # Retention deletes segments the ingestor applied: keep appending until LSN 1 is gone.
        more = _Load(writer.listen, 1, seed=8)
        wait_until(
            lambda: (first := WalReader(wal_dir).first_available_lsn()) is not None and first > 1,
            120, "retention to delete the first segment",
        )  # fmt: skip
        acked += more.stop()
        stop_polling.set()
        poller.join(10)
        last = _served_at_least(ingestor.listen, max(r.lsn for r in acked), verifier)
        seen.append(last)
        assert len({_size(t, verifier) for t in seen}) >= 3, "checkpoints advanced during load"
        _check_receipts(ingestor.listen, acked, last, verifier)
        _check_consistent(ingestor.listen, seen, verifier)

        size = _size(last, verifier)
        with _log_stub(ingestor.listen) as stub:
            served = stub.GetCheckpoint(log_pb2.GetCheckpointRequest(), timeout=5)
            assert served.verifier_key == verifier.encode()
            assert served.applied_lsn >= size
            # tree_size 0 is the served checkpoint's size, and that checkpoint comes along.
            proof = stub.GetInclusionProof(log_pb2.GetInclusionProofRequest(lsn=1), timeout=5)
            assert proof.tree_size == size and proof.checkpoint == last
            lsns = stub.ListRecordLsns(
                log_pb2.ListRecordLsnsRequest(hash=acked[0].content_hash), timeout=5
            )
            assert acked[0].lsn in lsns.lsns
            assert list(lsns.lsns) == sorted(lsns.lsns)
            assert not stub.ListRecordLsns(
                log_pb2.ListRecordLsnsRequest(hash=b"\x00" * 32), timeout=5
            ).lsns
            req = log_pb2.GetInclusionProofRequest
            cons = log_pb2.GetConsistencyProofRequest
            invalid, out_of_range = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE
            assert _code(stub.GetInclusionProof, req(lsn=0)) == invalid
            assert _code(stub.GetInclusionProof, req(lsn=1, tree_size=size + 1)) == out_of_range
            assert _code(stub.GetInclusionProof, req(lsn=size + 1)) == out_of_range
            assert _code(stub.GetInclusionProof, req(lsn=5, tree_size=4)) == out_of_range
            assert _code(stub.GetConsistencyProof, cons(first_size=0, second_size=3)) == invalid
            assert _code(stub.GetConsistencyProof, cons(first_size=4, second_size=3)) == invalid
            assert (
                _code(stub.GetConsistencyProof, cons(first_size=1, second_size=size + 1))
                == out_of_range
            )
            assert not stub.GetConsistencyProof(
                cons(first_size=size, second_size=size), timeout=5
            ).hashes
            bad_hash = log_pb2.ListRecordLsnsRequest(hash=b"\x01")
            assert _code(stub.ListRecordLsns, bad_hash) == invalid
    finally:
        stop_polling.set()
        ingestor.kill()
        writer.kill()


def test_sigkills_of_both_services_under_load(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    wal_dir, db_dir = tmp_path / "wal", tmp_path / "db"
    writer = start_writer(wal_dir)
    writer.wait_ready()
    ingestor = start_ingestor(wal_dir, db_dir)
    ingestor.wait_ready()
    verifier = _verifier(wal_dir)
    load = _Load(writer.listen, 3, seed)
    seen: list[str] = []
    try:
        for round_ in range(3):
            goal = load.count() + rng.randrange(200, 600)
            wait_until(lambda g=goal: load.count() >= g, 120, f"round {round_}: {goal} acked")  # type: ignore[misc]
            with _log_stub(ingestor.listen) as stub:
                resp = _checkpoint(stub)
            if resp is not None:
                seen.append(resp.checkpoint)
            victims = [writer, ingestor] if round_ != 1 else [ingestor, writer]
            for victim in victims:
                victim.kill()
            writer = start_writer(wal_dir)
            writer.wait_ready()
            load.target = writer.listen
            ingestor = start_ingestor(wal_dir, db_dir)
            ingestor.wait_ready()
        wait_until(lambda: load.count() >= goal + 200, 120, "appends after the last restart")
        acked = load.stop()
        last = _served_at_least(ingestor.listen, max(r.lsn for r in acked), verifier)
        seen.append(last)
        _check_receipts(ingestor.listen, acked, last, verifier)
        _check_consistent(ingestor.listen, seen, verifier)
        # The writer's restored tree matches the whole log, hashed from scratch.
        leaves = []
        with WalReader(wal_dir) as reader:
            while records := reader.read_available():
                for rec in records:
                    payload = decode_payload(rec.record_type, rec.payload)
                    leaves.append(merkle.record_leaf_hash(rec.lsn, payload.record))
        cp = note.open_checkpoint(last, verifier)
        assert cp.root_hash == oracle.mth(leaves[: cp.tree_size])
    finally:
        load.stop()
        ingestor.kill()
        writer.kill()


def test_a_record_rewritten_offline_is_caught(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    writer = start_writer(wal_dir)
    writer.wait_ready()
    ingestor = start_ingestor(wal_dir, tmp_path / "db")
    try:
        ingestor.wait_ready()
        with grpc.insecure_channel(writer.listen) as channel:
            stub = writer_pb2_grpc.WriterServiceStub(channel)
            for i in range(20):
                req = wpb.AppendAssertionRequest(assertion=assertion(f"Q{i}", "Douglas Adams"))
                stub.AppendAssertion(req, timeout=10)
        verifier = _verifier(wal_dir)
        signed = _served_at_least(ingestor.listen, 20, verifier)
    finally:
        assert ingestor.terminate() == 0
        assert writer.terminate() == 0

    # Rewrite LSN 7's text in its segment and recompute its WAL checksum: the WAL's own checks
    # pass, the record's hash in the payload is left as it was.
    with WalReader(wal_dir, from_lsn=7) as reader:
        rec = reader.read_available(1)[0]
    assert rec.lsn == 7
    tampered = rec.payload.replace(b"Douglas Adams", b"Douglas Adamz")
    assert tampered != rec.payload and len(tampered) == len(rec.payload)
    with open(rec.segment, "r+b") as f:
        f.seek(rec.offset)
        assert f.read(4) == RECORD_MAGIC
        f.seek(rec.offset)
        f.write(encode_record(rec.lsn, rec.record_type, rec.timestamp_ns, tampered))
    with WalReader(wal_dir, from_lsn=7) as reader:
        assert reader.read_available(1)[0].payload == tampered  # the WAL accepts it

    # An ingestor rebuilt from that WAL gets another root than the writer signed, and says so.
    rebuilt = start_ingestor(wal_dir, tmp_path / "db2")
    try:
        rebuilt.wait_ready()
        cp = note.open_checkpoint(signed, verifier)

        def refused() -> bool:
            with _log_stub(rebuilt.listen) as stub:
                try:
                    stub.GetCheckpoint(log_pb2.GetCheckpointRequest(), timeout=5)
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.DATA_LOSS:
                        assert cp.root_hash.hex() in (exc.details() or "")
                        return True
                    return False
            raise AssertionError("a checkpoint was served over a rewritten log")

        wait_until(refused, 60, "DATA_LOSS from the rebuilt ingestor")
    finally:
        rebuilt.kill()
    text = rebuilt.log_path.read_text()
    assert "does not match" in text and cp.root_hash.hex() in text
