"""Power loss under load: the writer's WAL on powerfs, clients recording every acknowledged
receipt, SIGKILL of writer and ingestor at a random moment, then a power cut (every un-fsynced
byte and directory entry dropped), remount, restart.

After every cut: each acknowledged (LSN, hash) is on the log, whole and intact, LSNs are
contiguous, the writer's recovery ends in a clean start, and the ingestor (DB on a normal disk,
so it survives the cut) never holds a record the log lost and catches up to the durable LSN.
The same harness run with ``--sync none`` (the WAL's SyncMode.NONE: nothing fsynced) must LOSE
acknowledged records: proof that powerfs drops what was not fsynced and that the checks see it.

Seeded: the seed is printed; STEMEDB_TEST_SEED replays. ``make torture`` runs >= 100 cuts
(STEMEDB_POWER_CUTS).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from stemedb import canonical
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc
from stemedb.wal import WalReader, verify_wal
from stemedb.wal._segment import fsync_dir
from tests.faults.faultlib import Load, missing_acked, wal_contents
from tests.faults.powerfs import PowerFS
from tests.support import (
    NOT_SERVING,
    Service,
    health_status,
    scan_all,
    start_ingestor,
    start_writer,
    wait_until,
)


@dataclass
class Outcome:
    cuts: int = 0
    partial_cuts: int = 0
    live_cuts: int = 0
    acknowledged: int = 0
    lost: int = 0
    dropped_bytes: int = 0
    torn_tails: int = 0
    kept_unacked: int = 0  # records on the log that no client saw acknowledged (allowed)
    durable_lsn: int = 0
    ingested: int = 0
    lost_lsns: list[int] = field(default_factory=list)
    corruption: str = ""


def _ingestor_available() -> bool:
    from tests.support import BIN

    if (BIN / "stemedb-ingestor").exists():
        return True
    import importlib.util

    return importlib.util.find_spec("stemedb.ingestor.__main__") is not None


def _applied_lsn(target: str, min_lsn: int) -> int:
    with grpc.insecure_channel(target) as ch:
        got = store_pb2_grpc.StoreServiceStub(ch).Get(
            spb.GetRequest(key=b"H:" + b"0" * 64, min_lsn=min_lsn), timeout=60
        )
    return int(got.applied_lsn)


def _final_check(
    wal_dir: Path, db_dir: Path, logs: Path, acked: dict[int, bytes], ingest: bool,
    writer_flags: tuple[str, ...], services: list[Service],
) -> tuple[int, int]:  # fmt: skip
    """Restart once more: a clean start, every acknowledged record readable from the log and,
    when the ingestor exists, through it, with nothing there that the log does not hold."""
    writer = start_writer(wal_dir, *writer_flags, log_dir=logs)
    services[:] = [writer]
    writer.wait_ready(timeout_seconds=60)
    on_disk = wal_contents(wal_dir)
    assert not missing_acked(acked, on_disk)
    with WalReader(wal_dir) as reader:
        durable = reader.watermark()
    assert durable == len(on_disk), "after recovery the watermark covers the whole log"
    if not ingest:
        return durable, 0
    ingestor = start_ingestor(wal_dir, db_dir, log_dir=logs)
    services.append(ingestor)
    ingestor.wait_ready(timeout_seconds=60)
    assert _applied_lsn(ingestor.listen, durable) == durable
    stored = {
        key[2:].decode(): canonical.record_hash(pb.Record.FromString(value))
        for key, value in scan_all(ingestor.listen, b"H:", durable)
    }
    assert all(h.hex() == k for k, h in stored.items()), "a stored record has another hash"
    missing = {h.hex() for h in acked.values()} - set(stored)
    assert not missing, f"{len(missing)} acknowledged records not readable through the ingestor"
    assert set(stored) == {h.hex() for h in on_disk.values()}, (
        "the ingestor holds records the log does not hold (or misses some it does)"
    )
    assert health_status(ingestor.listen, "stemedb.ingest") != NOT_SERVING
    return durable, len(stored)


def run_power_cuts(
    tmp_path: Path, seed: int, cuts: int, *, writer_flags: tuple[str, ...] = (),
    ingest: bool = True, durable_wal_dir: bool = True, partial_cuts: bool = True,
) -> Outcome:  # fmt: skip
    rng = random.Random(seed)
    fs = PowerFS(tmp_path / "backing", tmp_path / "mnt")
    wal_dir, db_dir, logs = tmp_path / "mnt" / "wal", tmp_path / "db", tmp_path / "logs"
    logs.mkdir()
    ingest = ingest and _ingestor_available()
    acked: dict[int, bytes] = {}
    out = Outcome()
    services: list[Service] = []
    fs.mount()
    if durable_wal_dir:
        # As a deployment would (a volume or a directory made once): the WAL directory's own
        # name is durable before the writer first starts. See test_fresh_wal_dir_... below.
        wal_dir.mkdir()
        fsync_dir(wal_dir.parent)
    try:
        for cut in range(cuts):
            segment_bytes = str(rng.choice([64, 256]) * 1024)
            writer = start_writer(
                wal_dir, "--segment-size-bytes", segment_bytes, *writer_flags, log_dir=logs
            )
            services = [writer]
            writer.wait_ready(timeout_seconds=60)  # recovery must end in a clean start
            if ingest:
                services.append(start_ingestor(wal_dir, db_dir, log_dir=logs))
            load = Load(writer.listen, threads=rng.choice([4, 8]), seed=rng.randrange(2**31),
                        tag=f"s{seed}c{cut}")  # fmt: skip
            wait_until(lambda ld=load: ld.count() >= 30, 60, "acknowledged appends")
            time.sleep(rng.uniform(0, 0.4))  # a random moment under load
            # Half the cuts drop all un-fsynced state; half write back a random part of it first
            # (sectors, lengths, directories), which leaves torn tails for recovery to handle.
            partial = rng.randrange(2**31) if rng.random() < 0.5 else None
            partial = partial if partial_cuts else None
            out.partial_cuts += partial is not None
            # Half the time the power goes while the services run (in-flight groups are written
            # but not yet fsynced); half the time they are SIGKILLed first, then the power goes.
            live = rng.random() < 0.5
            out.live_cuts += live
            if live:
                out.dropped_bytes += int(fs.cut(partial_seed=partial).get("volatile_bytes", 0))
            for svc in services:
                svc.kill()
            for lsn, h in load.stop():
                assert acked.get(lsn, h) == h, f"LSN {lsn} acknowledged twice for different records"
                acked[lsn] = h
            if not live:
                out.dropped_bytes += int(fs.cut(partial_seed=partial).get("volatile_bytes", 0))
            out.cuts += 1
            fs.mount()
            # What the disk holds right after the power came back, before anything repairs it.
            report = verify_wal(wal_dir) if wal_dir.exists() else None
            if report is not None and not report.ok:
                out.corruption = f"cut {cut}: WAL corrupt after power loss: {report.errors}"
                first_bad = min(e.lsn for e in report.errors)
                out.lost_lsns = sorted(lsn for lsn in acked if lsn >= first_bad)
                break
            out.torn_tails += bool(report and report.warnings)
            on_disk = wal_contents(wal_dir) if wal_dir.exists() else {}
            out.kept_unacked = len(on_disk) - len(set(on_disk) & set(acked))
            lost = missing_acked(acked, on_disk)
            if lost:
                out.lost_lsns = lost
                break
        if not out.lost_lsns:
            out.durable_lsn, out.ingested = _final_check(wal_dir, db_dir, logs, acked, ingest,
                                                         writer_flags, services)  # fmt: skip
    finally:
        for svc in services:
            svc.kill()
        fs.stop()
    out.acknowledged = len(acked)
    out.lost = len(out.lost_lsns)
    print(
        f"power-loss summary: seed={seed} cuts={out.cuts} (partial {out.partial_cuts}, "
        f"live {out.live_cuts}) acknowledged={out.acknowledged} "
        f"lost={out.lost} dropped_unsynced_bytes={out.dropped_bytes} "
        f"torn_tails_seen={out.torn_tails} kept_unacknowledged={out.kept_unacked} "
        f"durable_lsn={out.durable_lsn} ingested={out.ingested} "
        f"writer_flags={' '.join(writer_flags) or '-'}"
    )
    return out


def test_power_cuts_lose_nothing_acknowledged(tmp_path: Path, seed: int, powerfs_ok: None) -> None:
    cuts = int(os.environ.get("STEMEDB_POWER_CUTS_SHORT", "5"))
    out = run_power_cuts(tmp_path, seed, cuts)
    assert not out.corruption, out.corruption
    assert out.lost == 0, f"acknowledged LSNs lost: {out.lost_lsns[:20]}"
    assert out.cuts == cuts and out.acknowledged > 0


def test_harness_detects_loss_without_fsync(tmp_path: Path, seed: int, powerfs_ok: None) -> None:
    """The same run with the WAL's SyncMode.NONE (``--sync none``): acknowledged records ARE
    lost at the first cut. If this ever passes with lost == 0, powerfs stopped dropping
    un-fsynced data and the test above proves nothing."""
    out = run_power_cuts(
        tmp_path, seed, 3, writer_flags=("--sync", "none"), ingest=False, partial_cuts=False
    )
    assert out.lost > 0, "powerfs did not drop un-fsynced, acknowledged records"
    assert out.dropped_bytes > 0


def test_fresh_wal_dir_survives_power_cut(tmp_path: Path, seed: int, powerfs_ok: None) -> None:
    """The writer creates a missing --wal-dir itself: that directory entry must be durable
    before the first record is acknowledged."""
    out = run_power_cuts(tmp_path, seed, 1, ingest=False, durable_wal_dir=False, partial_cuts=False)
    assert out.lost == 0, f"{out.lost} of {out.acknowledged} acknowledged records lost"


@pytest.mark.torture
def test_power_cuts_torture(tmp_path: Path, seed: int, powerfs_ok: None) -> None:
    cuts = int(os.environ.get("STEMEDB_POWER_CUTS", "100"))
    out = run_power_cuts(tmp_path, seed, cuts)
    assert not out.corruption, out.corruption
    assert out.lost == 0, f"acknowledged LSNs lost: {out.lost_lsns[:20]}"
    assert out.cuts == cuts
