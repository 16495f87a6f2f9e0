"""Fixtures for the fault-injection tests: a powerfs mount, torn down even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.powerfs import PowerFS, fuse_available
from tests.support import missing_tool


@pytest.fixture
def powerfs(tmp_path: Path) -> Iterator[PowerFS]:
    """powerfs mounted at ``tmp_path/mnt`` over ``tmp_path/backing``."""
    reason = fuse_available()
    if reason:
        missing_tool(f"powerfs needs FUSE: {reason}")
    fs = PowerFS(tmp_path / "backing", tmp_path / "mnt")
    fs.mount()
    try:
        yield fs
    finally:
        fs.stop()


@pytest.fixture
def powerfs_ok() -> None:
    """Skip (fail under CI=true) with the reason when powerfs cannot run here; for tests
    that mount it themselves."""
    reason = fuse_available()
    if reason:
        missing_tool(f"powerfs needs FUSE: {reason}")
