"""Under CI=true a fault test whose tool (FUSE, a tmpfs mount) is missing fails, not skips."""

from __future__ import annotations

import pytest

from tests.faults import conftest
from tests.support import missing_tool


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="no FUSE here"):
        missing_tool("no FUSE here")


def test_missing_tool_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no FUSE here"):
        missing_tool("no FUSE here")


def test_powerfs_fixture_fails_under_ci_without_fuse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(conftest, "fuse_available", lambda: "/dev/fuse is missing")
    with pytest.raises(pytest.fail.Exception, match="powerfs needs FUSE"):
        conftest.powerfs_ok.__wrapped__()  # type: ignore[attr-defined]
