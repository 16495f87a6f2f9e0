"""The README's quick start, run verbatim: `make run`'s launcher, then the printed commands."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SERVING, health_status, wait_until

README = ROOT / "README.md"


def _quickstart_commands() -> list[str]:
    text = README.read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    assert blocks[0].strip() == "make run"
    commands = [line for line in blocks[1].splitlines() if line.strip()]
    assert commands and all(c.startswith(".venv/bin/stemedb ") for c in commands)
    return commands


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_readme_quickstart(tmp_path: Path) -> None:
    for port in (50051, 50052, 9101, 9102, 8080):
        if not _port_free(port):
            pytest.fail(f"port {port} is busy: stop your own `make run` to run this test")
    commands = _quickstart_commands()
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "run_local.py")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        try:
            wait_until(
                lambda: health_status("127.0.0.1:50051") == SERVING
                and health_status("127.0.0.1:50052") == SERVING,
                60, "make run's services",
            )  # fmt: skip
        except AssertionError as exc:
            launcher.send_signal(signal.SIGINT)
            out, _ = launcher.communicate(timeout=60)
            raise AssertionError(f"{exc}; what make run printed:\n{out.decode()}") from None
        bin_dir = Path(sys.executable).parent
        outputs = []
        for command in commands:
            argv = shlex.split(command)
            argv[0] = str(bin_dir / "stemedb")
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path)
            assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
            outputs.append(done.stdout)
        # `assert` prints the very hash that the README's `get` line reads back.
        printed_hash = outputs[0].split()[0]
        assert printed_hash in commands[1]
        assert '"Douglas Adams"' in outputs[1]
        assert printed_hash in outputs[2] and printed_hash in outputs[3]
        resolved = outputs[4]  # `resolve`: the winner is the one assertion, by its hash
        assert "status     RESOLVED" in resolved and f"winner     {printed_hash}" in resolved
        assert '"Douglas Adams"' in resolved
        assert (tmp_path / "data" / "wal").is_dir() and (tmp_path / "data" / "db").is_dir()
    finally:
        if launcher.returncode is None:
            launcher.send_signal(signal.SIGINT)
        out, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 0, out.decode(errors="replace")
    assert b"StemeDB is running" in out
    assert b"writer   | " in out and b"ingestor | " in out, "each service's lines carry its name"
