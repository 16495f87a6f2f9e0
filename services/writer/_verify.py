"""Signature verification, inline or spread over worker processes.

ed25519 verification costs about 70 us per signature here, and pynacl holds the GIL for part of
each call, so threads scale poorly. A request with a few signatures is verified in the server
process (a round trip to a worker costs more); a larger one is cut into chunks that worker
processes verify in parallel, so signed batches use every core and the event loop stays free
for unsigned traffic meanwhile. The default number of workers is the number of CPUs this process
may actually use (:func:`usable_cpus`: its CPU affinity and its cgroup's CPU quota), not the
host's count, so a large node does not start dozens of workers in a 2-CPU container.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions

__all__ = ["SignatureCheck", "SignatureVerifier", "cgroup_cpu_limit", "usable_cpus"]

_ITEM_BYTES = 32 + 64 + 32  # public key, signature, hash
_PARENT_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """One signature to verify and the field that names it in errors."""

    field: str
    public_key: bytes
    signature: bytes
    content_hash: bytes


def cgroup_cpu_limit(cgroup_root: Path, proc_self_cgroup: str) -> int | None:
    """Whole CPUs the cgroup v2 ``cpu.max`` quota allows this process, or None when unlimited.

    ``proc_self_cgroup`` is the text of /proc/self/cgroup; its v2 line ``0::<path>`` names the
    process's cgroup under ``cgroup_root`` (/sys/fs/cgroup). A quota anywhere on the way up to
    the root applies, so the smallest one counts. ``cpu.max`` reads ``max <period>`` (no limit)
    or ``<quota> <period>`` in microseconds; a fractional quota rounds down, to at least 1 (as
    Go's automaxprocs does), since more workers than the quota only get throttled.
    """
    relative = None
    for line in proc_self_cgroup.splitlines():
        if line.startswith("0::"):
            relative = line[3:].strip()
    if relative is None:
        return None  # cgroup v1 only, or no cgroup: nothing to read
    directory = cgroup_root / relative.lstrip("/")
    limit: int | None = None
    while True:
        try:
            fields = (directory / "cpu.max").read_text().split()
        except OSError:
            fields = []
        if len(fields) == 2 and fields[0] != "max":
            try:
                quota, period = int(fields[0]), int(fields[1])
            except ValueError:
                quota, period = 0, 0
            if quota > 0 and period > 0:
                cpus = max(1, quota // period)
                limit = cpus if limit is None else min(limit, cpus)
        if directory == cgroup_root or cgroup_root not in directory.parents:
            return limit
        directory = directory.parent


def usable_cpus(
    cgroup_root: Path = Path("/sys/fs/cgroup"), proc_self_cgroup: Path = Path("/proc/self/cgroup")
) -> int:
    """CPUs this process may use: its affinity mask, capped by its cgroup v2 CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        text = proc_self_cgroup.read_text()
    except OSError:
        return max(1, cpus)
    limit = cgroup_cpu_limit(cgroup_root, text)
    return max(1, cpus if limit is None else min(cpus, limit))


def _verify_one(public_key: bytes, signature: bytes, content_hash: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + content_hash, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def verify_blob(blob: bytes) -> int:
    """Verify packed (key, signature, hash) items; the index of the first bad one, or -1.

    Runs in a worker process: the argument is one bytes object because pickling one buffer is
    far cheaper than pickling hundreds of small tuples.
    """
    for i in range(len(blob) // _ITEM_BYTES):
        base = i * _ITEM_BYTES
        key = blob[base : base + 32]
        sig = blob[base + 32 : base + 96]
        digest = blob[base + 96 : base + 128]
        if not _verify_one(key, sig, digest):
            return i
    return -1


def _warm() -> int:
    return 0


def _watch_parent(parent_pid: int) -> None:
    """Runs in each worker: exit as soon as the writer is gone.

    A worker blocks on its task queue; when the writer is SIGKILLed nothing wakes it, and it
    would live on as an orphan holding memory (one per core per crash). A daemon thread polls the
    parent's PID and ends the worker when it changes (the orphan is re-parented).
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_SECONDS)
        os._exit(0)

    if os.getppid() != parent_pid:
        os._exit(0)
    threading.Thread(target=watch, name="stemedb-verify-parent-watch", daemon=True).start()


class SignatureVerifier:
    """Verifies signatures; ``first_invalid`` returns the first failing check or None."""

    def __init__(self, workers: int, inline_max: int) -> None:
        self._inline_max = inline_max
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # spawn, not fork: the server process runs gRPC threads, and forking them is unsafe.
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_watch_parent,
                initargs=(os.getpid(),),
            )

    def warm_up(self) -> None:
        """Start every worker now rather than on the first signed batch."""
        if self._pool is not None:
            for f in [self._pool.submit(_warm) for _ in range(self._workers * 2)]:
                f.result(timeout=60)

    async def first_invalid(self, checks: Sequence[SignatureCheck]) -> SignatureCheck | None:
        if not checks:
            return None
        if self._pool is None or len(checks) <= self._inline_max:
            for c in checks:
                if not _verify_one(c.public_key, c.signature, c.content_hash):
                    return c
            return None
        loop = asyncio.get_running_loop()
        # Two chunks per worker evens out uneven progress; a floor keeps IPC overhead small.
        chunk = max(32, -(-len(checks) // (self._workers * 2)))
        futures = []
        for start in range(0, len(checks), chunk):
            part = checks[start : start + chunk]
            blob = b"".join(c.public_key + c.signature + c.content_hash for c in part)
            futures.append((start, loop.run_in_executor(self._pool, verify_blob, blob)))
        results = await asyncio.gather(*(f for _, f in futures))
        for (start, _), bad in zip(futures, results, strict=True):
            if bad >= 0:
                return checks[start + bad]
        return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
