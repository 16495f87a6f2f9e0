"""powerfs itself: un-fsynced bytes and directory entries vanish on a cut; fsynced ones survive."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from stemedb.wal._segment import fsync_dir
from tests.faults.powerfs import PowerFS


def _write(path: Path, data: bytes, *, fsync: bool, flags: int = 0) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def test_write_without_fsync_vanishes(powerfs: PowerFS) -> None:
    mnt = powerfs.mountpoint
    _write(mnt / "f", b"durable", fsync=True)
    fsync_dir(mnt)
    _write(mnt / "f", b"-volatile", fsync=False, flags=os.O_APPEND)
    _write(mnt / "g", b"named, never fsynced", fsync=False)
    fsync_dir(mnt)  # g's name is durable, its contents are not
    assert (mnt / "f").read_bytes() == b"durable-volatile"
    dropped = powerfs.cut()
    assert dropped["volatile_bytes"] == len(b"-volatile") + len(b"named, never fsynced")
    powerfs.mount()
    assert (mnt / "f").read_bytes() == b"durable"
    assert (mnt / "g").read_bytes() == b""


def test_fsynced_write_survives(powerfs: PowerFS) -> None:
    mnt = powerfs.mountpoint
    _write(mnt / "f", b"a" * 10_000, fsync=False)
    fsync_dir(mnt)
    fd = os.open(mnt / "f", os.O_WRONLY)
    os.pwrite(fd, b"XYZ", 5000)  # overwrite in place, like WATERMARK
    os.fdatasync(fd)
    os.pwrite(fd, b"lost", 0)
    os.ftruncate(fd, 6000)  # neither is synced
    os.close(fd)
    powerfs.remount()
    data = (mnt / "f").read_bytes()
    assert data == b"a" * 5000 + b"XYZ" + b"a" * 4997


def test_created_file_vanishes_without_dir_fsync(powerfs: PowerFS) -> None:
    mnt = powerfs.mountpoint
    _write(mnt / "new", b"fsynced data, name never made durable", fsync=True)
    (mnt / "sub").mkdir()
    _write(mnt / "sub" / "inner", b"x", fsync=True)
    fsync_dir(mnt / "sub")  # sub's entries are durable, but sub itself is not named durably
    powerfs.remount()
    assert sorted(os.listdir(mnt)) == []
    # Make sub durable in its parent: its earlier fsynced entries come with it.
    (mnt / "sub").mkdir()
    _write(mnt / "sub" / "inner", b"y", fsync=True)
    fsync_dir(mnt / "sub")
    fsync_dir(mnt)
    powerfs.remount()
    assert (mnt / "sub" / "inner").read_bytes() == b"y"


def test_rename_and_unlink_revert_without_dir_fsync(powerfs: PowerFS) -> None:
    mnt = powerfs.mountpoint
    _write(mnt / "a.tmp", b"A", fsync=True)
    _write(mnt / "b", b"B", fsync=True)
    fsync_dir(mnt)
    os.rename(mnt / "a.tmp", mnt / "a")
    (mnt / "b").unlink()
    assert sorted(os.listdir(mnt)) == ["a"]
    powerfs.remount()
    assert sorted(os.listdir(mnt)) == ["a.tmp", "b"]
    assert (mnt / "b").read_bytes() == b"B"
    # The same with the directory fsynced: both changes stick.
    os.rename(mnt / "a.tmp", mnt / "a")
    (mnt / "b").unlink()
    fsync_dir(mnt)
    powerfs.remount()
    assert sorted(os.listdir(mnt)) == ["a"]
    assert (mnt / "a").read_bytes() == b"A"


def test_atomic_replace_pattern(powerfs: PowerFS) -> None:
    """write tmp, fsync, rename over the old file, fsync dir: old or new, never a mix."""
    mnt = powerfs.mountpoint
    _write(mnt / "state", b"old", fsync=True)
    fsync_dir(mnt)
    _write(mnt / "state.tmp", b"new", fsync=True)
    os.rename(mnt / "state.tmp", mnt / "state")
    powerfs.remount()  # before the dir fsync: the old file, and no trace of the tmp name
    assert sorted(os.listdir(mnt)) == ["state"]
    assert (mnt / "state").read_bytes() == b"old"
    _write(mnt / "state.tmp", b"new", fsync=True)
    os.rename(mnt / "state.tmp", mnt / "state")
    fsync_dir(mnt)
    powerfs.remount()
    assert sorted(os.listdir(mnt)) == ["state"]
    assert (mnt / "state").read_bytes() == b"new"


def test_fsync_delay_is_injected(powerfs: PowerFS) -> None:
    mnt = powerfs.mountpoint
    powerfs.set_fsync_delay(0.3)
    fd = os.open(mnt / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x")
        started = time.monotonic()
        os.fdatasync(fd)
        assert time.monotonic() - started >= 0.3
        powerfs.set_fsync_delay(0)
        started = time.monotonic()
        os.fdatasync(fd)
        assert time.monotonic() - started < 0.25
    finally:
        os.close(fd)


class _Model:
    """The durability rules powerfs promises, for one flat directory."""

    def __init__(self) -> None:
        self.next_ino = 0
        self.data: dict[int, bytes] = {}  # inode -> current bytes
        self.synced: dict[int, bytes] = {}  # inode -> durable bytes
        self.names: dict[str, int] = {}
        self.durable_names: dict[str, int] = {}

    def cut(self) -> None:
        self.names = dict(self.durable_names)
        self.data = {ino: self.synced.get(ino, b"") for ino in self.names.values()}
        self.synced = dict(self.data)

    def view(self) -> dict[str, bytes]:
        return {name: self.data[ino] for name, ino in self.names.items()}


def test_random_operations_match_the_model(powerfs: PowerFS, seed: int) -> None:
    """Seeded random create/write/truncate/rename/unlink/fsync/fsyncdir, cut at random points:
    the view after every cut is exactly what the durability rules say."""
    rng = random.Random(seed)
    mnt = powerfs.mountpoint
    model = _Model()
    names = [f"f{i}" for i in range(6)]
    for _ in range(4):
        for _ in range(rng.randint(20, 60)):
            op = rng.choice(["write", "write", "truncate", "rename", "unlink", "fsync", "dirsync"])
            name = rng.choice(names)
            path = mnt / name
            ino = model.names.get(name)
            if op == "write":
                if ino is None:
                    ino = model.next_ino = model.next_ino + 1
                    model.names[name], model.data[ino] = ino, b""
                old = model.data[ino]
                offset = rng.randint(0, len(old) + 3)
                chunk = rng.randbytes(rng.randint(1, 200))
                new = old.ljust(offset, b"\0")
                model.data[ino] = new[:offset] + chunk + new[offset + len(chunk) :]
                fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                os.pwrite(fd, chunk, offset)
                os.close(fd)
            elif op == "truncate" and ino is not None:
                length = rng.randint(0, len(model.data[ino]) + 50)
                model.data[ino] = model.data[ino][:length].ljust(length, b"\0")
                os.truncate(path, length)
            elif op == "rename" and ino is not None:
                target = rng.choice(names)
                if target != name:
                    del model.names[name]
                    model.names[target] = ino
                    os.rename(path, mnt / target)
            elif op == "unlink" and ino is not None:
                del model.names[name]
                path.unlink()
            elif op == "fsync" and ino is not None:
                model.synced[ino] = model.data[ino]
                fd = os.open(path, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            elif op == "dirsync":
                model.durable_names = dict(model.names)
                fsync_dir(mnt)
            assert {n: (mnt / n).read_bytes() for n in os.listdir(mnt)} == model.view()
        powerfs.remount()
        model.cut()
        assert {n: (mnt / n).read_bytes() for n in os.listdir(mnt)} == model.view()


def test_partial_cut_persists_whole_sectors_old_or_new(powerfs: PowerFS) -> None:
    """cut(partial_seed=...): each dirty 512-byte sector is old or new, never a mix; the length
    is the old or the new one; never fsynced names may or may not appear (whole directory)."""
    mnt = powerfs.mountpoint
    _write(mnt / "f", b"A" * 4096, fsync=True)
    fsync_dir(mnt)
    fd = os.open(mnt / "f", os.O_WRONLY)
    os.pwrite(fd, b"B" * 4096, 0)
    os.pwrite(fd, b"C" * 1000, 4096)
    os.close(fd)
    seen: set[bytes] = set()
    for seed in range(6):
        powerfs.cut(partial_seed=seed)
        powerfs.mount()
        data = (mnt / "f").read_bytes()
        assert len(data) in (4096, 5096)
        for s in range(0, len(data), 512):
            sector = data[s : s + 512]
            assert len(set(sector)) == 1 and sector[:1] in (b"A", b"B", b"C", b"\0"), (seed, s)
            seen.add(sector[:1])
        # Put the volatile state back for the next round (the durable state may have moved).
        fd = os.open(mnt / "f", os.O_WRONLY)
        os.ftruncate(fd, 4096)
        os.pwrite(fd, b"A" * 4096, 0)
        os.fsync(fd)
        os.pwrite(fd, b"B" * 4096, 0)
        os.pwrite(fd, b"C" * 1000, 4096)
        os.close(fd)
    assert {b"A", b"B"} <= seen, "some sectors were written back and some were not"
