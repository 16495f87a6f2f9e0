"""Signature verification, inline or spread over worker processes.

ed25519 verification costs about 70 us per signature here, and pynacl holds the GIL for part of
each call, so threads scale poorly. A request with a few signatures is verified in the server
process (a round trip to a worker costs more); a larger one is cut into chunks that worker
processes verify in parallel, so signed batches use every core and the event loop stays free
for unsigned traffic meanwhile.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import nacl.bindings
import nacl.exceptions

__all__ = ["SignatureCheck", "SignatureVerifier"]

_ITEM_BYTES = 32 + 64 + 32  # public key, signature, hash
_PARENT_POLL_SECONDS = 0.5


class SignatureCheck:
    """One signature to verify and the field that names it in errors."""

    __slots__ = ("content_hash", "field", "public_key", "signature")

    def __init__(self, field: str, public_key: bytes, signature: bytes, content_hash: bytes):
        self.field = field
        self.public_key = public_key
        self.signature = signature
        self.content_hash = content_hash


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
