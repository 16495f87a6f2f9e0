"""Fixtures for the fault-injection tests: a powerfs mount, torn down even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.powerfs import PowerFS, fuse_available


@pytest.fixture
def powerfs(tmp_path: Path) -> Iterator[PowerFS]:
    """powerfs mounted at ``tmp_path/mnt`` over ``tmp_path/backing``."""
    reason = fuse_available()
    if reason:
        pytest.skip(f"powerfs needs FUSE: {reason}")
    fs = PowerFS(tmp_path / "backing", tmp_path / "mnt")
    fs.mount()
    try:
        yield fs
    finally:
        fs.stop()


@pytest.fixture
def powerfs_ok() -> None:
    """Skip (with the reason) when powerfs cannot run here; for tests that mount it themselves."""
    reason = fuse_available()
    if reason:
        pytest.skip(f"powerfs needs FUSE: {reason}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `pytest tests/faults` stays fast: the >= 100-cut run only happens when asked for by marker
    # (make torture runs `-m torture`).
    markexpr = config.getoption("markexpr") or ""
    if "torture" in markexpr and "not torture" not in markexpr:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="torture run: select it with -m torture (make torture)")
    for item in items:
        if item.get_closest_marker("torture") and here in Path(str(item.path)).parents:
            item.add_marker(skip)
