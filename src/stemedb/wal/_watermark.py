"""WATERMARK: the highest durable LSN, published after every group's fdatasync.

The file is exactly 32 bytes: magic ``SWMK``, version u16, reserved u16, reserved u32, durable LSN
u64, and a 16-byte BLAKE3 checksum over the first 16 bytes... see docs/wal-format.md. During
operation the writer overwrites it in place with one 32-byte ``pwrite``; at open and in repair
it is replaced atomically (temporary file, fsync, rename, fsync of the directory).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from stemedb.fsio import atomic_replace
from stemedb.wal._encoder import CHECKSUM_BYTES, FORMAT_VERSION, checksum

__all__ = [
    "WATERMARK_BYTES",
    "WATERMARK_MISSING",
    "WATERMARK_NAME",
    "WatermarkPublisher",
    "WatermarkState",
    "decode_watermark",
    "encode_watermark",
    "publish_watermark_durably",
    "read_watermark",
    "read_watermark_bytes",
    "watermark_state_of",
    "write_watermark_atomic",
]

WATERMARK_NAME = "WATERMARK"
_MAGIC = b"SWMK"
_BODY = struct.Struct("<4sHHIQ")
WATERMARK_BYTES = _BODY.size + CHECKSUM_BYTES  # 32


def encode_watermark(durable_lsn: int) -> bytes:
    body = _BODY.pack(_MAGIC, FORMAT_VERSION, 0, 0, durable_lsn)
    return body + checksum(body)


# The problem ``read_watermark`` reports when the file does not exist.
WATERMARK_MISSING = "WATERMARK is missing"


def decode_watermark(data: bytes) -> int:
    """Return the durable LSN; raises ValueError with the reason when the bytes are not valid."""
    if len(data) != WATERMARK_BYTES:
        raise ValueError(f"WATERMARK is {len(data)} bytes, expected {WATERMARK_BYTES}")
    body = data[: _BODY.size]
    if checksum(body) != data[_BODY.size :]:
        raise ValueError("WATERMARK checksum mismatch")
    magic, version, reserved16, reserved32, lsn = _BODY.unpack(body)
    if magic != _MAGIC or version != FORMAT_VERSION or reserved16 or reserved32:
        raise ValueError("WATERMARK has a bad magic, version or reserved field")
    return int(lsn)


@dataclass(frozen=True)
class WatermarkState:
    """What reading WATERMARK found: an LSN, or None with the problem (missing or invalid)."""

    lsn: int | None
    problem: str | None = None


def read_watermark(directory: Path) -> WatermarkState:
    """Read WATERMARK by path (re-opened each time, since open and repair replace the file)."""
    return watermark_state_of(read_watermark_bytes(os.path.join(directory, WATERMARK_NAME)))


def read_watermark_bytes(path: str) -> bytes | None:
    """WATERMARK's bytes, None when it does not exist: opened by path on every call (a network
    volume shows another host's write to a fresh open), with plain os calls, since tailers
    poll it while idle. A file of the wrong size is read whole, so its size can be reported."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, WATERMARK_BYTES + 1)
        if len(data) > WATERMARK_BYTES:
            data += os.read(fd, max(0, os.fstat(fd).st_size - len(data)))
        return data
    finally:
        os.close(fd)


def watermark_state_of(data: bytes | None) -> WatermarkState:
    """What WATERMARK's bytes (None: the file is missing) say."""
    if data is None:
        return WatermarkState(None, WATERMARK_MISSING)
    try:
        return WatermarkState(decode_watermark(data))
    except ValueError as exc:
        return WatermarkState(None, str(exc))


def write_watermark_atomic(directory: Path, durable_lsn: int, sync: bool) -> None:
    """Replace WATERMARK atomically and durably (used at open, after recovery, and by repair)."""
    atomic_replace(directory / WATERMARK_NAME, encode_watermark(durable_lsn), sync=sync)


def publish_watermark_durably(directory: Path, durable_lsn: int, sync: bool) -> None:
    """Set WATERMARK at open: in place (no new disk block needed, so a writer can restart on a
    full disk) when the file already has the right size, else by atomic replacement."""
    path = directory / WATERMARK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        write_watermark_atomic(directory, durable_lsn, sync)
        return
    try:
        if os.fstat(fd).st_size != WATERMARK_BYTES:
            os.close(fd)
            fd = -1
            write_watermark_atomic(directory, durable_lsn, sync)
            return
        data = encode_watermark(durable_lsn)
        if os.pread(fd, WATERMARK_BYTES, 0) != data and os.pwrite(fd, data, 0) != len(data):
            raise OSError(f"short write to {path}")
        if sync:
            os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)


class WatermarkPublisher:
    """Overwrites WATERMARK in place after each commit: one 32-byte pwrite, no fsync.

    Not fsyncing is safe because the pwrite happens only after the segment's fdatasync returned:
    whatever value survives a power loss names records that were already durable (the argument is
    spelled out in docs/wal-format.md). The 32 bytes sit in one sector, and the checksum turns a
    torn or stale-garbage file into "invalid", which recovery treats as "whole tail possibly
    torn" rather than trusting it.
    """

    def __init__(self, directory: Path) -> None:
        self._path = directory / WATERMARK_NAME
        self._fd = os.open(self._path, os.O_RDWR)

    def publish(self, durable_lsn: int) -> None:
        data = encode_watermark(durable_lsn)
        written = os.pwrite(self._fd, data, 0)
        if written != len(data):
            raise OSError(f"short write of {written} bytes to {self._path}")

    def close(self, sync: bool) -> None:
        try:
            if sync:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
