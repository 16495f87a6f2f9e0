"""stemedb.fsio: the one atomic-replace and exclusive-create helper."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stemedb import fsio


def test_atomic_replace_replaces_and_leaves_no_tmp(tmp_path: Path) -> None:
    target = tmp_path / "STATE"
    fsio.atomic_replace(target, b"one")
    fsio.atomic_replace(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["STATE"]


def test_atomic_replace_failure_keeps_old_file_and_removes_tmp(tmp_path: Path) -> None:
    target = tmp_path / "STATE"
    fsio.atomic_replace(target, b"old")
    target_dir_as_file = tmp_path / "STATE" / "child"  # parent is a file: open fails
    with pytest.raises(NotADirectoryError):
        fsio.atomic_replace(target_dir_as_file, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["STATE"]


def test_create_exclusive_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "key"
    fsio.create_exclusive(target, b"secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        fsio.create_exclusive(target, b"other")
    assert target.read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_create_exclusive_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        fsio.create_exclusive(tmp_path / "pub", b"x", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "pub").stat().st_mode) == 0o644


def test_threads_racing_create_exclusive_leave_one_whole_file(tmp_path: Path) -> None:
    import threading

    target = tmp_path / "key"
    barrier = threading.Barrier(8)
    won: list[bytes] = []

    def create(i: int) -> None:
        data = bytes([i]) * 4096
        barrier.wait()
        try:
            fsio.create_exclusive(target, data)
            won.append(data)
        except FileExistsError:
            pass

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and target.read_bytes() == won[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]
