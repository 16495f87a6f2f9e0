"""A writer and an ingestor on loopback for the client tests, and a way to run the CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import BIN, Service, start_ingestor, start_writer

CLI = BIN / "stemedb"


def ingestor_available() -> bool:
    return (BIN / "stemedb-ingestor").exists() or (
        importlib.util.find_spec("stemedb.ingestor.__main__") is not None
    )


def require_ingestor() -> None:
    """Skip (locally) or fail (under CI) when the ingestor is not built yet."""
    if ingestor_available():
        return
    reason = "stemedb-ingestor is not available (neither the console script nor the module)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so the read tests must run")
    pytest.skip(reason)


@dataclass
class Stack:
    writer: Service
    ingestor: Service
    wal_dir: Path

    @property
    def env(self) -> dict[str, str]:
        return {"STEMEDB_WRITER": self.writer.listen, "STEMEDB_STORE": self.ingestor.listen}


@contextmanager
def running_stack(root: Path, *writer_flags: str) -> Iterator[Stack]:
    require_ingestor()
    root.mkdir(parents=True, exist_ok=True)
    wal = root / "wal"
    writer = start_writer(wal, *writer_flags, log_dir=root)
    ingestor: Service | None = None
    try:
        writer.wait_ready()
        ingestor = start_ingestor(wal, root / "db", log_dir=root)
        ingestor.wait_ready()
        yield Stack(writer, ingestor, wal)
    finally:
        if ingestor is not None:
            ingestor.kill()
        writer.kill()


def cli_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: no STEMEDB_* from the developer's shell, HOME in the test's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: dict[str, str], input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], env=env, input=input, capture_output=True, text=True, timeout=timeout
    )
