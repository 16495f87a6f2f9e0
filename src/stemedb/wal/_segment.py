"""Segment files: naming, listing, durable creation, the LOCK file.

``fsync_dir`` and ``write_all`` live in ``stemedb.fsio`` and are re-exported here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from pathlib import Path

from stemedb.fsio import atomic_replace, fsync_dir, write_all
from stemedb.wal._decoder import check_segment_header
from stemedb.wal._encoder import SEGMENT_HEADER_BYTES, encode_segment_header
from stemedb.wal._errors import WalLocked

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


def create_segment(directory: Path, first_lsn: int, sync: bool) -> Path:
    """Create a segment holding only its header, durably, and return its path.

    The header goes through ``stemedb.fsio.atomic_replace`` (temporary name, fsync, rename, fsync
    of the directory, all when ``sync``): a crash leaves either no segment or a complete header,
    never a half-written one under the real name (a leftover ``.tmp`` is removed on the next
    open).
    """
    path = directory / segment_name(first_lsn)
    if path.exists():
        raise FileExistsError(errno.EEXIST, "segment already exists", str(path))
    # Not create_exclusive: that needs hard links, which some volumes (FUSE layers, some network
    # file systems) lack; the writer holds LOCK, so nobody else creates segments meanwhile.
    atomic_replace(path, encode_segment_header(first_lsn), sync=sync)
    return path


def read_segment_first_lsn(path: Path, name_first_lsn: int) -> int:
    """Check a segment's header against its name; raises WalCorruption."""
    with path.open("rb") as fh:
        head = fh.read(SEGMENT_HEADER_BYTES)
    damage = check_segment_header(path, head, name_first_lsn)
    if damage is not None:
        raise damage.error()
    return name_first_lsn


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
