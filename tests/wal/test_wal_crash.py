"""Crash tests: a child appends from several threads and is SIGKILLed at random moments.

After each kill the parent reopens the log (running recovery) and checks that every
acknowledged record is present and intact, LSNs are contiguous and no torn record is visible.
STEMEDB_TEST_SEED replays a run.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from blake3 import blake3

from stemedb.wal import Wal, WalConfig, WalReader, verify_wal

CHILD = Path(__file__).with_name("crash_child.py")
SEGMENT_SIZE_BYTES = 256 * 1024  # small, so that kills also land around segment roll-overs


def _run_kills(directory: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    acked: dict[int, str] = {}
    checked_to = 0
    started = time.monotonic()
    for kill in range(kills):
        with subprocess.Popen(
            [sys.executable, str(CHILD), str(directory), str(rng.randrange(2**31)),
             str(SEGMENT_SIZE_BYTES)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ) as child:  # fmt: skip
            try:
                assert child.stdout is not None
                ready, _, _ = select.select([child.stdout], [], [], 60)
                assert ready, "child did not start"
                first = child.stdout.readline()
                assert first == b"READY\n", (first, child.stderr.read() if child.stderr else b"")
                time.sleep(rng.uniform(0.0, 0.12))
            finally:
                child.send_signal(signal.SIGKILL)
            output, _ = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL
        new = 0
        for line in output.decode().splitlines():
            parts = line.split()
            if len(parts) == 2:  # a line cut by the kill is never an ack we rely on
                lsn = int(parts[0])
                assert lsn not in acked, f"LSN {lsn} acknowledged twice"
                acked[lsn] = parts[1]
                new += 1
        with Wal.open(WalConfig(dir=directory, segment_size_bytes=SEGMENT_SIZE_BYTES)) as wal:
            durable = wal.durable_lsn
        assert max(acked, default=0) <= durable, f"kill {kill}: acknowledged LSN beyond the log"
        # Read (and checksum) everything written since the previous check, in order.
        expected = checked_to + 1
        with WalReader(directory, from_lsn=expected) as reader:
            while batch := reader.read_available():
                for record in batch:
                    assert record.lsn == expected
                    if record.lsn in acked:
                        assert blake3(record.payload).hexdigest() == acked[record.lsn]
                    expected += 1
        assert expected - 1 == durable
        missing = [lsn for lsn in acked if lsn > checked_to and lsn > durable]
        assert not missing
        checked_to = durable
        if kill % 25 == 24 or kill == kills - 1:
            report = verify_wal(directory)
            assert report.ok, report.errors
            assert report.last_lsn == durable
            with WalReader(directory) as reader:
                for lsn in rng.sample(sorted(acked), min(200, len(acked))):
                    found = reader.record_at(lsn)
                    assert found is not None and blake3(found.payload).hexdigest() == acked[lsn]
        if kill < 3 or kill % 50 == 0:
            print(f"kill {kill}: {new} new acks, durable LSN {durable}")
    elapsed = time.monotonic() - started
    print(f"{kills} kills, {len(acked)} acknowledged records verified, {elapsed:.1f} s")
    assert acked, "the child never acknowledged anything"


def test_sigkill_during_concurrent_appends(tmp_path: Path, seed: int) -> None:
    _run_kills(tmp_path / "wal", int(os.environ.get("STEMEDB_WAL_CRASH_KILLS", "50")), seed)


@pytest.mark.torture
@pytest.mark.timeout(3600)
def test_sigkill_torture(tmp_path: Path, seed: int) -> None:
    _run_kills(tmp_path / "wal", 500, seed)
