"""The Makefile's reinstall stamp follows the list of Python files, not their times.

The strict editable install is a tree of symlinks: an edited file is installed already, so only
adding or removing a file (or changing pyproject.toml) may trigger a reinstall. Checked with
``make -q`` (exit 0: up to date, 1: would run) on a copy of the Makefile in a scratch tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import ROOT


def _stale(tree: Path) -> bool:
    done = subprocess.run(
        ["make", "-q", "install"], cwd=tree, capture_output=True, text=True, timeout=60
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 1


def _installed_now(tree: Path) -> None:
    """As after `make install`: the stamp is newer than everything it depends on."""
    past = time.time() - 1000
    for dep in tree.rglob("*"):
        os.utime(dep, (past, past))
    (tree / ".venv" / ".installed").touch()


def test_stamp_follows_the_file_list_not_the_times(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for folder in ("src/stemedb", "services/writer", "clients/python"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "__init__.py").write_text("")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert _stale(tmp_path)  # never installed
    _installed_now(tmp_path)
    assert not _stale(tmp_path)

    edited = tmp_path / "services" / "writer" / "__init__.py"
    edited.write_text("# edited\n")
    later = time.time() + 2000
    os.utime(edited, (later, later))
    assert not _stale(tmp_path), "editing a file must not trigger a reinstall"

    added = tmp_path / "clients" / "python" / "_new.py"
    added.write_text("")
    assert _stale(tmp_path), "adding a file must trigger a reinstall"
    _installed_now(tmp_path)
    assert not _stale(tmp_path)

    added.unlink()
    assert _stale(tmp_path), "removing a file must trigger a reinstall"
