"""The apply loop: a thread that tails the WAL up to its watermark and applies it in batches.

It owns the WalReader and is the only writer of the database and of ``ApplyState``. It tells
the event loop about progress and halts through an ``ApplyListener`` (whose methods must only
schedule work on the event loop). Halting is final for the life of the process: the database
keeps serving reads at the last good LSN and an operator decides what to do (DESIGN section 5).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from typing import Protocol

from stemedb.ingestor._apply import ApplyEngine, ApplyOutcome
from stemedb.ingestor._config import IngestorConfig
from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._metrics import IngestorMetrics
from stemedb.ingestor._state import ApplyState, HaltInfo
from stemedb.runtime import log_event
from stemedb.wal import (
    ConsumerCheckpoint,
    WalCorruption,
    WalError,
    WalReader,
    WalRecord,
    write_consumer_checkpoint,
)

__all__ = ["ApplyListener", "ApplyLoop"]

_log = logging.getLogger("stemedb.ingestor")

_READ_CHUNK_RECORDS = 256  # records per read_available call; bounds bytes read past the limit
_IDLE_WAIT_SECONDS = 0.1  # longest sleep while caught up, so a stop request is seen quickly
_DIR_POLL_SECONDS = 0.2  # how often a missing WAL directory or WATERMARK is looked for
_RETRY_SECONDS_MIN = 0.1
_RETRY_SECONDS_MAX = 5.0


class ApplyListener(Protocol):
    """Called on the apply thread; implementations hand the news to the event loop."""

    def on_applied(self, lsn: int) -> None: ...

    def on_halt(self, info: HaltInfo) -> None: ...

    def on_ingesting(self, ingesting: bool) -> None: ...

    def on_ready(self, ready: bool) -> None: ...


class _Halt(Exception):
    def __init__(self, info: HaltInfo) -> None:
        super().__init__(info.reason)
        self.info = info


class _Stopped(Exception):
    """A stop was requested while waiting."""


def _corruption(exc: WalCorruption) -> HaltInfo:
    return HaltInfo("corruption", str(exc), exc.lsn, str(exc.file), exc.offset)


class ApplyLoop:
    def __init__(
        self,
        config: IngestorConfig,
        db: StoreDb,
        state: ApplyState,
        metrics: IngestorMetrics,
        listener: ApplyListener,
    ) -> None:
        self._cfg = config
        self._db = db
        self._engine = ApplyEngine(db, config.policy, wal_dir=config.wal_dir)
        self._state = state
        self._metrics = metrics
        self._listener = listener
        self._stop = threading.Event()
        self._reader: WalReader | None = None
        self._thread = threading.Thread(target=self._run, name="stemedb-apply", daemon=True)
        self._watermark_read = False  # readiness needs the lag, so a watermark read first
        self._published_lsn = -1
        self._published_at = 0.0
        self._sized_at = 0.0
        # Publishing the checkpoint costs a RocksDB log fsync and a file's tmp+fsync+rename+
        # fsync: tens of milliseconds on a busy disk. Done on the apply thread it stalled every
        # record behind it once a second (ack-to-visible p99 near 100 ms), so it runs on a
        # thread of its own, at most one publication in flight.
        self._publisher = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="stemedb-checkpoint"
        )
        self._publishing: concurrent.futures.Future[None] | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop after its current batch."""
        self._stop.set()

    def join(self, timeout_seconds: float) -> bool:
        self._thread.join(timeout_seconds)
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._refresh_db_size(force=True)
            self._tail()
        except _Stopped:
            pass
        except _Halt as halt:
            self._halt(halt.info)
        except Exception as exc:  # an unexpected failure stops applying, never serving reads
            _log.exception("apply loop failed")
            self._halt(HaltInfo("error", f"unexpected error: {exc!r}"))
        try:
            if self._state.halt is not None:
                while not self._stop.wait(self._cfg.db_size_refresh_seconds):
                    self._refresh_db_size(force=True)
        finally:
            self._publish_checkpoint(force=True)
            self._publisher.shutdown(wait=True)
            if self._reader is not None:
                self._reader.close()

    def _tail(self) -> None:
        self._wait_for(lambda: self._cfg.wal_dir.is_dir(), "waiting for the WAL directory")
        self._reader = WalReader(self._cfg.wal_dir, from_lsn=self._state.applied_lsn + 1)
        self._verify_checkpoint(self._reader)
        self._set_ingesting(True)
        self._publish_checkpoint(force=True)
        retry_seconds = _RETRY_SECONDS_MIN
        while not self._stop.is_set():
            try:
                records, corruption = self._read_batch(self._reader)
            except OSError as exc:  # e.g. a network volume that went away: retry, do not halt
                self._set_ingesting(False)
                log_event(
                    _log,
                    logging.ERROR,
                    "WAL read failed, retrying",
                    error=str(exc),
                    retry_seconds=retry_seconds,
                )
                if self._stop.wait(retry_seconds):
                    return
                retry_seconds = min(retry_seconds * 2, _RETRY_SECONDS_MAX)
                self._reader.close()
                self._reader = WalReader(self._cfg.wal_dir, self._state.applied_lsn + 1)
                continue
            retry_seconds = _RETRY_SECONDS_MIN
            self._set_ingesting(True)
            if records:
                self._apply(records)
            if corruption is not None:
                # The reader returned every intact record before the damage first: nothing
                # below it is left unapplied.
                raise _Halt(_corruption(corruption))
            self._chores()
            if not records:
                if self._engine.settling:
                    # Retirements settle while no record waits, at most half the time: the
                    # pause (which a new record ends) leaves the GIL to the RPC threads.
                    started = time.perf_counter()
                    self._engine.settle()
                    self._reader.wait(time.perf_counter() - started)
                else:
                    self._reader.wait(_IDLE_WAIT_SECONDS)

    def _read_batch(self, reader: WalReader) -> tuple[list[WalRecord], WalCorruption | None]:
        """Up to the batch bounds of durable records; a corruption ends the batch early."""
        state = self._state
        try:
            watermark = reader.watermark()
        except WalCorruption as exc:
            return [], exc
        state.watermark_lsn = max(state.watermark_lsn, watermark)
        self._watermark_read = True
        records: list[WalRecord] = []
        payload_bytes = 0
        corruption: WalCorruption | None = None
        records_max = self._cfg.apply_batch_records_max
        # Caught up (nothing durable past the next LSN): no read, which would only look at
        # WATERMARK a second time.
        more = reader.next_lsn <= watermark
        while (
            more and len(records) < records_max and payload_bytes < self._cfg.apply_batch_bytes_max
        ):
            want = min(_READ_CHUNK_RECORDS, records_max - len(records))
            try:
                chunk = reader.read_available(want)
            except WalCorruption as exc:
                corruption = exc
                break
            except WalError as exc:  # e.g. the next LSN was deleted by retention
                raise _Halt(HaltInfo("wal", str(exc), reader.next_lsn)) from exc
            records.extend(chunk)
            payload_bytes += sum(len(r.payload) for r in chunk)
            if len(chunk) < want:
                break
        if records:
            state.watermark_lsn = max(state.watermark_lsn, records[-1].lsn)
            state.oldest_unapplied_ns = records[0].timestamp_ns
        elif state.applied_lsn >= state.watermark_lsn:
            state.oldest_unapplied_ns = None
        self._progress()
        return records, corruption

    def _apply(self, records: list[WalRecord]) -> ApplyOutcome:
        started = time.perf_counter()
        outcome = self._engine.apply(records)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        state = self._state
        if outcome.checkpoint is not None:
            state.applied_checksum = outcome.checkpoint.checksum
            state.applied_lsn = outcome.checkpoint.lsn  # published after the batch is written
            for kind, count in outcome.records_by_kind.items():
                self._metrics.records_applied.labels(kind).inc(count)
            self._listener.on_applied(state.applied_lsn)
        if outcome.failure is not None:
            failed = records[outcome.failure.lsn - records[0].lsn]
            state.oldest_unapplied_ns = failed.timestamp_ns
        elif state.applied_lsn >= state.watermark_lsn:
            state.oldest_unapplied_ns = None
        else:
            # The next unapplied record is at most as old as the last one applied.
            state.oldest_unapplied_ns = outcome.last_timestamp_ns
        self._progress()
        if outcome.failure is not None:
            f = outcome.failure
            raise _Halt(
                HaltInfo(
                    "undecodable",
                    f"undecodable record: file {f.segment}, offset {f.offset}, lsn {f.lsn}: "
                    f"{f.reason}",
                    f.lsn,
                    f.segment,
                    f.offset,
                )
            )
        return outcome

    # -- start-up ------------------------------------------------------------------------------

    def _wait_for(self, ready: _Predicate, message: str) -> None:
        logged = False
        while not ready():
            if not logged:
                log_event(_log, logging.WARNING, message, wal_dir=str(self._cfg.wal_dir))
                logged = True
            if self._stop.wait(_DIR_POLL_SECONDS):
                raise _Stopped
        if logged:
            log_event(_log, logging.INFO, "WAL found", wal_dir=str(self._cfg.wal_dir))

    def _verify_checkpoint(self, reader: WalReader) -> None:
        """Halt ("diverged") unless the log still holds the checkpointed record unchanged."""
        lsn, checksum = self._state.applied_lsn, self._state.applied_checksum
        if lsn == 0:
            return
        self._wait_for(reader.has_watermark, "waiting for the WAL's WATERMARK")
        try:
            watermark = reader.watermark()
            record = reader.record_at(lsn)
        except WalCorruption as exc:
            raise _Halt(_corruption(exc)) from exc
        if record is None:
            if watermark < lsn:
                reason = (
                    f"diverged: the WAL's durable watermark is LSN {watermark}, below the "
                    f"checkpointed LSN {lsn}"
                )
                raise _Halt(HaltInfo("diverged", reason, lsn, str(self._cfg.wal_dir)))
            if reader.first_available_lsn() == lsn + 1:
                log_event(
                    _log,
                    logging.WARNING,
                    "checkpointed record was removed by retention; resuming after it",
                    lsn=lsn,
                )
                return
            reason = f"diverged: the WAL no longer holds the checkpointed LSN {lsn}"
            raise _Halt(HaltInfo("diverged", reason, lsn, str(self._cfg.wal_dir)))
        if record.checksum != checksum:
            reason = (
                f"diverged: WAL record {lsn} has checksum {bytes(record.checksum).hex()}, "
                f"the checkpoint says {checksum.hex()}"
            )
            raise _Halt(HaltInfo("diverged", reason, lsn, str(record.segment), record.offset))

    # -- housekeeping --------------------------------------------------------------------------

    def _set_ingesting(self, ingesting: bool) -> None:
        if self._state.ingesting != ingesting:
            self._state.ingesting = ingesting
            self._listener.on_ingesting(ingesting)
        self._refresh_ready()

    def _progress(self) -> None:
        self._metrics.progress(self._state)
        self._refresh_ready()

    def _refresh_ready(self) -> None:
        """Ready: applying (not halted, WAL readable) and the lag within the documented bound."""
        state = self._state
        ready = (
            state.ingesting
            and state.halt is None
            and self._watermark_read
            and state.watermark_lsn - state.applied_lsn <= self._cfg.ready_lag_records_max
        )
        if ready != state.ready:
            state.ready = ready
            self._metrics.ready.set(1 if ready else 0)
            self._listener.on_ready(ready)

    def _halt(self, info: HaltInfo) -> None:
        state = self._state
        state.halt = info
        self._set_ingesting(False)
        if state.oldest_unapplied_ns is None and state.watermark_lsn > state.applied_lsn:
            state.oldest_unapplied_ns = time.time_ns()
        self._metrics.halt(info)
        log_event(
            _log,
            logging.ERROR,
            "apply halted",
            cause=info.cause,
            reason=info.reason,
            file=info.file,
            offset=info.offset,
            lsn=info.lsn,
            applied_lsn=state.applied_lsn,
        )
        self._listener.on_halt(info)

    def _chores(self) -> None:
        self._publish_checkpoint(force=False)
        self._refresh_db_size(force=False)

    def _publish_checkpoint(self, force: bool) -> None:
        """Refresh consumers/<name>.json (periodically in the background; at start and stop in
        the foreground, after any background publication has finished)."""
        now = time.monotonic()
        state = self._state
        busy = self._publishing is not None and not self._publishing.done()
        if not force and (
            busy
            or state.applied_lsn == self._published_lsn
            or now - self._published_at < self._cfg.checkpoint_publish_seconds
        ):
            return
        if not self._cfg.wal_dir.is_dir():
            return
        # Read on the apply thread, so LSN and checksum belong to the same record.
        lsn, checksum = state.applied_lsn, state.applied_checksum
        self._published_at = now
        if force:
            if self._publishing is not None:
                self._publishing.result()
            self._write_checkpoint(lsn, checksum)
        else:
            self._publishing = self._publisher.submit(self._write_checkpoint, lsn, checksum)

    def _write_checkpoint(self, lsn: int, checksum: bytes) -> None:
        try:
            # The published LSN lets the writer delete WAL segments: make it durable here first.
            self._db.flush_wal()
            write_consumer_checkpoint(
                self._cfg.wal_dir,
                ConsumerCheckpoint(self._cfg.name, lsn, checksum, time.time_ns()),
            )
        except (OSError, ValueError) as exc:
            log_event(_log, logging.WARNING, "cannot publish consumer checkpoint", error=str(exc))
            return
        self._published_lsn = lsn

    def _refresh_db_size(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._sized_at >= self._cfg.db_size_refresh_seconds:
            self._sized_at = now
            try:
                self._metrics.db_size_bytes.set(self._db.size_bytes())
            except OSError as exc:
                log_event(_log, logging.WARNING, "cannot measure the database", error=str(exc))


class _Predicate(Protocol):
    def __call__(self) -> bool: ...
