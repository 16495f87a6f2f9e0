"""Readiness (health ``stemedb.ready``): the apply loop on a real WAL and a real RocksDB, in
process, with a listener that records what the loop reports."""

from __future__ import annotations

from pathlib import Path

from ingestor_testlib import assertion, write_wal
from prometheus_client import CollectorRegistry

from stemedb.ingestor import ApplyState, HaltInfo, IngestorConfig, StoreDb
from stemedb.ingestor._loop import ApplyLoop
from stemedb.ingestor._metrics import IngestorMetrics
from stemedb.wal import SyncMode, Wal, WalConfig
from tests.support import wait_until


class Recorder:
    """An ApplyListener that keeps the readiness changes with the applied LSN of each."""

    def __init__(self, state: ApplyState) -> None:
        self.state = state
        self.ready: list[tuple[bool, int, int]] = []  # (ready, applied LSN, watermark LSN)
        self.halts: list[HaltInfo] = []

    def on_applied(self, lsn: int) -> None:
        pass

    def on_halt(self, info: HaltInfo) -> None:
        self.halts.append(info)

    def on_ingesting(self, ingesting: bool) -> None:
        pass

    def on_ready(self, ready: bool) -> None:
        self.ready.append((ready, self.state.applied_lsn, self.state.watermark_lsn))


def run_loop(tmp_path: Path, **config: int) -> tuple[Recorder, ApplyState, StoreDb, ApplyLoop]:
    cfg = IngestorConfig(wal_dir=tmp_path / "wal", db_dir=tmp_path / "db", **config)  # type: ignore[arg-type]
    db = StoreDb(cfg.db_dir)
    state = ApplyState(0, b"")
    recorder = Recorder(state)
    loop = ApplyLoop(cfg, db, state, IngestorMetrics(CollectorRegistry(), state), recorder)
    loop.start()
    return recorder, state, db, loop


def test_ready_only_once_the_lag_is_within_the_bound(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", [assertion(i) for i in range(600)])
    recorder, state, db, loop = run_loop(
        tmp_path, apply_batch_records_max=1, ready_lag_records_max=50
    )
    try:
        wait_until(lambda: state.applied_lsn == last, 60, "the WAL applied")
        wait_until(lambda: bool(recorder.ready), 10, "a readiness report")
    finally:
        loop.stop()
        assert loop.join(30)
        db.close()
    # One change only: ready once no more than 50 durable records wait, never before.
    assert [r for r, _, _ in recorder.ready] == [True], recorder.ready
    _, applied, watermark = recorder.ready[0]
    assert watermark == last and watermark - applied <= 50
    assert applied >= last - 50 and applied < last  # it became ready while still applying


def test_a_halt_leaves_readiness(tmp_path: Path) -> None:
    last = write_wal(tmp_path / "wal", [assertion(i) for i in range(10)])
    wal = Wal.open(WalConfig(dir=tmp_path / "wal", sync_mode=SyncMode.NONE))
    wal.append([(1, b"\x00" * 32 + b"\xff\xff")])  # undecodable
    wal.close()
    recorder, state, db, loop = run_loop(tmp_path)
    try:
        wait_until(lambda: bool(recorder.halts), 30, "the halt")
    finally:
        loop.stop()
        assert loop.join(30)
        db.close()
    assert state.applied_lsn == last
    # Ready after the first batch of intact records at most, and not ready after the halt.
    assert recorder.ready[-1][0] is False
    assert not state.ready
