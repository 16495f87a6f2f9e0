"""Re-deriving the views when the trust policy changes (DESIGN 9.2), from the stored records.

The database remembers the effective policy its views were built with (``LP:policy``). An
ingestor started with another one recomputes, before it applies anything new:

1. every tally (``TA:``/``SC:``), from the stored assertion (signers, confidence) and its
   counted votes (``CV:``, which do not depend on the policy);
2. every slot's view (``MV:``), whose change is appended to the slot's history at the
   checkpoint's LSN (the history before it stays what was answered then, under the old policy,
   each entry with its ``policy_hash``);
3. then ``LP:policy``, last, so a crash part-way re-derives again on the next start.

The WAL is never read (retention may have cut it). Query RPCs answer UNAVAILABLE until this is
done; progress goes to the log and to ``stemedb_lattice_rederive_progress_ratio``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

from stemedb.ingestor._apply import ApplyEngine
from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import SchemaMismatch
from stemedb.ingestor._lattice import (
    POLICY_KEY,
    SETTLE_KEY,
    TALLY_PREFIX,
    VIEW_PREFIX,
    Lattice,
    SettleQueue,
)
from stemedb.ingestor._policy import TrustPolicy, parse_policy
from stemedb.ingestor._query import ViewsState
from stemedb.runtime import log_event

__all__ = ["REDERIVE_BATCH_KEYS_MAX", "lattice_progress_gauge", "rederive_if_needed"]

REDERIVE_BATCH_KEYS_MAX = 2000  # assertions or slots per WriteBatch while re-deriving
_PROGRESS_LOG_SECONDS = 5.0
_log = logging.getLogger("stemedb.ingestor")

Progress = Callable[[float], None]


def lattice_progress_gauge(registry: CollectorRegistry) -> Progress:
    """``stemedb_lattice_rederive_progress_ratio``: 1 when the views match the policy."""
    gauge = Gauge(
        "stemedb_lattice_rederive_progress_ratio",
        "Progress of re-deriving the views for a new trust policy (1 = views match the policy)",
        registry=registry,
    )
    gauge.set(0)
    return gauge.set


def _count(db: StoreDb, prefix: bytes) -> int:
    total, start = 0, prefix
    while True:
        page = db.scan(prefix, start, 10_000)
        total += len(page.entries)
        if page.next_key is None:
            return total
        start = page.next_key


def rederive_if_needed(
    db: StoreDb, policy: TrustPolicy, views: ViewsState, progress: Progress | None = None
) -> bool:
    """Bring the views to ``policy``; True when a re-derivation ran. Sets ``views.ready``."""
    stored = db.get(POLICY_KEY)
    canonical = policy.canonical()
    checkpoint = db.read_checkpoint()
    if stored == canonical or (stored is None and checkpoint.lsn == 0):
        views.ready, views.message = True, ""
        if progress is not None:
            progress(1.0)
        return False
    if stored is None:
        raise SchemaMismatch(
            f"{db.path} holds records applied without views (no LP:policy key): the counted "
            "votes cannot be rebuilt from stored records; rebuild this database from the WAL"
        )
    views.ready = False
    # Retirements still settling are settled first, under the policy they were applied with:
    # their changes belong in the history at their own LSNs, as that policy answered then.
    queue = db.get(SETTLE_KEY)
    if queue is not None and SettleQueue.decode(queue).pending:
        engine = ApplyEngine(db, parse_policy(stored.decode("utf-8"), "LP:policy"))
        while engine.settling:
            engine.settle()
    started = time.monotonic()
    log_event(
        _log,
        logging.WARNING,
        "trust policy changed: re-deriving views from stored records",
        policy_hash=policy.policy_hash.hex(),
        applied_lsn=checkpoint.lsn,
    )
    assertions = _count(db, TALLY_PREFIX)
    slots = _count(db, VIEW_PREFIX)
    total = max(1, assertions + slots)
    done = 0
    logged = started
    lattice = Lattice(db, policy)

    def step(phase: str) -> None:
        nonlocal logged
        ratio = done / total
        views.message = f"{phase}: {done} of {total} ({ratio:.0%})"
        if progress is not None:
            progress(ratio)
        now = time.monotonic()
        if now - logged >= _PROGRESS_LOG_SECONDS:
            logged = now
            log_event(_log, logging.INFO, "re-deriving views", progress=views.message)

    for prefix, phase in ((TALLY_PREFIX, "tallies"), (VIEW_PREFIX, "views")):
        start = prefix
        while True:
            page = db.scan(prefix, start, REDERIVE_BATCH_KEYS_MAX)
            overlay: dict[bytes, bytes] = {}
            batch = lattice.batch(overlay)
            for key, value in page.entries:
                if prefix == TALLY_PREFIX:
                    batch.rederive_tally(bytes.fromhex(key[len(prefix) :].decode()), value)
                else:
                    batch.rederive_view(key[len(prefix) :], checkpoint.lsn)
            batch.finish()
            db.write(overlay.items(), checkpoint)
            lattice.committed()
            done += len(page.entries)
            step(phase)
            if page.next_key is None:
                break
            start = page.next_key
    db.write([(POLICY_KEY, canonical)], checkpoint)
    views.ready, views.message = True, ""
    if progress is not None:
        progress(1.0)
    log_event(
        _log,
        logging.INFO,
        "views re-derived",
        assertions=assertions,
        slots=slots,
        seconds=round(time.monotonic() - started, 3),
    )
    return True
