"""Segment files: naming, listing, durable creation, directory fsync, the LOCK file."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from pathlib import Path

from stemedb.wal._decoder import FrameError, decode_segment_header
from stemedb.wal._encoder import SEGMENT_HEADER_BYTES, encode_segment_header
from stemedb.wal._errors import WalCorruption, WalLocked

__all__ = [
    "LOCK_NAME",
    "SEGMENT_SUFFIX",
    "acquire_lock",
    "create_segment",
    "fsync_dir",
    "list_segments",
    "read_segment_first_lsn",
    "remove_stale_temporaries",
    "segment_name",
    "write_all",
]

LOCK_NAME = "LOCK"
SEGMENT_SUFFIX = ".wal"
_SEGMENT_RE = re.compile(r"^(\d{20})\.wal$")
_TMP_SUFFIX = ".tmp"


def segment_name(first_lsn: int) -> str:
    """``<first LSN, 20 digits>.wal``: lexical order equals LSN order."""
    return f"{first_lsn:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """``(first LSN from the name, path)`` of every segment, in LSN order."""
    found: list[tuple[int, Path]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            match = _SEGMENT_RE.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
    found.sort()
    return found


def fsync_dir(directory: Path) -> None:
    """fsync a directory so that entries created, renamed or removed in it are durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until every byte is written (a short write is legal, e.g. near ENOSPC)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, "write returned 0 bytes")
        view = view[written:]


def create_segment(directory: Path, first_lsn: int, sync: bool) -> Path:
    """Create a segment holding only its header, durably, and return its path.

    The header goes to a temporary name, is fsynced, then renamed into place and the directory is
    fsynced: a crash leaves either no segment or a complete, durable header, never a half-written
    one under the real name (a leftover ``.tmp`` is removed on the next open).
    """
    path = directory / segment_name(first_lsn)
    if path.exists():
        raise FileExistsError(errno.EEXIST, "segment already exists", str(path))
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, encode_segment_header(first_lsn))
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    os.rename(tmp, path)
    if sync:
        fsync_dir(directory)
    return path


def read_segment_first_lsn(path: Path, name_first_lsn: int) -> int:
    """Check a segment's header against its name; raises WalCorruption."""
    with path.open("rb") as fh:
        head = fh.read(SEGMENT_HEADER_BYTES)
    try:
        first_lsn = decode_segment_header(head)
    except FrameError as exc:
        raise WalCorruption(path, 0, name_first_lsn, exc.reason) from None
    if first_lsn != name_first_lsn:
        raise WalCorruption(
            path,
            0,
            name_first_lsn,
            f"segment header says first LSN {first_lsn}, file name says {name_first_lsn}",
        )
    return first_lsn


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove ``*.tmp`` files left by a crash between create and rename; they never held data
    that anyone was told about."""
    removed = []
    for entry in directory.iterdir():
        if entry.name.endswith(_TMP_SUFFIX) and entry.is_file():
            entry.unlink()
            removed.append(entry)
    return removed


def acquire_lock(directory: Path) -> int:
    """Take the exclusive LOCK (flock, non-blocking) and return its fd; raises WalLocked.

    flock is released by the kernel when the process dies, even on SIGKILL, so a crashed writer
    never leaves a stale lock behind.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            pid_text = os.pread(fd, 32, 0).decode().strip()
            if pid_text:
                holder = f" (held by pid {int(pid_text)})"
        os.close(fd)
        raise WalLocked(
            f"WAL directory {directory} is locked by another writer{holder}: "
            f"only one process may write a WAL; stop the other writer first"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    # The pid is informational only (for the message above); the flock is the real guard.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
