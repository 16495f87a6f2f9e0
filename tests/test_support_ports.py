"""tests/support.py free_port(): ports outside the ephemeral range, never the same port to two
processes on the machine (a flock'd cursor under /tmp), and only ports bindable right now."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import support
from tests.support import ROOT, ephemeral_port_range, free_port, ports_for_tests

PROCESSES = 8
PORTS_EACH = 50

# Each child imports the helper, says it is ready, waits for the common start signal (so that
# all of them allocate at the same time), then takes its ports, holding none of them open.
CHILD = """
import json, sys, time
from pathlib import Path
from tests.support import free_port
go = Path(sys.argv[1])
print("ready", flush=True)
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.005)
print(json.dumps([free_port() for _ in range(int(sys.argv[2]))]), flush=True)
"""


def test_parallel_processes_never_share_a_port_and_stay_outside_the_ephemeral_range(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    argv = [sys.executable, "-c", CHILD, str(go), str(PORTS_EACH)]
    pipe = subprocess.PIPE
    children = [
        subprocess.Popen(argv, cwd=ROOT, stdout=pipe, stderr=pipe, text=True)
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        go.touch()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait(timeout=30)
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    taken = [port for out, _ in outputs for port in json.loads(out)]
    assert len(taken) == PROCESSES * PORTS_EACH
    duplicates = sorted({p for p in taken if taken.count(p) > 1})
    assert not duplicates, f"ports handed to two allocations: {duplicates}"
    first, last = ephemeral_port_range()
    inside = sorted(p for p in taken if first <= p <= last)
    assert not inside, f"ports inside the ephemeral range {first}-{last}: {inside}"
    assert all(p in ports_for_tests() for p in taken)


def test_the_range_is_outside_the_ephemeral_range_and_large() -> None:
    first, last = ephemeral_port_range()
    ports = ports_for_tests()
    assert ports.stop - 1 < first or ports.start > last
    assert len(ports) >= support.TEST_PORTS_MIN and ports.start >= 1024


def test_a_busy_port_is_skipped_and_the_cursor_wraps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = ports_for_tests()
    cursor = tmp_path / "cursor"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", free_port()))  # a real allocation: nobody else holds it
        busy.listen(1)
        held = busy.getsockname()[1]
        monkeypatch.setattr(support, "PORT_CURSOR_FILE", cursor)
        cursor.write_text(f"{held}\n")
        got = free_port()
        assert got != held and got in ports, (held, got)
    # From the top of the range the cursor goes back to its start: the last port if it is free
    # right now (another process may hold it), else one of the first ones.
    cursor.write_text(f"{ports[-1]}\n")
    got = free_port()
    assert got == ports[-1] or ports.index(got) < 100, got
    assert int(cursor.read_text()) == ports[(ports.index(got) + 1) % len(ports)]


def test_a_corrupt_cursor_file_is_restarted_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cursor = tmp_path / "cursor"
    cursor.write_bytes(b"\x00garbage")
    monkeypatch.setattr(support, "PORT_CURSOR_FILE", cursor)
    port = free_port()
    assert port in ports_for_tests()
    assert int(cursor.read_text()) != port  # the cursor moved past the port it handed out
