"""The writer's Merkle tree over the log and its signed checkpoints (DESIGN section 13).

The writer keeps the tree as a compact range (``stemedb.merkle.CompactRange``, O(log n) hashes).
A thread extends the tree up to the WAL's durable LSN (so it never holds a record that is not
durable), appends each record's leaf, and after each group commit signs a
checkpoint (a C2SP signed note) with the log key and writes, each atomically and durably:

1. ``CHECKPOINT``: the signed note (origin line, tree size, base64 root hash, signature);
2. ``TREE``: the compact range of a signed size, with its checksum (``CompactRange.to_bytes``),
   at most ``TREE_FILE_SECONDS`` after that size's CHECKPOINT (it only spares a restart the
   rehashing, and writing it with every checkpoint cost the writer about a tenth of its
   AppendBatch rate in fsyncs).

The order matters for restarts: TREE is never ahead of CHECKPOINT, so at open the range is
caught up from the WAL to CHECKPOINT's size (at most about a second's worth of records) and its
root must equal CHECKPOINT's, otherwise the writer refuses to start, naming both. Opening a log
never rehashes it from the start, except once, for a log that has neither file (written before
the verifiable log existed).

Signing runs on this thread, after the group's callers were acknowledged: it is off the fsync
critical path. Under load one checkpoint covers every group committed since the last one, and
checkpoints are at least ``--log-checkpoint-interval-seconds`` apart (default 10 ms: signing and
the two file replacements cost about 0.5 ms of CPU, which per unary group commit was a third of
the writer's CPU).

Leaves: the request path already has each record's canonical bytes, so after an append returns
the writer hands each record's leaf suffix (``stemedb.merkle.leaf_suffix``) to
:meth:`LogTree.register`, on the event loop, which hashes the leaves into the tree at once when
they are next in line (the usual case: commits complete in LSN order) and holds them otherwise
until the records before them arrive. The thread only signs and writes checkpoints, from a copy
of the range taken under the lock, and fills gaps: an LSN that is durable but not registered
within ``_REGISTER_WAIT_SECONDS`` (its caller was cancelled between the commit and the
registration) is read back from the WAL and its leaf recomputed from the record there, as at
start: the tree never skips a record and never waits forever. (Hashing on the thread instead
cost the writer about 2 us more CPU per record, in hand-offs between the threads; the figures are
in docs/verifiable-log.md.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stemedb import note
from stemedb.errors import StemeError
from stemedb.fsio import atomic_replace
from stemedb.merkle import CompactRange, CompactRangeError, record_leaf_hash, suffix_leaf_hashes
from stemedb.runtime import log_event
from stemedb.wal import WalError, WalReader, WalRecord
from stemedb.walrecord import PayloadError, decode_payload

__all__ = [
    "BENCH_NO_LOG_TREE_ENV",
    "CHECKPOINT_NAME",
    "DEFAULT_LOG_KEY_NAME",
    "DEFAULT_LOG_ORIGIN",
    "TREE_FILE_SECONDS",
    "TREE_NAME",
    "VERIFIER_KEY_NAME",
    "LogTree",
    "LogTreeError",
    "TreeStatus",
]

CHECKPOINT_NAME = "CHECKPOINT"
TREE_NAME = "TREE"
VERIFIER_KEY_NAME = "log.pub"  # the verifier key, for the ingestor (clients pin theirs)
DEFAULT_LOG_ORIGIN = "stemedb.local/log"
# Set to 1 in the writer's environment, the writer keeps no tree at all: the baseline the
# benchmark (tests/bench/test_log_bench.py) measures AppendBatch against. Never in production.
BENCH_NO_LOG_TREE_ENV = "STEMEDB_BENCH_NO_LOG_TREE"
DEFAULT_LOG_KEY_NAME = "log.key"  # in the WAL directory, unless --log-key says otherwise
_READ_RECORDS_MAX = 10_000  # records read per WAL read; a checkpoint may cover several reads
_IDLE_WAKE_SECONDS = 1.0  # the thread also looks at the WAL this often without being woken
_GAP_WAKE_SECONDS = 0.05  # while a durable LSN waits for its registration
_ADVANCE_PERIOD_SECONDS = 0.005  # least time between two passes of the thread
_REGISTER_WAIT_SECONDS = 1.0  # then it is read back from the WAL instead
TREE_FILE_SECONDS = 1.0  # least time between two writes of TREE (and at close)
# Registered leaf suffixes not yet in the tree; beyond it registrations are dropped (and those
# records read back from the WAL): bounds memory if the thread falls behind or stops.
PENDING_LEAVES_MAX = 1_000_000

_log = logging.getLogger("stemedb.writer")


class LogTreeError(StemeError):
    """The tree, its checkpoint and the log disagree (the writer refuses to start), or the log
    cannot be read back to extend the tree."""


@dataclass(frozen=True)
class TreeStatus:
    """What the metrics read: the signed checkpoint's size and when it was written."""

    tree_size: int
    checkpoint_unix_seconds: float
    failure: str | None


class LogTree:
    """The compact range of the log, extended and checkpointed by one thread."""

    def __init__(
        self, wal_dir: Path, signer: note.Signer, tree: CompactRange, sync: bool, signed: int,
        durable: Callable[[], int], interval_seconds: float = 0.0,
    ) -> None:  # fmt: skip
        self._dir = wal_dir
        self._interval_seconds = interval_seconds
        self._signed_mono = 0.0  # time.monotonic() of the last checkpoint written
        self._durable = durable
        # The tree and the leaf suffixes registered ahead of a missing LSN (LSN -> suffix),
        # under _tree_lock: held by the event loop per registration and by the thread per copy
        # or gap fill, never across I/O.
        self._pending: dict[int, bytes] = {}
        self._tree_lock = threading.Lock()
        self._gap: tuple[int, float] | None = None  # (missing LSN, time.monotonic() first seen)
        self._signer = signer
        self._tree = tree
        self._sync = sync
        self._signed_size = signed
        self._signed_at = time.time()
        self._unsaved: CompactRange | None = None  # the last checkpoint's range, not yet in TREE
        self._tree_file_mono = 0.0  # time.monotonic() of the last write of TREE
        self._failure: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one advance at a time: the thread's or close()'s
        self._thread = threading.Thread(target=self._run, name="stemedb-log-tree", daemon=True)

    @property
    def verifier_key(self) -> str:
        return self._signer.verifier.encode()

    @property
    def status(self) -> TreeStatus:
        return TreeStatus(self._signed_size, self._signed_at, self._failure)

    @classmethod
    def open(
        cls, wal_dir: Path, key_path: Path, origin: str, sync: bool, durable: Callable[[], int],
        interval_seconds: float = 0.0,
    ) -> LogTree:  # fmt: skip
        """Load the log key (created 0600 on first start), restore and check the tree against
        CHECKPOINT and the WAL, and catch it up to ``durable()`` (the WAL's durable LSN).
        Raises LogTreeError or ``note.MalformedKey`` naming the file when they disagree."""
        signer = note.load_or_create_signer(key_path, origin)
        atomic_replace(
            wal_dir / VERIFIER_KEY_NAME, (signer.verifier.encode() + "\n").encode(), sync=sync
        )
        durable_lsn = durable()
        cp_path = wal_dir / CHECKPOINT_NAME
        tree_path = wal_dir / TREE_NAME
        checkpoint = _read_checkpoint(cp_path, signer.verifier, key_path)
        tree = _read_tree(tree_path)
        behind = False
        if checkpoint is None:
            if tree is not None:
                raise LogTreeError(
                    f"{tree_path} holds a tree of size {tree.size} but {cp_path} is missing"
                )
            tree = CompactRange()
            if durable_lsn:
                log_event(
                    _log, logging.WARNING, "no CHECKPOINT: hashing the whole log once",
                    wal_dir=str(wal_dir), durable_lsn=durable_lsn,
                )  # fmt: skip
        else:
            tree = tree or CompactRange()
            size, root = checkpoint.tree_size, checkpoint.root_hash
            if tree.size > size:
                raise LogTreeError(
                    f"{tree_path} holds a tree of size {tree.size}, beyond the {size} of the "
                    f"signed {cp_path}"
                )
            if size > durable_lsn:
                raise LogTreeError(
                    f"{cp_path} names a tree of size {size} but the WAL {wal_dir} holds only "
                    f"{durable_lsn} durable records"
                )
            behind = tree.size < size  # TREE lags CHECKPOINT: write it at this size again
            _extend(tree, wal_dir, size)
            if tree.root() != root:
                raise LogTreeError(
                    f"{cp_path} (size {size}, root {root.hex()}) does not match the log: "
                    f"{tree_path} and the WAL {wal_dir} give root {tree.root().hex()} at size "
                    f"{size}"
                )
        signed = checkpoint.tree_size if checkpoint is not None else -1
        unsaved = tree.copy() if behind else None
        _extend(tree, wal_dir, durable_lsn)  # the records durable since the last checkpoint
        log_tree = cls(wal_dir, signer, tree, sync, signed, durable, interval_seconds)
        log_tree._unsaved = unsaved
        log_tree.advance()
        return log_tree

    def start(self) -> None:
        self._thread.start()

    def register(self, lsns: Sequence[int], suffixes: Sequence[bytes]) -> None:
        """The leaf suffixes of records just made durable at ``lsns`` (consecutive), on the event
        loop: hashed into the tree now when they are next in line, else held (bounded) until the
        records before them are registered or read back from the WAL."""
        if not lsns:
            return
        with self._tree_lock:
            if self._failure is not None:
                return
            tree = self._tree
            first_growth = tree.size == self._signed_size
            skip = tree.size + 1 - lsns[0]  # already read back from the WAL (a late caller)
            if skip > 0:
                lsns, suffixes = lsns[skip:], suffixes[skip:]
            if not lsns:
                return
            if lsns[0] == tree.size + 1:
                tree.append_all(suffix_leaf_hashes(lsns[0], suffixes))
                if self._pending:
                    self._drain_locked()
            else:
                first_growth = True  # a gap: the thread watches it
                if len(self._pending) + len(lsns) <= PENDING_LEAVES_MAX:
                    self._pending.update(zip(lsns, suffixes, strict=True))
        if first_growth:  # the thread times the next checkpoint from there
            self._wake.set()

    def _drain_locked(self) -> None:
        """Append the held leaves that are now next in line (under _tree_lock)."""
        tree, pop = self._tree, self._pending.pop
        run: list[bytes] = []
        lsn = tree.size + 1
        while (suffix := pop(lsn, None)) is not None:
            run.append(suffix)
            lsn += 1
        if run:
            tree.append_all(suffix_leaf_hashes(tree.size + 1, run))

    def notify(self) -> None:
        """Look at the WAL now (registrations wake the thread themselves; without them it
        looks every ``_IDLE_WAKE_SECONDS``)."""
        self._wake.set()

    def close(self) -> None:
        """Extend the tree to the log's end, sign it, stop the thread (after the WAL closed)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        self.advance(final=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = _GAP_WAKE_SECONDS if self._gap is not None else _IDLE_WAKE_SECONDS
            now = time.monotonic()
            if self._tree.size != self._signed_size:  # a checkpoint waits for its interval
                timeout = max(0.0, min(timeout, self._signed_mono + self._interval_seconds - now))
            if self._unsaved is not None:  # and TREE for its own
                timeout = max(0.0, min(timeout, self._tree_file_mono + TREE_FILE_SECONDS - now))
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.advance()
            # At most one pass per period: each pass takes the GIL from the event loop.
            self._stop.wait(_ADVANCE_PERIOD_SECONDS)

    def advance(self, final: bool = False) -> None:
        """Fill the tree's gaps up to the durable LSN, then sign and write a checkpoint if the
        tree grew. ``final`` (at close: no more registrations) reads any unregistered record
        from the WAL at once. A failure to read the log stops the tree (logged, in the
        metrics)."""
        with self._lock:
            if self._failure is not None:
                return
            try:
                self._fill_gaps(self._durable(), final)
                due = self._signed_mono + self._interval_seconds
                snapshot = None
                with self._tree_lock:
                    if self._tree.size != self._signed_size and (final or time.monotonic() >= due):
                        snapshot = self._tree.copy()
                if snapshot is not None:
                    self._write_checkpoint(snapshot)
                unsaved = self._unsaved
                if unsaved is not None and (
                    final or time.monotonic() >= self._tree_file_mono + TREE_FILE_SECONDS
                ):
                    atomic_replace(self._dir / TREE_NAME, unsaved.to_bytes(), sync=self._sync)
                    self._unsaved = None
                    self._tree_file_mono = time.monotonic()
            except (WalError, LogTreeError, OSError) as exc:
                with self._tree_lock:
                    self._failure = str(exc)
                    self._pending.clear()
                log_event(
                    _log, logging.CRITICAL, "log tree stopped: no more checkpoints until restart",
                    error=str(exc), tree_size=self._tree.size, signed_size=self._signed_size,
                )  # fmt: skip

    def _fill_gaps(self, durable: int, final: bool) -> None:
        """Read back from the WAL the durable records not registered within
        _REGISTER_WAIT_SECONDS of being first seen missing (at once when ``final``): each run up
        to the next registered LSN, hashed outside the lock and appended under it."""
        while True:
            with self._tree_lock:
                size = self._tree.size
                later = [lsn for lsn in self._pending if lsn > size] if size < durable else []
            if size >= durable:
                self._gap = None
                return
            now = time.monotonic()
            if not final:
                if self._gap is None or self._gap[0] != size + 1:
                    self._gap = (size + 1, now)  # registrations may still be on their way
                    return
                if now - self._gap[1] < _REGISTER_WAIT_SECONDS:
                    return
            end = min([durable, *(lsn - 1 for lsn in later)])
            hashes = [h for chunk in _wal_leaf_hashes(self._dir, size + 1, end) for h in chunk]
            with self._tree_lock:
                if self._tree.size == size:  # else a late registration came first: look again
                    self._tree.append_all(hashes)
                    for lsn in [lsn for lsn in self._pending if lsn <= self._tree.size]:
                        del self._pending[lsn]
                    self._drain_locked()
            self._gap = None

    def _write_checkpoint(self, tree: CompactRange) -> None:
        text = note.Checkpoint(self._signer.name, tree.size, tree.root()).sign(self._signer)
        atomic_replace(self._dir / CHECKPOINT_NAME, text.encode("utf-8"), sync=self._sync)
        self._unsaved = tree  # TREE follows (advance), never ahead of CHECKPOINT
        self._signed_size = tree.size
        self._signed_at = time.time()
        self._signed_mono = time.monotonic()


def _read_checkpoint(path: Path, verifier: note.Verifier, key_path: Path) -> note.Checkpoint | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return note.open_checkpoint(data, verifier)
    except note.NoteError as exc:
        raise LogTreeError(
            f"{path} does not verify with the log key {key_path} ({verifier.encode()}): {exc}"
        ) from None


def _read_tree(path: Path) -> CompactRange | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return CompactRange.from_bytes(data, source=str(path))
    except CompactRangeError as exc:
        raise LogTreeError(str(exc)) from None


def _extend(tree: CompactRange, wal_dir: Path, size: int) -> None:
    """Append the WAL's records tree.size + 1 .. size to ``tree``."""
    for hashes in _wal_leaf_hashes(wal_dir, tree.size + 1, size):
        tree.append_all(hashes)


def _wal_leaf_hashes(wal_dir: Path, first: int, end: int) -> Iterator[list[bytes]]:
    """The leaf hashes of the WAL's records ``first`` .. ``end``, in chunks of at most
    _READ_RECORDS_MAX; LogTreeError if the WAL ends before ``end`` or a record is out of order
    or does not decode (naming its segment and offset)."""
    if first > end:
        return
    with WalReader(wal_dir, from_lsn=first) as reader:
        lsn = first
        while lsn <= end:
            records = reader.read_available(min(_READ_RECORDS_MAX, end - lsn + 1))
            if not records:
                raise LogTreeError(
                    f"the WAL {wal_dir} ends at LSN {lsn - 1}, before the tree size {end}"
                )
            yield [_record_leaf_hash(rec, lsn + i) for i, rec in enumerate(records)]
            lsn += len(records)


def _record_leaf_hash(rec: WalRecord, expected_lsn: int) -> bytes:
    if rec.lsn != expected_lsn:
        raise LogTreeError(f"WAL record of LSN {rec.lsn} read where LSN {expected_lsn} is next")
    try:
        payload = decode_payload(rec.record_type, rec.payload)
    except PayloadError as exc:
        raise LogTreeError(
            f"WAL record of LSN {rec.lsn} ({rec.segment} offset {rec.offset}) does not "
            f"decode: {exc}"
        ) from None
    return record_leaf_hash(rec.lsn, payload.record)
