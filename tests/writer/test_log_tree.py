"""The writer's verifiable log on a real process: the log key, CHECKPOINT and TREE after each
group commit, receipts' tree_size, and the refusals at start (docs/verifiable-log.md)."""

from __future__ import annotations

import stat
import urllib.request
from pathlib import Path

import grpc

from stemedb import merkle, note
from stemedb.merkle import oracle
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import WalReader
from stemedb.walrecord import decode_payload
from tests.support import Service, start_writer, wait_until
from tests.writer.records import assertion, epoch

ORIGIN = "stemedb.local/log"


def _append(target: str, n: int, tag: str) -> list[wpb.AppendBatchResponse]:
    out = []
    with grpc.insecure_channel(target) as channel:
        stub = writer_pb2_grpc.WriterServiceStub(channel)
        for i in range(n):
            req = wpb.AppendBatchRequest()
            req.records.add(assertion=assertion(f"{tag}-{i}", signers=i % 3))
            req.records.add(epoch=epoch(f"{tag}-epoch-{i}"))
            out.append(stub.AppendBatch(req, timeout=10))
    return out


def _leaves(wal_dir: Path) -> list[bytes]:
    """Every durable record's leaf hash, read back from the WAL."""
    out = []
    with WalReader(wal_dir) as reader:
        while records := reader.read_available():
            for rec in records:
                payload = decode_payload(rec.record_type, rec.payload)
                out.append(merkle.record_leaf_hash(rec.lsn, payload.record))
    return out


def _verifier(wal_dir: Path) -> note.Verifier:
    return note.Verifier.parse((wal_dir / "log.pub").read_text().strip())


def _checkpoint(wal_dir: Path) -> note.Checkpoint:
    return note.open_checkpoint((wal_dir / "CHECKPOINT").read_bytes(), _verifier(wal_dir))


def _wait_checkpoint(wal_dir: Path, size: int) -> note.Checkpoint:
    wait_until(
        lambda: (wal_dir / "CHECKPOINT").exists() and _checkpoint(wal_dir).tree_size >= size,
        20, f"a checkpoint of size {size}",
    )  # fmt: skip
    return _checkpoint(wal_dir)


def _start(wal_dir: Path, *extra: str) -> Service:
    svc = start_writer(wal_dir, *extra)
    svc.wait_ready()
    return svc


def _refused(wal_dir: Path, *extra: str) -> str:
    svc = start_writer(wal_dir, *extra)
    code = svc.wait_exit(60)
    text = svc.log_path.read_text()
    assert code != 0, text
    return text


def test_checkpoints_sign_the_log_and_receipts_carry_tree_size(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    svc = _start(wal_dir)
    try:
        responses = _append(svc.listen, 12, "a")
        receipts = [r for resp in responses for r in resp.receipts]
        last = receipts[-1].lsn
        cp = _wait_checkpoint(wal_dir, last)
        for r in receipts:
            assert r.lsn <= r.tree_size <= last, r
        leaves = _leaves(wal_dir)
        assert len(leaves) == last
        assert cp.tree_size == last and cp.origin == ORIGIN
        assert cp.root_hash == oracle.mth(leaves)
        assert stat.S_IMODE((wal_dir / "log.key").stat().st_mode) == 0o600

        def tree_written() -> bool:  # TREE is written right after CHECKPOINT
            tree = merkle.CompactRange.from_bytes((wal_dir / "TREE").read_bytes())
            return (tree.size, tree.root()) == (cp.tree_size, cp.root_hash)

        wait_until(tree_written, 20, "TREE to match CHECKPOINT")
        body = urllib.request.urlopen(f"http://{svc.metrics}/metrics", timeout=5).read().decode()
        sizes = [ln for ln in body.splitlines() if ln.startswith("stemedb_log_tree_size ")]
        assert sizes and float(sizes[0].split()[1]) == last
        assert "stemedb_log_checkpoint_age_seconds " in body
    finally:
        assert svc.terminate() == 0
    assert _verifier(wal_dir).encode() in svc.log_path.read_text()  # printed at start
    key_before = (wal_dir / "log.key").read_bytes()

    # A restart keeps the key, restores the tree without rehashing, and extends it.
    svc = _start(wal_dir)
    try:
        more = [r for resp in _append(svc.listen, 3, "b") for r in resp.receipts]
        cp2 = _wait_checkpoint(wal_dir, more[-1].lsn)
    finally:
        assert svc.terminate() == 0
    assert (wal_dir / "log.key").read_bytes() == key_before
    leaves = _leaves(wal_dir)
    assert cp2.tree_size == len(leaves) and cp2.root_hash == oracle.mth(leaves)
    proof = oracle.proof(cp.tree_size, leaves)
    merkle.verify_consistency(cp.tree_size, cp2.tree_size, proof, cp.root_hash, cp2.root_hash)


def test_a_checkpoint_that_does_not_match_the_log_refuses_start(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    svc = _start(wal_dir)
    try:
        first = _append(svc.listen, 2, "a")[-1].receipts[-1].lsn
        _wait_checkpoint(wal_dir, first)
        old_checkpoint = (wal_dir / "CHECKPOINT").read_bytes()
        old_tree = (wal_dir / "TREE").read_bytes()
        second = _append(svc.listen, 2, "b")[-1].receipts[-1].lsn
        _wait_checkpoint(wal_dir, second)
    finally:
        assert svc.terminate() == 0
    good_checkpoint = (wal_dir / "CHECKPOINT").read_bytes()
    good_tree = (wal_dir / "TREE").read_bytes()

    # An older checkpoint with the newer tree: the tree is beyond what was signed.
    (wal_dir / "CHECKPOINT").write_bytes(old_checkpoint)
    text = _refused(wal_dir)
    assert "TREE" in text and "CHECKPOINT" in text and "beyond" in text, text

    # A checkpoint of the right size signed by the same key over another root.
    signer = note.load_or_create_signer(wal_dir / "log.key", ORIGIN)
    forged = note.Checkpoint(ORIGIN, second, b"\x07" * 32).sign(signer)
    (wal_dir / "CHECKPOINT").write_text(forged)
    (wal_dir / "TREE").write_bytes(old_tree)
    text = _refused(wal_dir)
    assert "does not match the log" in text and "TREE" in text and "CHECKPOINT" in text, text

    # A checkpoint signed by another key (the log key file was swapped).
    other = note.generate_signer(ORIGIN)
    (wal_dir / "CHECKPOINT").write_text(note.Checkpoint(ORIGIN, second, b"\x07" * 32).sign(other))
    text = _refused(wal_dir)
    assert "does not verify with the log key" in text, text

    # A checkpoint beyond the log's durable records.
    (wal_dir / "CHECKPOINT").write_text(
        note.Checkpoint(ORIGIN, second + 5, b"\x07" * 32).sign(signer)
    )
    text = _refused(wal_dir)
    assert "durable records" in text, text

    # A damaged TREE is named with its offset.
    (wal_dir / "CHECKPOINT").write_bytes(good_checkpoint)
    (wal_dir / "TREE").write_bytes(good_tree[:-1] + bytes([good_tree[-1] ^ 1]))
    text = _refused(wal_dir)
    assert "TREE" in text and "checksum" in text, text

    # Put right, the writer starts again and the same checkpoint stands.
    (wal_dir / "TREE").write_bytes(good_tree)
    svc = _start(wal_dir)
    assert svc.terminate() == 0
    assert (wal_dir / "CHECKPOINT").read_bytes() == good_checkpoint


def test_a_tree_file_behind_its_checkpoint_is_caught_up_from_the_wal(tmp_path: Path) -> None:
    """TREE lags CHECKPOINT by up to TREE_FILE_SECONDS (and a SIGKILL can leave it so): at
    start the range is extended from the WAL to CHECKPOINT's size and its root checked, the
    checkpoint stands, and TREE is current again once the writer has written it."""
    wal_dir = tmp_path / "wal"
    svc = _start(wal_dir)
    try:
        last = _append(svc.listen, 9, "t")[-1].receipts[-1].lsn
        _wait_checkpoint(wal_dir, last)
    finally:
        assert svc.terminate() == 0
    checkpoint = (wal_dir / "CHECKPOINT").read_bytes()
    leaves = _leaves(wal_dir)
    current = merkle.CompactRange()
    current.append_all(leaves)
    assert (wal_dir / "TREE").read_bytes() == current.to_bytes()  # written at close
    behind = merkle.CompactRange()
    behind.append_all(leaves[:3])
    (wal_dir / "TREE").write_bytes(behind.to_bytes())
    svc = _start(wal_dir)
    try:
        wait_until(
            lambda: (wal_dir / "TREE").read_bytes() == current.to_bytes(),
            20, "TREE to be rewritten at the checkpoint's size",
        )  # fmt: skip
    finally:
        assert svc.terminate() == 0
    assert (wal_dir / "CHECKPOINT").read_bytes() == checkpoint


def test_unregistered_records_are_read_back_from_the_wal(tmp_path: Path) -> None:
    """In process, a real WAL: records whose leaf suffix was never registered (their caller was
    cancelled after the commit) still enter the tree, read back from the WAL; registered ones
    are used as given. Every checkpoint equals the oracle's root of the records read back."""
    from stemedb.merkle import leaf_suffix
    from stemedb.v1 import records_pb2 as pb
    from stemedb.wal import Wal, WalConfig
    from stemedb.walrecord import encode_payload
    from stemedb.writer._tree import LogTree

    wal_dir = tmp_path / "wal"
    wal = Wal.open(WalConfig(dir=wal_dir))
    tree = LogTree.open(wal_dir, wal_dir / "log.key", ORIGIN, True, lambda: wal.durable_lsn)
    tree.start()
    try:
        for i in range(6):
            records = [pb.Record(assertion=assertion(f"r{i}-{j}", signers=j % 2)) for j in range(3)]
            entries = [(1, encode_payload(bytes(32), r.SerializeToString())) for r in records]
            lsns = wal.append(entries)
            tree.notify()
            if i % 2:  # every other append registers its leaves, the others never do
                tree.register(lsns, [leaf_suffix(r) for r in records])
        cp = _wait_checkpoint(wal_dir, 18)
        assert cp.tree_size == 18 and cp.root_hash == oracle.mth(_leaves(wal_dir))
    finally:
        wal.close()
        tree.close()
    assert tree.status.failure is None
