"""Durable small-file writes: the one place that does temp file + fsync + rename/link + fsync dir.

Every small file the project writes (WAL segment headers, WATERMARK, consumer checkpoints, the
Merkle checkpoint, key files, wallet keystore entries) goes through one of two routines:

- :func:`atomic_replace` writes ``data`` under a temporary name in the same directory, fsyncs it
  (when ``sync``), renames it over ``path`` and fsyncs the directory: a crash leaves the old file
  or the new one, never a mix. The temporary file is removed when anything fails.
- :func:`create_exclusive` does the same but never overwrites: the temporary file is hard-linked
  to ``path`` (``link`` fails with ``FileExistsError`` when ``path`` exists, with no race between
  a check and the write), so a crash leaves either no file or the whole file.

``fsync_dir`` makes entries created, renamed or removed in a directory durable.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_replace", "create_exclusive", "fsync_dir", "write_all"]


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


# errno values of link(2) on a filesystem that has no hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}


def _tmp_path(path: Path) -> Path:
    # A dot name that list_segments and other directory scans never match, unique per call:
    # two threads (or processes) writing the same path never share a temporary file.
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def _write_tmp(tmp: Path, data: bytes, mode: int, sync: bool) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what the caller asked for
        write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_replace(path: Path, data: bytes, *, sync: bool = True, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically; durable (file and directory) when ``sync``."""
    tmp = _tmp_path(path)
    try:
        _write_tmp(tmp, data, mode, sync)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def create_exclusive(path: Path, data: bytes, *, mode: int = 0o600, sync: bool = True) -> None:
    """Create ``path`` holding ``data``, never overwriting: ``FileExistsError`` when it exists.

    A crash at any point leaves no file under ``path`` or the whole, fsynced file.
    """
    tmp = _tmp_path(path)
    try:
        _write_tmp(tmp, data, mode, sync)
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # A filesystem without hard links (some FUSE layers, e.g. the tests' powerfs): the
            # rename is still atomic, but the existence check before it is not, so two creators
            # racing on such a filesystem could both succeed, the last one winning.
            if os.path.lexists(path):
                raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
            os.rename(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if sync:
        fsync_dir(path.parent)
