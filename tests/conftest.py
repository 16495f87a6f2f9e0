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
