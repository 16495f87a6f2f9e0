"""Fixtures of the wallet tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for Unix sockets (a socket path is limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="stw", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
