"""The Wal: exclusive writer, bounded queue, group commit on one thread, durable watermark.

Life of an append: the caller validates and encodes its records under the queue mutex (so LSN
order equals queue order), enqueues one ticket and sleeps on it. The committer thread takes as
many tickets as the group bounds allow, writes their frames with one write, makes them durable
with one fdatasync, publishes WATERMARK, and only then wakes the callers. Encoding happens on the
callers' threads so that it overlaps with the committer's fdatasync, which releases the GIL.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from stemedb.wal._config import SyncMode, WalConfig
from stemedb.wal._consumers import apply_retention
from stemedb.wal._encoder import (
    RECORD_PAYLOAD_BYTES_MAX,
    SEGMENT_HEADER_BYTES,
    encode_batch,
    frame_size_bytes,
)
from stemedb.wal._errors import (
    WalClosed,
    WalDiskFull,
    WalError,
    WalOverloaded,
    WalSequenceError,
)
from stemedb.wal._recovery import recover
from stemedb.wal._segment import acquire_lock, create_segment, fsync_dir, write_all
from stemedb.wal._watermark import WatermarkPublisher

__all__ = ["Wal"]

_log = logging.getLogger("stemedb.wal")
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class _LoopWaker:
    """One event loop's side of the hand-off: gathers its appends, coalesces their wake-ups.

    Going in, the appends made during one turn of the loop wait in ``gathered`` (touched by the
    loop's thread only) and are handed to the commit queue together at the end of the turn:
    one mutex acquisition and one wake-up of the commit thread for all of them, instead of a
    lock hand-off between the two threads per call.

    Coming back, ``call_soon_threadsafe`` writes to the loop's self-pipe and wakes it: once per
    completed append that is a syscall and a context switch per call. Here the first completion
    schedules one drain, and completions that land before the loop runs it ride along, so a
    group of hundreds of appends costs the loop about one wake-up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = threading.Lock()
        self._pending: list[asyncio.Future[None]] = []
        self._scheduled = False
        self.gathered: list[_Ticket] = []

    def wake(self, future: asyncio.Future[None]) -> None:
        with self._lock:
            self._pending.append(future)
            if self._scheduled:
                return
            self._scheduled = True
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            self._scheduled = False
        for future in pending:
            if not future.done():
                future.set_result(None)


class _Ticket:
    """One append call waiting for its group: its records, encoding, LSNs and outcome."""

    __slots__ = (
        "afuture",
        "callback",
        "count",
        "data",
        "deadline",
        "done",
        "error",
        "first_lsn",
        "records",
        "timestamp_ns",
        "waiter",
        "waker",
    )

    def __init__(self, records: list[tuple[int, bytes]]) -> None:
        self.records = records
        self.count = len(records)
        self.first_lsn = 0
        self.timestamp_ns = 0
        self.data = b""
        self.error: WalError | None = None
        self.done = False
        self.callback: Callable[[], None] | None = None
        self.afuture: asyncio.Future[None] | None = None
        self.waker: _LoopWaker | None = None
        self.deadline: float | None = None  # an asyncio append's, for its enqueue
        # A pre-acquired lock is the cheapest one-shot event CPython offers: the committer
        # releases it, the caller's acquire returns.
        self.waiter = threading.Lock()
        self.waiter.acquire()

    def encode(self, first_lsn: int) -> None:
        self.first_lsn = first_lsn
        self.data = encode_batch(first_lsn, self.records, self.timestamp_ns)

    def complete(self, error: WalError | None = None) -> None:
        self.error = error
        self.done = True
        self.waiter.release()
        if self.callback is not None:
            self.callback()
        if self.waker is not None and self.afuture is not None:
            self.waker.wake(self.afuture)


def sum_frame_bytes(ticket: _Ticket) -> int:
    """The encoded size of a ticket's frames."""
    return sum(frame_size_bytes(len(payload)) for _type, payload in ticket.records)


def _validate(records: Sequence[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    checked = []
    for index, (record_type, payload) in enumerate(records):
        if not isinstance(record_type, int) or not 1 <= record_type <= 255:
            raise ValueError(f"records[{index}]: record type must be an int in 1..255")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"records[{index}]: payload must be bytes")
        data = bytes(payload)
        if len(data) > RECORD_PAYLOAD_BYTES_MAX:
            raise ValueError(
                f"records[{index}]: payload of {len(data)} bytes exceeds {RECORD_PAYLOAD_BYTES_MAX}"
            )
        checked.append((record_type, data))
    return checked


class Wal:
    """The single writer of a WAL directory. Create with ``Wal.open(config)``."""

    def __init__(
        self,
        config: WalConfig,
        lock_fd: int,
        segment_first_lsn: int,
        segment_path: Path,
        end_offset: int,
        last_lsn: int,
    ) -> None:
        self._config = config
        self._dir = config.dir
        self._sync = config.sync_mode is SyncMode.FDATASYNC
        self._lock_fd = lock_fd
        self._fd = os.open(segment_path, os.O_WRONLY | os.O_APPEND)
        self._segment_first_lsn = segment_first_lsn
        self._segment_bytes = end_offset
        self._last_written_lsn = last_lsn
        self._durable_lsn = last_lsn
        self._watermark = WatermarkPublisher(self._dir)
        self._mutex = threading.Lock()
        # Held by whoever is committing (the commit thread or a producer on the fast path), so
        # that exactly one group is in flight and the segment state has one owner at a time.
        self._commit_lock = threading.Lock()
        self._work = threading.Condition(self._mutex)
        self._space = threading.Condition(self._mutex)
        self._queue: deque[_Ticket] = deque()
        self._wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaker] = (
            weakref.WeakKeyDictionary()
        )
        self._queued_records = 0
        self._queued_bytes = 0
        self._next_lsn = last_lsn + 1
        self._closing = False
        self._closed = False
        self._failed: WalError | None = None
        self._thread = threading.Thread(target=self._run, name="stemedb-wal-commit", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, config: WalConfig) -> Wal:
        """Create the directory if needed, take LOCK, recover the tail, start committing."""
        directory = config.dir
        sync = config.sync_mode is SyncMode.FDATASYNC
        if not sync:
            _log.warning(
                "WAL %s opened with sync_mode=NONE: NOTHING IS FSYNCED, acknowledged records "
                "can be lost on power failure. This mode exists for benchmarks only.",
                directory,
            )
        _make_dir_durably(directory, sync)
        lock_fd = acquire_lock(directory)
        try:
            recovered = recover(directory, sync)
            if config.retention:
                apply_retention(
                    directory,
                    config.retention_consumer_stale_seconds,
                    recovered.last_lsn,
                    config.observer,
                )
            return cls(
                config,
                lock_fd,
                recovered.segment_first_lsn,
                recovered.segment_path,
                recovered.end_offset,
                recovered.last_lsn,
            )
        except OSError as exc:
            os.close(lock_fd)
            if exc.errno in _DISK_FULL_ERRNOS:
                raise WalDiskFull(
                    f"no space left on the WAL volume {directory} during open: {exc}"
                ) from exc
            raise
        except BaseException:
            os.close(lock_fd)
            raise

    @property
    def config(self) -> WalConfig:
        return self._config

    @property
    def last_lsn(self) -> int:
        """Highest LSN assigned and written (possibly not yet durable)."""
        return self._last_written_lsn

    @property
    def durable_lsn(self) -> int:
        """Highest LSN fsynced; equal to the published WATERMARK."""
        return self._durable_lsn

    # -- appending ---------------------------------------------------------------------------

    def append(
        self, records: Sequence[tuple[int, bytes]], timeout_seconds: float | None = None
    ) -> list[int]:
        """Append records; return their consecutive LSNs once all of them are durable."""
        ticket = _Ticket(_validate(records))
        if ticket.count == 0:
            return []
        self._enqueue(ticket, _deadline(timeout_seconds), block=True, notify=False)
        # Fast path: when no commit is in progress, commit on the caller's own thread. A lone
        # producer then pays no thread hand-off at all (two context switches per append, a
        # large fraction of one fdatasync on a fast disk). Under contention the commit thread
        # (or whichever producer holds the commit lock) takes the ticket with its group.
        if self._commit_lock.acquire(blocking=False):
            try:
                self._commit_queued(until=ticket)
            finally:
                self._commit_lock.release()
            with self._mutex:
                if self._queue:
                    self._work.notify()
        else:
            with self._mutex:
                self._work.notify()
        ticket.waiter.acquire()
        return self._outcome(ticket)

    async def append_async(
        self, records: Sequence[tuple[int, bytes]], timeout_seconds: float | None = None
    ) -> list[int]:
        """``append`` for asyncio callers; never blocks the event loop."""
        ticket = _Ticket(_validate(records))
        if ticket.count == 0:
            return []
        loop = asyncio.get_running_loop()
        waker = self._wakers.get(loop)
        if waker is None:
            waker = self._wakers.setdefault(loop, _LoopWaker(loop))
        future = ticket.afuture = loop.create_future()
        ticket.waker = waker
        deadline = _deadline(timeout_seconds)
        if self._config.gather_async:
            # Handed to the queue with the rest of this loop turn's appends (_flush_gathered).
            ticket.deadline = deadline
            waker.gathered.append(ticket)
            if len(waker.gathered) == 1:
                loop.call_soon(self._flush_gathered, waker)
        elif not self._enqueue(ticket, deadline, block=False):
            # The queue is full: wait for space on a worker thread, not on the event loop.
            await loop.run_in_executor(None, self._enqueue, ticket, deadline, True)
        # A cancelled caller (its RPC ended) cancels only its own future, which the waker then
        # skips; the record may still commit, which is safe since a record is its hash.
        await future
        return self._outcome(ticket)

    def _flush_gathered(self, waker: _LoopWaker) -> None:
        """Hand one loop turn's appends to the commit queue under one mutex, in call order
        (so LSN order is call order); what does not fit waits for space on a worker thread."""
        tickets, waker.gathered = waker.gathered, []
        waiting = 0
        with self._mutex:
            for ticket in tickets:
                refusal = self._refusal_locked()
                if refusal is not None:
                    ticket.complete(refusal)
                    waiting += 1
                    continue
                if not self._fits_locked(ticket, sum_frame_bytes(ticket)):
                    break
                self._enqueue_locked(ticket)
                waiting += 1
            self._work.notify()
        rest = tickets[waiting:]
        if rest:
            waker.loop.run_in_executor(None, self._enqueue_blocking, rest)

    def _enqueue_blocking(self, tickets: list[_Ticket]) -> None:
        for ticket in tickets:
            try:
                self._enqueue(ticket, ticket.deadline, block=True)
            except WalError as exc:
                ticket.complete(exc)

    def _outcome(self, ticket: _Ticket) -> list[int]:
        if ticket.error is not None:
            raise ticket.error
        return list(range(ticket.first_lsn, ticket.first_lsn + ticket.count))

    def _enqueue(
        self, ticket: _Ticket, deadline: float | None, block: bool, notify: bool = True
    ) -> bool:
        size_bytes = sum_frame_bytes(ticket)
        with self._mutex:
            while True:
                refusal = self._refusal_locked()
                if refusal is not None:
                    raise refusal
                if self._fits_locked(ticket, size_bytes):
                    break
                if not block:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WalOverloaded(
                        f"WAL commit queue full ({self._queued_records} records, "
                        f"{self._queued_bytes} bytes waiting) past the deadline"
                    )
                self._space.wait(remaining)
            self._enqueue_locked(ticket)
            if notify:
                self._work.notify()
        return True

    def _refusal_locked(self) -> WalError | None:
        """Why no append is accepted now (a stopped or closed log), or None."""
        if self._failed is not None:
            return WalError(f"the WAL stopped after an error: {self._failed}")
        if self._closing:
            return WalClosed(f"the WAL {self._dir} is closed")
        return None

    def _fits_locked(self, ticket: _Ticket, size_bytes: int) -> bool:
        # An empty queue always admits one call, however large, so a batch bigger than the
        # bounds is slow rather than impossible.
        return not self._queue or (
            self._queued_records + ticket.count <= self._config.queue_records_max
            and self._queued_bytes + size_bytes <= self._config.queue_bytes_max
        )

    def _enqueue_locked(self, ticket: _Ticket) -> None:
        ticket.timestamp_ns = time.time_ns()
        ticket.encode(self._next_lsn)
        self._next_lsn += ticket.count
        self._queue.append(ticket)
        self._queued_records += ticket.count
        self._queued_bytes += len(ticket.data)

    # -- the commit thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._mutex:
                while not self._queue and not self._closing and self._failed is None:
                    self._work.wait()
            with self._commit_lock:
                self._commit_queued(until=None)
                with self._mutex:
                    if self._failed is not None or (self._closing and not self._queue):
                        return

    def _commit_queued(self, until: _Ticket | None) -> None:
        """Commit groups from the queue (caller holds ``_commit_lock``) until it is empty, or
        until ``until`` is done when a producer commits on its own thread."""
        while until is None or not until.done:
            with self._mutex:
                if self._failed is not None:
                    self._fail_queued_locked(self._failed)
                    return
                if not self._queue:
                    return
                group = self._take_group_locked()
                self._space.notify_all()
            try:
                self._commit(group)
            except Exception as exc:  # a bug or an unexpected error: stop rather than guess
                _log.exception("WAL commit failed")
                failure = (
                    exc if isinstance(exc, WalError) else WalError(f"WAL commit failed: {exc!r}")
                )
                with self._mutex:
                    self._failed = failure
                for ticket in group:
                    if not ticket.done:
                        ticket.complete(failure)

    def _take_group_locked(self) -> list[_Ticket]:
        config = self._config
        group = [self._queue.popleft()]
        records = group[0].count
        size_bytes = len(group[0].data)
        room_bytes = config.segment_size_bytes - self._segment_bytes
        while self._queue:
            nxt = self._queue[0]
            if (
                records + nxt.count > config.group_records_max
                or size_bytes + len(nxt.data) > config.group_bytes_max
                or size_bytes + len(nxt.data) > room_bytes
            ):
                break
            group.append(self._queue.popleft())
            records += nxt.count
            size_bytes += len(nxt.data)
        self._queued_records -= records
        self._queued_bytes -= size_bytes
        return group

    def _check_contiguous(self, group: list[_Ticket]) -> None:
        """Raise WalSequenceError unless the group's LSNs continue the log without a gap."""
        expected = self._last_written_lsn + 1
        for ticket in group:
            if ticket.first_lsn != expected:
                raise WalSequenceError(
                    f"WAL {self._dir}: a group about to be committed would write LSN "
                    f"{ticket.first_lsn} where LSN {expected} must come next; nothing of it "
                    f"was written"
                )
            expected += ticket.count

    def _commit(self, group: list[_Ticket]) -> None:
        self._check_contiguous(group)
        first_lsn = group[0].first_lsn
        last_lsn = group[-1].first_lsn + group[-1].count - 1
        data = group[0].data if len(group) == 1 else b"".join(t.data for t in group)
        start_offset = self._segment_bytes
        fsync_seconds = 0.0
        try:
            if (
                self._segment_bytes > SEGMENT_HEADER_BYTES
                and self._segment_bytes + len(data) > self._config.segment_size_bytes
            ):
                self._roll(first_lsn)
            start_offset = self._segment_bytes
            write_all(self._fd, data)
            self._segment_bytes += len(data)
            self._last_written_lsn = last_lsn
            if self._sync:
                started = time.perf_counter()
                os.fdatasync(self._fd)
                fsync_seconds = time.perf_counter() - started
            # Only after fdatasync returned may the watermark name these LSNs.
            self._watermark.publish(last_lsn)
        except OSError as exc:
            self._handle_os_error(group, exc, start_offset, first_lsn, last_lsn)
            return
        self._durable_lsn = last_lsn
        for ticket in group:
            ticket.complete()
        self._report(len(data), last_lsn - first_lsn + 1, fsync_seconds)

    def _report(self, bytes_written: int, records: int, fsync_seconds: float) -> None:
        slow = fsync_seconds >= self._config.fsync_warn_seconds
        if slow:
            _log.warning(
                "slow WAL fdatasync: %.3f s (warn at %.3f s)",
                fsync_seconds,
                self._config.fsync_warn_seconds,
            )
        observer = self._config.observer
        if observer is None:
            return
        try:
            observer.on_commit(records, bytes_written, fsync_seconds, self._durable_lsn)
            if slow:
                observer.on_slow_fsync(fsync_seconds)
        except Exception:
            _log.exception("WAL observer raised; ignored")

    def _roll(self, first_lsn: int) -> None:
        # The current segment needs no fsync here: every group in it was fdatasynced before its
        # callers were acknowledged. The new segment and its directory entry are made durable
        # before any record in it is acknowledged (create_segment fsyncs both).
        path = create_segment(self._dir, first_lsn, self._sync)
        new_fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.close(self._fd)
        self._fd = new_fd
        self._segment_first_lsn = first_lsn
        self._segment_bytes = SEGMENT_HEADER_BYTES
        if self._config.retention:
            try:
                apply_retention(
                    self._dir,
                    self._config.retention_consumer_stale_seconds,
                    self._durable_lsn,
                    self._config.observer,
                )
            except (OSError, ValueError):
                _log.exception("WAL retention failed; segments kept")

    def _handle_os_error(
        self, group: list[_Ticket], exc: OSError, start_offset: int, first_lsn: int, last_lsn: int
    ) -> None:
        if exc.errno in _DISK_FULL_ERRNOS:
            try:
                # Cut whatever part of the group reached the file: nothing partial may remain,
                # and the next group must start exactly where this one started.
                os.ftruncate(self._fd, start_offset)
                self._segment_bytes = start_offset
                self._last_written_lsn = self._durable_lsn
            except OSError as truncate_exc:
                self._fail_fatally(group, truncate_exc)
                return
            error = WalDiskFull(
                f"no space left on the WAL volume {self._dir} while writing LSNs "
                f"{first_lsn}..{last_lsn} ({exc.strerror}); nothing of them was kept"
            )
            with self._mutex:
                # Later queued tickets were numbered after this group; renumber them so LSNs
                # stay contiguous.
                next_lsn = first_lsn
                for ticket in self._queue:
                    ticket.encode(next_lsn)
                    next_lsn += ticket.count
                self._next_lsn = next_lsn
            _log.error("%s", error)
            for ticket in group:
                ticket.complete(error)
            return
        self._cut_back(start_offset)
        self._fail_fatally(group, exc)

    def _cut_back(self, durable_offset: int) -> None:
        """After a failed write or fdatasync, cut the segment back to its last durable offset.

        Linux reports a failed write-back once and then marks the pages clean, whether or not
        it keeps their new contents in the page cache: a later fdatasync (by this process or
        by a reopen) succeeds without writing them. Left in place, those bytes would read back
        as whole records and a reopen could name them in WATERMARK although they never reached
        the disk. Recovery rewrites any tail past the watermark before syncing it, so this cut
        is a first line of defence, not the only one (docs/faults.md)."""
        try:
            os.ftruncate(self._fd, durable_offset)
            self._segment_bytes = durable_offset
            self._last_written_lsn = self._durable_lsn
            _log.error(
                "WAL %s: cut the segment back to its last durable offset %d after an I/O error",
                self._dir,
                durable_offset,
            )
        except OSError as exc:
            _log.error(
                "WAL %s: could not cut the segment back to %d: %s", self._dir, durable_offset, exc
            )

    def _fail_fatally(self, group: list[_Ticket], exc: OSError) -> None:
        # After a failed write or fdatasync the kernel's view of the file is unknown (dirty
        # pages may have been dropped or kept as clean), so the only safe course is to stop and
        # let a reopen recover from what is on disk.
        failure = WalError(f"WAL I/O error in {self._dir}: {exc}; reopen the WAL to recover")
        _log.error("%s", failure)
        with self._mutex:
            self._failed = failure
            self._work.notify_all()
            self._space.notify_all()
        for ticket in group:
            ticket.complete(failure)

    def _fail_queued_locked(self, error: WalError) -> None:
        while self._queue:
            self._queue.popleft().complete(error)
        self._queued_records = 0
        self._queued_bytes = 0
        self._space.notify_all()

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued commits, stop the commit thread, release LOCK. Idempotent."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            self._work.notify_all()
            self._space.notify_all()
        self._thread.join()
        try:
            self._watermark.close(self._sync)
            with contextlib.suppress(OSError):
                os.close(self._fd)
        finally:
            os.close(self._lock_fd)

    def __enter__(self) -> Wal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _make_dir_durably(directory: Path, sync: bool) -> None:
    """Create ``directory`` (and missing parents) so that its entry survives a power loss.

    A directory entry is durable only once its parent is fsynced. The parent is fsynced even when
    the directory already existed: whoever created it (an operator, a provisioning script) may
    not have, and a lost WAL directory would lose every acknowledged record at once.
    """
    missing = []
    probe = directory
    while not probe.is_dir():
        missing.append(probe)
        probe = probe.parent
    directory.mkdir(parents=True, exist_ok=True)
    if sync:
        for created in reversed(missing):
            fsync_dir(created.parent)
        fsync_dir(directory.parent)


def _deadline(timeout_seconds: float | None) -> float | None:
    return None if timeout_seconds is None else time.monotonic() + timeout_seconds
