"""The ingestor's verifiable-log metrics, and a stored checkpoint that does not match its nodes:
a real RocksDB, a real WAL and a real signed CHECKPOINT, in process."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from stemedb import note
from stemedb.ingestor import ApplyEngine, StoreDb
from stemedb.ingestor._log import CHECKPOINT_FILE, LOG_CHECKPOINT_KEY, VERIFIER_KEY_FILE
from stemedb.ingestor._log_service import LogServicer
from stemedb.ingestor._state import ApplyState
from stemedb.ingestor._waiter import AppliedLsnWaiter
from stemedb.merkle import CompactRange, node_key, record_leaf_hash
from stemedb.wal import SyncMode, Wal, WalConfig, WalReader
from tests.ingestor.ingestor_testlib import assertion, wal_entry

RECORDS = 40


def _signed_log(wal_dir: Path, signed_size: int) -> note.Signer:
    """A WAL of RECORDS assertions, with log.pub and a CHECKPOINT of its first signed_size."""
    records = [assertion(i) for i in range(RECORDS)]
    wal = Wal.open(WalConfig(dir=wal_dir, sync_mode=SyncMode.NONE))
    try:
        wal.append([wal_entry(r) for r in records])
    finally:
        wal.close()
    tree = CompactRange()
    tree.append_all(record_leaf_hash(i + 1, r) for i, r in enumerate(records[:signed_size]))
    signer = note.generate_signer("test.example/log")
    (wal_dir / VERIFIER_KEY_FILE).write_text(signer.verifier.encode() + "\n")
    cp = note.Checkpoint("test.example/log", signed_size, tree.root())
    (wal_dir / CHECKPOINT_FILE).write_text(cp.sign(signer))
    return signer


def _apply_all(db: StoreDb, wal_dir: Path) -> int:
    engine = ApplyEngine(db, policy=None, wal_dir=wal_dir)
    applied = 0
    with WalReader(wal_dir) as reader:
        while records := reader.read_available(7):  # several batches
            applied = engine.apply(records).checkpoint.lsn  # type: ignore[union-attr]
    return applied


def _metrics(db: StoreDb, wal_dir: Path, applied: int) -> tuple[dict[str, float], LogServicer]:
    state = ApplyState(applied, b"")
    servicer = LogServicer(db, state, AppliedLsnWaiter(state, 8, 1.0), wal_dir)
    registry = CollectorRegistry()
    registry.register(servicer.metrics_collector())
    names = ("tree_size", "checkpoint_lag_records", "checkpoint_mismatch")
    values = {}
    for name in names:
        value = registry.get_sample_value(f"stemedb_ingestor_log_{name}")
        assert value is not None, name
        values[name] = value
    return values, servicer


def test_metrics_show_the_served_checkpoint_and_its_lag(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    _signed_log(wal_dir, 30)
    db = StoreDb(tmp_path / "db")
    try:
        applied = _apply_all(db, wal_dir)
        assert applied == RECORDS
        values, _ = _metrics(db, wal_dir, applied)
        assert values == {
            "tree_size": 30.0,
            "checkpoint_lag_records": RECORDS - 30.0,
            "checkpoint_mismatch": 0.0,
        }
    finally:
        db.close()


def test_a_stored_checkpoint_that_does_not_match_its_nodes_is_refused(tmp_path: Path) -> None:
    """A node of its compact range altered in the database under a stored checkpoint: the
    checkpoint is never served again, GetCheckpoint's error names the database, the key, the
    size and both roots, and the mismatch metric is 1 (before the fix it was served as is)."""
    wal_dir = tmp_path / "wal"
    _signed_log(wal_dir, RECORDS)
    db = StoreDb(tmp_path / "db")
    try:
        applied = _apply_all(db, wal_dir)
        (stored,) = db.internal_multi_get([LOG_CHECKPOINT_KEY])
        assert stored is not None
        good = note.parse_checkpoint(stored.decode().split("\n\n")[0] + "\n")
        assert good.tree_size == RECORDS
        (wal_dir / CHECKPOINT_FILE).unlink()  # only the stored checkpoint is left to serve
        values, _ = _metrics(db, wal_dir, applied)
        assert values["tree_size"] == RECORDS and values["checkpoint_mismatch"] == 0
        # Flip one byte of the stored node of leaves 32..39 (40 = 32 + 8: the root is folded
        # from nodes (5, 0) and (3, 4)).
        (node,) = db.internal_multi_get([node_key(3, 4)])
        assert node is not None
        flipped = bytes([node[0] ^ 1]) + node[1:]
        db.write([], db.read_checkpoint(), (), [(node_key(3, 4), flipped)])
        values, servicer = _metrics(db, wal_dir, applied)
        assert values == {
            "tree_size": 0.0,
            "checkpoint_lag_records": float(RECORDS),
            "checkpoint_mismatch": 1.0,
        }
        message = servicer._checkpoints.mismatch
        assert message is not None
        assert str(db.path) in message and "log:checkpoint" in message
        assert f"tree size {RECORDS}" in message and good.root_hash.hex() in message
        # The apply side, reopened on that database, does not serve it either.
        engine = ApplyEngine(db, policy=None, wal_dir=wal_dir)
        assert engine._log is not None
        assert engine._log.checkpoints.mismatch is not None
        assert engine._log.checkpoints.served(applied) is None
    finally:
        db.close()


def test_a_signed_checkpoint_over_another_log_sets_the_mismatch_metric(tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    signer = _signed_log(wal_dir, 20)
    other = note.Checkpoint("test.example/log", 20, bytes(32))
    (wal_dir / CHECKPOINT_FILE).write_text(other.sign(signer))
    db = StoreDb(tmp_path / "db")
    try:
        applied = _apply_all(db, wal_dir)
        values, servicer = _metrics(db, wal_dir, applied)
        assert values["checkpoint_mismatch"] == 1.0 and values["tree_size"] == 0.0
        assert f"{wal_dir}/{CHECKPOINT_FILE}" in (servicer._checkpoints.mismatch or "")
    finally:
        db.close()
