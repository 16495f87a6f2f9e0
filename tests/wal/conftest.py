"""Shared helpers for the WAL tests: real directories, real files, real processes."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from stemedb.wal import Wal, WalConfig


def pytest_report_header() -> str:
    return f"stemedb.wal test seed: {test_seed()} (set STEMEDB_TEST_SEED to replay)"


def test_seed() -> int:
    env = os.environ.get("STEMEDB_TEST_SEED")
    if env:
        return int(env)
    if not hasattr(test_seed, "value"):
        test_seed.value = random.SystemRandom().randrange(1, 2**31)  # type: ignore[attr-defined]
    return int(test_seed.value)  # type: ignore[attr-defined]


test_seed.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def seed() -> int:
    value = test_seed()
    print(f"seed={value} (replay with STEMEDB_TEST_SEED={value})")
    return value


@pytest.fixture
def wal_dir(tmp_path: Path) -> Path:
    return tmp_path / "wal"


@pytest.fixture
def open_wal(wal_dir: Path) -> Iterator[Wal]:
    wal = Wal.open(WalConfig(dir=wal_dir))
    yield wal
    wal.close()
