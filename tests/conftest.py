"""Shared fixtures. Paths and helpers for every test package."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # tools/ scripts are imported by the drift tests


@pytest.fixture
def seed() -> int:
    """A random seed, printed so that a failing run can be replayed with STEMEDB_TEST_SEED."""
    value = int(os.environ.get("STEMEDB_TEST_SEED", random.randrange(2**32)))
    print(f"STEMEDB_TEST_SEED={value}")
    return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long torture runs happen only when selected by marker (`make torture` runs
    `-m torture`), so that `pytest tests/wal` or `pytest tests/faults` stays fast."""
    markexpr = config.getoption("markexpr") or ""
    if "torture" in markexpr and "not torture" not in markexpr:
        return
    skip = pytest.mark.skip(reason="torture run: select it with -m torture (make torture)")
    for item in items:
        if item.get_closest_marker("torture"):
            item.add_marker(skip)
