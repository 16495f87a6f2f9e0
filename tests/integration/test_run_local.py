"""`make run` as a newcomer meets it, on a real terminal (a pty): each service's lines carry its
name, the banner says what runs, what to try and where the data is, and a second start says
how many records the log already holds."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from tests.ptylib import PtyProcess, strip_ansi
from tests.support import BIN, ROOT, free_port

_START_SECONDS = 90.0


def _start(tmp_path: Path, ports: list[int]) -> PtyProcess:
    flags = ["--writer-listen", "--writer-metrics-listen", "--ingestor-listen",
             "--ingestor-metrics-listen", "--gateway-listen"]  # fmt: skip
    argv = [sys.executable, str(ROOT / "tools" / "run_local.py")]
    for flag, port in zip(flags, ports, strict=True):
        argv += [flag, f"127.0.0.1:{port}"]
    return PtyProcess(argv, cwd=tmp_path, env={"PYTHONUNBUFFERED": "1"})


def _tried_commands(shown: str) -> list[str]:
    block = strip_ansi(shown).split("Try, in another terminal:\n", 1)[1]
    return [line.strip() for line in block.splitlines() if line.startswith("  .venv/bin/stemedb")]


def test_make_run_banner_and_prefixed_console_logs(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(5)]
    first = _start(tmp_path, ports)
    try:
        first.wait_for(r"^StemeDB is running", _START_SECONDS)
        first.wait_for(r"--help$", 10)  # the whole banner
        shown = strip_ansi(first.text)
        # Each service's lines: its name, then a readable console line (no JSON).
        assert re.search(
            r"^writer   \| \d\d:\d\d:\d\d\.\d{3} INFO  writer started ", shown, re.M
        ), shown
        assert re.search(r"^ingestor \| \d\d:\d\d:\d\d\.\d{3} INFO ", shown, re.M), shown
        assert re.search(r"^writer   \| .* created a new WAL in data/wal$", shown, re.M), shown
        assert '{"ts"' not in shown
        assert "WARNING" not in shown, "nothing alarming on a first start"
        assert "\x1b[" in first.text, "colours on a terminal"
        assert f"writer    gRPC 127.0.0.1:{ports[0]} " in shown
        assert f"metrics http://127.0.0.1:{ports[1]}/metrics" in shown
        assert f"ingestor  gRPC 127.0.0.1:{ports[2]} " in shown
        assert f"gateway   HTTP http://127.0.0.1:{ports[4]}/ (the explorer)" in shown
        assert f"Data: {(tmp_path / 'data').resolve()} (WAL in wal/, RocksDB in db/)" in shown
        assert "the log is new (no records yet)" in shown
        commands = _tried_commands(first.text)
        assert len(commands) >= 3 and commands[0].endswith("assert Q42 name 'Douglas Adams'")
        # The printed commands work as printed (against the moved ports).
        for command in commands[:2]:
            argv = shlex.split(command)
            argv[0] = str(BIN / "stemedb")
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
    finally:
        code = first.stop(signal.SIGINT)
    assert code == 0, first.text
    second = _start(tmp_path, ports)
    try:
        second.wait_for(r"the log already holds 1 record\.$", _START_SECONDS)
        assert "created a new WAL" not in strip_ansi(second.text)
    finally:
        code = second.stop(signal.SIGINT)
    assert code == 0, second.text
