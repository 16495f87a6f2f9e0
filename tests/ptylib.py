"""Run a real process on a pseudo-terminal and read what it shows, as a person at a terminal
would see it (the `pty` module: the child's stdout and stderr are a terminal)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

READ_CHUNK_BYTES = 65536


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class PtyProcess:
    """A child whose stdin, stdout and stderr are the slave side of a new pty."""

    def __init__(
        self, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        master, slave = pty.openpty()
        self._master = master
        self._buffer = bytearray()
        try:
            self.proc = subprocess.Popen(
                list(argv), stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(slave)

    def _pump(self, timeout_seconds: float) -> bool:
        """Read what is available within ``timeout_seconds``; False at end of output."""
        ready, _, _ = select.select([self._master], [], [], timeout_seconds)
        if not ready:
            return True
        try:
            chunk = os.read(self._master, READ_CHUNK_BYTES)
        except OSError:  # EIO: every slave descriptor is closed (the child exited)
            return False
        if not chunk:
            return False
        self._buffer.extend(chunk)
        return True

    @property
    def text(self) -> str:
        """Everything shown so far (with terminal line endings turned into ``\\n``)."""
        return self._buffer.decode(errors="replace").replace("\r\n", "\n")

    def wait_for(self, pattern: str, timeout_seconds: float) -> re.Match[str]:
        """Read until ``pattern`` (a regex over the ANSI-stripped text) shows; fail after the
        deadline or when the output ends, quoting what was shown."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            found = re.search(pattern, strip_ansi(self.text), flags=re.M)
            if found:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; shown:\n{self.text}")
            if not self._pump(min(remaining, 0.5)):
                raise AssertionError(f"output ended before {pattern!r}; shown:\n{self.text}")

    def stop(self, sig: int = signal.SIGINT, timeout_seconds: float = 60.0) -> int:
        """Send ``sig`` to the child, read its last output, wait for it, close the pty."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline and self._pump(0.2):
            if self.proc.poll() is not None and not select.select([self._master], [], [], 0)[0]:
                break
        try:
            return self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the child and anything it started
            return self.proc.wait(timeout=30)
        finally:
            os.close(self._master)
