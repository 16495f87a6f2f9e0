"""The ingestor's RocksDB: options with bounded memory, user keys, internal state, paged scans.

Raw mode (keys and values are bytes as stored). User keys are in the ``default`` column family
and internal state (checkpoint, schema version) in ``stemedb_internal``; one WriteBatch spans
both, so records and the checkpoint that covers them commit atomically. Writes are not fsynced
one by one: after a process crash RocksDB's own log replays them, and after a power loss it
recovers a consistent prefix of batches, records and checkpoint together, so replaying the WAL
from the surviving checkpoint is still exactly once. ``flush_wal`` makes the state durable
before a consumer checkpoint is published (that file lets the writer delete WAL segments).

``ReadCache`` keeps record values (H:, V:, E:) for the point reads, bounded in bytes
(``--read-cache-bytes-max``). V: and E: records never change, but an H: value does when a
co-signer is merged: ``write`` drops every record key it writes from the cache before it
returns, so before the apply thread publishes the batch's LSN; a value read from RocksDB is
cached only if no record key was written meanwhile (a generation count), so a read racing a
merge never caches the old value after its invalidation.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import rocksdict

from stemedb.ingestor._errors import SchemaMismatch
from stemedb.ingestor._keys import (
    CHECKPOINT_KEY,
    INTERNAL_CF,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    Checkpoint,
    prefix_upper_bound,
)

__all__ = ["DbOptions", "ReadCache", "ScanResult", "StoreDb"]

_OPEN_FILES_MAX = 1024  # table files kept open; bounds file descriptors and table-reader memory
_INFO_LOG_FILES_MAX = 5


@dataclass(frozen=True)
class DbOptions:
    block_cache_bytes: int = 64 * 1024 * 1024
    write_buffer_bytes: int = 32 * 1024 * 1024
    read_cache_bytes_max: int = 0  # the ReadCache; 0: no cache


_CACHED_PREFIXES = (b"H:", b"V:", b"E:")  # the record keys (_keys.RECORD_PREFIX_OF_KIND)
# Charged per cached entry beside its key and value: the dict slot, the link and two objects.
_CACHE_ENTRY_OVERHEAD_BYTES = 160


class ReadCache:
    """A least-recently-used map of record keys to their stored values, at most ``bytes_max``
    bytes (keys, values and a per-entry overhead). Thread-safe."""

    def __init__(self, bytes_max: int) -> None:
        self.bytes_max = bytes_max
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: bytes) -> tuple[bytes | None, int]:
        """The cached value (or None) and the generation to hand to ``offer`` after a miss."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
            else:
                self._entries.move_to_end(key)
                self.hits += 1
            return value, self._generation

    def offer(self, key: bytes, value: bytes, generation: int) -> None:
        """Cache a value read from RocksDB after ``lookup`` gave ``generation``, unless a record
        key was written since. An entry above 1/16 of the bound is not cached."""
        size = len(key) + len(value) + _CACHE_ENTRY_OVERHEAD_BYTES
        if size * 16 > self.bytes_max:
            return
        with self._lock:
            if generation != self._generation or key in self._entries:
                return
            self._entries[key] = value
            self.bytes += size
            while self.bytes > self.bytes_max:
                old_key, old_value = self._entries.popitem(last=False)
                self.bytes -= len(old_key) + len(old_value) + _CACHE_ENTRY_OVERHEAD_BYTES

    def invalidate(self, keys: Iterable[bytes]) -> None:
        """Record keys were written: drop them, and refuse the offers of reads made before."""
        with self._lock:
            self._generation += 1
            for key in keys:
                value = self._entries.pop(key, None)
                if value is not None:
                    self.bytes -= len(key) + len(value) + _CACHE_ENTRY_OVERHEAD_BYTES


@dataclass(frozen=True)
class ScanResult:
    """One page of a prefix scan: the entries and the first key of the next page (or None)."""

    entries: list[tuple[bytes, bytes]]
    next_key: bytes | None


def _page(
    source: rocksdict.Rdict | rocksdict.Snapshot,
    prefix: bytes,
    start: bytes,
    limit: int,
    bytes_max: int | None = None,
) -> ScanResult:
    """One page of a prefix scan of ``source`` (a database or one of its snapshots)."""
    if limit < 1:
        raise ValueError(f"scan limit must be >= 1, got {limit}")
    if not start.startswith(prefix):
        raise ValueError("scan start must lie under the prefix")
    read_opts = rocksdict.ReadOptions()
    bound = prefix_upper_bound(prefix)
    if bound is not None:
        read_opts.set_iterate_upper_bound(bound)
    entries: list[tuple[bytes, bytes]] = []
    page_bytes = 0
    for raw_key, value in source.items(from_key=start, read_opt=read_opts):
        key = cast(bytes, raw_key)  # raw mode: keys are bytes
        if not key.startswith(prefix):  # only possible without an upper bound
            break
        if len(entries) == limit:
            return ScanResult(entries, key)
        if bytes_max is not None:
            page_bytes += len(key) + len(value)
            if entries and page_bytes > bytes_max:
                return ScanResult(entries, key)
        entries.append((key, value))
    return ScanResult(entries, None)


def _options(opts: DbOptions) -> rocksdict.Options:
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(rocksdict.Cache(opts.block_cache_bytes))
    # Index and filter blocks are charged to the block cache instead of growing with the
    # database: this is what keeps RSS flat as the number of records grows.
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_bloom_filter(10, False)  # most existence checks on apply are misses
    options.set_block_based_table_factory(table)
    options.set_write_buffer_size(opts.write_buffer_bytes)
    options.set_max_write_buffer_number(2)
    options.set_max_total_wal_size(4 * opts.write_buffer_bytes)
    options.set_max_open_files(_OPEN_FILES_MAX)
    options.set_keep_log_file_num(_INFO_LOG_FILES_MAX)
    options.set_max_background_jobs(2)
    return options


class StoreDb:
    """One open RocksDB. Thread-safe: the apply thread writes while the event loop reads."""

    def __init__(self, path: Path, opts: DbOptions | None = None) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        options = _options(opts or DbOptions())
        self._db = rocksdict.Rdict(
            str(self.path), options, column_families={INTERNAL_CF: _options(opts or DbOptions())}
        )
        bytes_max = (opts or DbOptions()).read_cache_bytes_max
        self.cache = ReadCache(bytes_max) if bytes_max > 0 else None
        self._internal = self._db.get_column_family(INTERNAL_CF)
        self._internal_handle: rocksdict.ColumnFamily | None = self._db.get_column_family_handle(
            INTERNAL_CF
        )
        self._check_schema()

    def _check_schema(self) -> None:
        stored = self._internal.get(SCHEMA_VERSION_KEY)
        if stored is None:
            has_user_keys = any(True for _ in self._db.keys(from_key=b""))
            if has_user_keys:
                raise SchemaMismatch(f"{self.path} holds keys but no schema version")
            self._internal.put(SCHEMA_VERSION_KEY, str(SCHEMA_VERSION).encode())
            return
        if stored != str(SCHEMA_VERSION).encode():
            raise SchemaMismatch(
                f"{self.path} has schema version {stored!r}; this ingestor reads {SCHEMA_VERSION}"
            )

    # -- reads ---------------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._db.get(key)
        return None if value is None else bytes(value)

    def multi_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        return list(self._db.get(list(keys)))  # type: ignore[arg-type]

    def cached_get(self, key: bytes) -> bytes | None:
        """``get``, through the ReadCache for record keys (the point reads)."""
        cache = self.cache
        if cache is None or not key.startswith(_CACHED_PREFIXES):
            return self.get(key)
        value, generation = cache.lookup(key)
        if value is None:
            value = self.get(key)
            if value is not None:
                cache.offer(key, value, generation)
        return value

    def cached_multi_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """``multi_get``, through the ReadCache for record keys; one RocksDB call for the rest."""
        cache = self.cache
        if cache is None:
            return self.multi_get(keys)
        out: list[bytes | None] = []
        missed: list[int] = []
        generations: list[int] = []
        for i, key in enumerate(keys):
            value = None
            if key.startswith(_CACHED_PREFIXES):
                value, generation = cache.lookup(key)
                if value is None:
                    missed.append(i)
                    generations.append(generation)
            else:
                missed.append(i)
                generations.append(-1)
            out.append(value)
        if missed:
            values = self.multi_get([keys[i] for i in missed])
            for i, generation, value in zip(missed, generations, values, strict=True):
                out[i] = value
                if value is not None and generation >= 0:
                    cache.offer(keys[i], value, generation)
        return out

    def scan(
        self, prefix: bytes, start: bytes, limit: int, bytes_max: int | None = None
    ) -> ScanResult:
        """Up to ``limit`` entries under ``prefix`` from ``start`` (inclusive), in key order.

        The cost is the page's, not the prefix's: one seek, then ``limit + 1`` steps (the extra
        step tells whether there is a next page, and where it starts). With ``bytes_max`` the
        page also ends before the entry that would take its keys and values past that many
        bytes (a short page, AIP-158); the first entry is always taken, so paging progresses.
        """
        return _page(self._db, prefix, start, limit, bytes_max)

    def last_before(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        """The greatest entry under ``prefix`` whose key is <= ``key`` (one backward seek)."""
        for raw_key, value in self._db.items(backwards=True, from_key=key):
            found = cast(bytes, raw_key)
            return (found, bytes(value)) if found.startswith(prefix) else None
        return None

    def internal_multi_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Values of internal keys (the verifiable log's, services/ingestor/_log.py)."""
        if not keys:
            return []
        values = cast(list[bytes | None], self._internal.get(list(keys)))
        return [None if v is None else bytes(v) for v in values]

    def internal_keys(self, start: bytes, prefix: bytes, limit: int) -> list[bytes]:
        """Up to ``limit`` internal keys under ``prefix`` from ``start`` (inclusive), in order."""
        read_opts = rocksdict.ReadOptions()
        bound = prefix_upper_bound(prefix)
        if bound is not None:
            read_opts.set_iterate_upper_bound(bound)
        out: list[bytes] = []
        for raw_key in self._internal.keys(from_key=start, read_opt=read_opts):
            key = cast(bytes, raw_key)
            if not key.startswith(prefix) or len(out) == limit:
                break
            out.append(key)
        return out

    def snapshot_reader(self) -> SnapshotReader:
        """Reads of the user keys as they are now, however the database changes meanwhile."""
        return SnapshotReader(self._db.snapshot())

    def read_checkpoint(self) -> Checkpoint:
        raw = self._internal.get(CHECKPOINT_KEY)
        return Checkpoint(0, b"") if raw is None else Checkpoint.decode(raw)

    # -- writes --------------------------------------------------------------------------------

    def write(
        self,
        puts: Iterable[tuple[bytes, bytes]],
        checkpoint: Checkpoint,
        deletes: Iterable[bytes] = (),
        internal_puts: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Write ``deletes``, then ``puts`` and ``internal_puts`` (the internal column family),
        and the new checkpoint in one atomic WriteBatch."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        cache = self.cache
        touched: list[bytes] = []
        for key in deletes:
            batch.delete(key)
            if cache is not None and key.startswith(_CACHED_PREFIXES):
                touched.append(key)
        for key, value in puts:
            batch.put(key, value)
            if cache is not None and key.startswith(_CACHED_PREFIXES):
                touched.append(key)
        for key, value in internal_puts:
            batch.put(key, value, self._internal_handle)
        batch.put(CHECKPOINT_KEY, checkpoint.encode(), self._internal_handle)
        self._db.write(batch)
        if touched and cache is not None:
            cache.invalidate(touched)

    def flush_wal(self) -> None:
        """Make every write so far durable (fsync RocksDB's log)."""
        self._db.flush_wal(True)

    def size_bytes(self) -> int:
        """Bytes of every file in the database directory (tables, logs, manifest)."""
        total = 0
        with os.scandir(self.path) as entries:
            for entry in entries:
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue  # a compaction removed it while we looked
        return total

    def dump(self) -> list[tuple[bytes, bytes]]:
        """Every user key and value in order (tests and tools; memory grows with the DB)."""
        return [(bytes(k), bytes(v)) for k, v in self._db.items()]  # type: ignore[arg-type]

    def close(self) -> None:
        # rocksdict keeps the database open while a column family handle lives.
        self._internal_handle = None
        self._internal.close()
        self._db.close()


class SnapshotReader:
    """Point reads and prefix scans over one RocksDB snapshot (user keys)."""

    def __init__(self, snapshot: rocksdict.Snapshot) -> None:
        self._snapshot = snapshot

    def get(self, key: bytes) -> bytes | None:
        for raw_key, value in self._snapshot.items(from_key=key):
            return bytes(value) if cast(bytes, raw_key) == key else None
        return None

    def page(self, prefix: bytes, start: bytes, limit: int) -> ScanResult:
        """Up to ``limit`` entries under ``prefix`` from ``start``, as ``StoreDb.scan``."""
        return _page(self._snapshot, prefix, start, limit)

    def scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """Every entry under ``prefix``, in key order (callers bound what they ask for)."""
        read_opts = rocksdict.ReadOptions()
        bound = prefix_upper_bound(prefix)
        if bound is not None:
            read_opts.set_iterate_upper_bound(bound)
        out: list[tuple[bytes, bytes]] = []
        for raw_key, value in self._snapshot.items(from_key=prefix, read_opt=read_opts):
            key = cast(bytes, raw_key)
            if not key.startswith(prefix):
                break
            out.append((key, bytes(value)))
        return out
