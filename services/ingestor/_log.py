"""The ingestor's part of the verifiable log (DESIGN section 13, docs/verifiable-log.md).

Every applied record extends the ingestor's copy of the log's Merkle tree: its perfect nodes,
the record exactly as appended at its LSN (the ``H:`` record merges co-signatures of later
appends, a leaf does not) and the LSN under its content hash go into the **same WriteBatch** as
the record's own keys, so they are applied exactly once. After a restart the compact range is
rebuilt from popcount(applied LSN) stored nodes. All of it lives in the internal column family
(``stemedb_internal``), out of user scans::

    merkle:<u8 level><u64 index>     a perfect node's 32-byte hash (stemedb.merkle.node_key)
    log:rec:<u64 lsn>                the serialized Record as appended at lsn
    log:lsn:<32-byte hash><u64 lsn>  empty: the record of that hash was appended at lsn
    log:checkpoint                   the newest served checkpoint (signed note text)

(u64 big-endian, so keys sort by LSN.) The ingestor cannot sign: it serves the writer's signed
checkpoints (``CHECKPOINT`` in the WAL directory, verified with ``log.pub`` beside it), and only
one whose whole tree it has applied and whose root equals the root of its own nodes at that
size. A signed checkpoint whose root differs is a log that does not match what the writer
signed (a rewritten record): it is never served, and :attr:`CheckpointTracker.mismatch` names
the file, the size and both roots.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stemedb import note
from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import StoreInconsistent
from stemedb.merkle import (
    CompactRange,
    NodeMissing,
    NodeStore,
    compact_range_at,
    node_key,
    record_leaf_hash,
    root_at,
)
from stemedb.runtime import log_event
from stemedb.wal import WalRecord
from stemedb.walrecord import DecodedPayload

__all__ = [
    "CHECKPOINT_FILE",
    "LOG_CHECKPOINT_KEY",
    "VERIFIER_KEY_FILE",
    "CheckpointTracker",
    "DbNodeStore",
    "LogApplier",
    "LogBatch",
    "ServedCheckpoint",
    "hash_lsn_key",
    "hash_lsn_prefix",
    "lsn_of_hash_key",
    "record_at_key",
]

CHECKPOINT_FILE = "CHECKPOINT"  # written by the writer (services/writer/_tree.py)
VERIFIER_KEY_FILE = "log.pub"
LOG_CHECKPOINT_KEY = b"log:checkpoint"
_RECORD_PREFIX = b"log:rec:"
_HASH_LSN_PREFIX = b"log:lsn:"
_U64 = struct.Struct(">Q")
_HASH_BYTES = 32
_CHECKPOINT_FILE_BYTES_MAX = 64 * 1024  # a checkpoint note is about 200 bytes
# Signed checkpoints read but not yet applied (the writer runs ahead). The oldest are kept, so
# the ingestor always reaches one; the newest replaces the last slot.
PENDING_CHECKPOINTS_MAX = 64

_log = logging.getLogger("stemedb.ingestor")


def record_at_key(lsn: int) -> bytes:
    return _RECORD_PREFIX + _U64.pack(lsn)


def hash_lsn_prefix(content_hash: bytes) -> bytes:
    return _HASH_LSN_PREFIX + content_hash


def hash_lsn_key(content_hash: bytes, lsn: int) -> bytes:
    return hash_lsn_prefix(content_hash) + _U64.pack(lsn)


def lsn_of_hash_key(key: bytes) -> int:
    (lsn,) = _U64.unpack_from(key, len(_HASH_LSN_PREFIX) + _HASH_BYTES)
    return int(lsn)


class DbNodeStore:
    """The tree's nodes in the ingestor's RocksDB (one multi-get per proof), optionally seen
    through the puts of a batch not yet written."""

    def __init__(self, db: StoreDb, pending: dict[bytes, bytes] | None = None) -> None:
        self._db = db
        self._pending = pending or {}

    def get_nodes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes | None]:
        keys = [node_key(level, index) for level, index in addresses]
        out: list[bytes | None] = [self._pending.get(k) for k in keys]
        missing = [i for i, v in enumerate(out) if v is None]
        found = self._db.internal_multi_get([keys[i] for i in missing])
        for i, value in zip(missing, found, strict=True):
            out[i] = value
        return out


@dataclass(frozen=True)
class ServedCheckpoint:
    text: str  # the signed note
    checkpoint: note.Checkpoint


def _body_of(text: str) -> note.Checkpoint:
    """The checkpoint of a signed note this ingestor verified before (stored by itself)."""
    end = text.find("\n\n")
    if end < 0:
        raise StoreInconsistent(f"stored {LOG_CHECKPOINT_KEY!r} is not a signed note")
    return note.parse_checkpoint(text[: end + 1])


class CheckpointTracker:
    """Which writer-signed checkpoint to serve: the newest one whose tree is applied and whose
    root matches the stored nodes. Thread-safe."""

    def __init__(self, db: StoreDb, wal_dir: Path | None) -> None:
        self._db = db
        self._wal_dir = wal_dir
        self._lock = threading.Lock()
        self._served: ServedCheckpoint | None = None
        self._pending: list[ServedCheckpoint] = []
        self._file_id: tuple[int, int, int] | None = None
        self._verifier: note.Verifier | None = None
        self._verifier_id: tuple[int, int, int] | None = None
        self.mismatch: str | None = None
        self._stored_text: bytes | None = None
        self._reload_stored()

    @property
    def verifier_key(self) -> str:
        return "" if self._verifier is None else self._verifier.encode()

    def _reload_stored(self) -> None:
        (raw,) = self._db.internal_multi_get([LOG_CHECKPOINT_KEY])
        if raw is None or raw == self._stored_text:
            return
        self._stored_text = raw
        text = raw.decode("utf-8")
        if self._served is not None and self._served.text == text:
            return
        cp = _body_of(text)
        # Stored in the batch of its tree's nodes, so checked against them before it is served:
        # a database whose nodes (or stored note) were altered must not hand out that note.
        try:
            root = root_at(DbNodeStore(self._db), cp.tree_size)
        except NodeMissing as exc:
            self._stored_mismatched(cp, f"a missing node ({exc})")
            return
        if root != cp.root_hash:
            self._stored_mismatched(cp, f"root {root.hex()}")
            return
        if self._served is None or cp.tree_size > self._served.checkpoint.tree_size:
            self._served = ServedCheckpoint(text, cp)

    def _stored_mismatched(self, cp: note.Checkpoint, found: str) -> None:
        self._refuse(
            f"{self._db.path}: key {LOG_CHECKPOINT_KEY.decode()} (column family "
            f"stemedb_internal) holds a checkpoint of tree size {cp.tree_size} with root "
            f"{cp.root_hash.hex()}, but the log tree's nodes stored there give {found} at that "
            f"size: the database does not match the checkpoint it served; rebuild it from the WAL"
        )

    def served(self, applied_lsn: int) -> ServedCheckpoint | None:
        """The checkpoint to serve now (reads CHECKPOINT and the stored one; for the RPCs)."""
        with self._lock:
            self._reload_stored()
            self._consider(applied_lsn, DbNodeStore(self._db))
            return self._served

    def consider(self, applied_lsn: int, store: NodeStore) -> str | None:
        """On the apply thread, with the batch's nodes in ``store``: the note text of a newly
        served checkpoint, to be stored in the batch, or None."""
        with self._lock:
            before = self._served
            self._consider(applied_lsn, store)
            if self._served is not None and self._served is not before:
                return self._served.text
            return None

    def _consider(self, applied: int, store: NodeStore) -> None:
        self._read_file()
        ready = [p for p in self._pending if p.checkpoint.tree_size <= applied]
        self._pending = [p for p in self._pending if p.checkpoint.tree_size > applied]
        for cand in sorted(ready, key=lambda p: p.checkpoint.tree_size):
            cp = cand.checkpoint
            served = self._served
            if served is not None and cp.tree_size < served.checkpoint.tree_size:
                continue
            if served is not None and cp.tree_size == served.checkpoint.tree_size:
                if cp.root_hash != served.checkpoint.root_hash:
                    self._mismatched(cp, served.checkpoint.root_hash)
                continue
            try:
                root = root_at(store, cp.tree_size)
            except NodeMissing as exc:
                raise StoreInconsistent(f"the log tree lacks a node: {exc}") from None
            if root != cp.root_hash:
                self._mismatched(cp, root)
                continue
            self._served = cand

    def _mismatched(self, cp: note.Checkpoint, root: bytes) -> None:
        self._refuse(
            f"{self._wal_dir}/{CHECKPOINT_FILE} signed a tree of size {cp.tree_size} with root "
            f"{cp.root_hash.hex()}, but the log applied here has root {root.hex()} at that size: "
            f"the WAL does not match what the writer signed"
        )

    def _refuse(self, message: str) -> None:
        """A checkpoint that does not match the log: never served; GetCheckpoint answers
        DATA_LOSS with ``message`` and stemedb_ingestor_log_checkpoint_mismatch is 1."""
        if self.mismatch is None:
            log_event(_log, logging.CRITICAL, "log does not match a signed checkpoint",
                      error=message)  # fmt: skip
        self.mismatch = message

    def _read_file(self) -> None:
        if self._wal_dir is None:
            return
        self._load_verifier(self._wal_dir)
        if self._verifier is None:
            return
        path = self._wal_dir / CHECKPOINT_FILE
        file_id = _file_id(path)
        if file_id is None or file_id == self._file_id:
            return
        self._file_id = file_id
        try:
            with open(path, "rb") as f:
                data = f.read(_CHECKPOINT_FILE_BYTES_MAX + 1)
        except FileNotFoundError:
            return
        try:
            if len(data) > _CHECKPOINT_FILE_BYTES_MAX:
                raise note.MalformedNote(f"more than {_CHECKPOINT_FILE_BYTES_MAX} bytes")
            cp = note.open_checkpoint(data, self._verifier)
        except note.NoteError as exc:
            log_event(_log, logging.ERROR, "CHECKPOINT refused", file=str(path), error=str(exc))
            return
        newest = max((p.checkpoint.tree_size for p in self._pending), default=-1)
        if self._served is not None:
            newest = max(newest, self._served.checkpoint.tree_size)
        if cp.tree_size <= newest:
            return
        entry = ServedCheckpoint(data.decode("utf-8"), cp)
        if len(self._pending) < PENDING_CHECKPOINTS_MAX:
            self._pending.append(entry)
        else:
            self._pending[-1] = entry

    def _load_verifier(self, wal_dir: Path) -> None:
        path = wal_dir / VERIFIER_KEY_FILE
        file_id = _file_id(path)
        if file_id is None or file_id == self._verifier_id:
            return
        self._verifier_id = file_id
        try:
            verifier = note.Verifier.parse(path.read_text("ascii").strip())
        except (OSError, UnicodeDecodeError, note.NoteError) as exc:
            log_event(_log, logging.ERROR, "log verifier key refused", file=str(path),
                      error=str(exc))  # fmt: skip
            return
        if self._verifier is not None and verifier != self._verifier:
            log_event(
                _log, logging.CRITICAL, "the log's verifier key changed; keeping the first",
                file=str(path), first=self._verifier.encode(), new=verifier.encode(),
            )  # fmt: skip
            return
        self._verifier = verifier


def _file_id(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass
class LogBatch:
    """The verifiable log's keys of one apply batch, and the tree after it."""

    puts: dict[bytes, bytes]
    tree: CompactRange


class LogApplier:
    """Extends the tree with each applied batch (used by the apply thread only)."""

    def __init__(self, db: StoreDb, wal_dir: Path) -> None:
        self._db = db
        applied = db.read_checkpoint().lsn
        try:
            self._tree = compact_range_at(DbNodeStore(db), applied)
        except NodeMissing as exc:
            raise StoreInconsistent(
                f"{db.path} has applied LSN {applied} but lacks the log tree's nodes ({exc}); "
                f"rebuild the database from the WAL"
            ) from None
        self.checkpoints = CheckpointTracker(db, wal_dir)

    def extend(self, decoded: Sequence[tuple[WalRecord, DecodedPayload]]) -> LogBatch:
        tree = self._tree.copy()
        puts: dict[bytes, bytes] = {}
        leaves: list[bytes] = []
        lsn = tree.size
        for rec, payload in decoded:
            if rec.lsn <= lsn:
                continue  # re-applied: its leaf, nodes and keys are in the tree already
            if rec.lsn != lsn + 1:
                raise StoreInconsistent(
                    f"the log tree has {lsn} leaves; LSN {rec.lsn} cannot be the next"
                )
            lsn = rec.lsn
            leaves.append(record_leaf_hash(lsn, payload.record))
            puts[record_at_key(lsn)] = payload.record_bytes
            puts[hash_lsn_key(payload.content_hash, lsn)] = b""
        for level, index, h in tree.append_all(leaves):
            puts[node_key(level, index)] = h
        text = self.checkpoints.consider(tree.size, DbNodeStore(self._db, puts))
        if text is not None:
            puts[LOG_CHECKPOINT_KEY] = text.encode("utf-8")
        return LogBatch(puts, tree)

    def committed(self, batch: LogBatch) -> None:
        """The batch was written: its tree is now the applied one."""
        self._tree = batch.tree
