"""The writer's logic, free of gRPC: verify admitted records and append them durably.

Requests reach this point as :class:`~stemedb.writer._admission.Admitted` records (validated,
hashed, trust already checked). :meth:`Writer.append` verifies their signatures and makes them
durable in one all-or-nothing group commit. When the log becomes unusable (a failed write or
fdatasync, after which only a reopen can recover), the writer says so once, in the log and to
every ``on_wal_fatal`` listener (the server turns health NOT_SERVING, metrics export it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from stemedb.errors import InvalidSignature, StemeError
from stemedb.merkle import leaf_suffix
from stemedb.runtime import log_event
from stemedb.wal import Wal, WalClosed, WalDiskFull, WalError, WalOverloaded
from stemedb.walrecord import (
    TYPE_OF_KIND,
    TYPE_WITH_JOB_OF_KIND,
    JobEnvelope,
    encode_payload,
    encode_payload_with_job,
)
from stemedb.writer._admission import Admitted
from stemedb.writer._meter import MeterAsk
from stemedb.writer._tree import LogTree
from stemedb.writer._verify import SignatureVerifier

__all__ = ["Appender", "OwnerStatus", "Receipt", "WalFatalListener", "Writer", "wal_entries"]

_log = logging.getLogger("stemedb.writer")

# WAL errors after which appending can go on: a full disk recovers when space returns, a full
# queue when it drains, and a closed log belongs to a shutdown. Every other WalError from an
# append means the log stopped (the WAL refuses every later append until it is reopened).
_TRANSIENT_WAL_ERRORS = (WalDiskFull, WalOverloaded, WalClosed)

WalFatalListener = Callable[[str], Awaitable[None]]


class OwnerStatus(StemeError):
    """An append the WAL owner refused (``--frontend-processes``): the gRPC status code (its
    number), the message and the details (a serialized ``google.rpc.Status``, or empty) the
    owner's own error maps to, passed on unchanged."""

    def __init__(self, code: int, message: str, details: bytes = b"") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


@dataclass(frozen=True, slots=True)
class Receipt:
    content_hash: bytes
    lsn: int
    tree_size: int  # the durable log size when acknowledged, >= lsn (the verifiable log's)


def wal_entries(
    admitted: Sequence[Admitted], job: JobEnvelope | None = None
) -> list[tuple[int, bytes]]:
    """The WAL (type, payload) entries of admitted records; ``job`` (a metered request's
    charge) travels with the first record, so an ingestor counts it once."""
    entries = [
        (TYPE_OF_KIND[a.kind], encode_payload(a.content_hash, a.record.SerializeToString()))
        for a in admitted
    ]
    if job is not None and admitted:
        first = admitted[0]
        entries[0] = (
            TYPE_WITH_JOB_OF_KIND[first.kind],
            encode_payload_with_job(first.content_hash, first.record.SerializeToString(), job),
        )
    return entries


class Appender:
    """What the servicer appends through: verify admitted records, then make them durable
    (:class:`Writer` in the WAL's own process; a front end's forwarder, ``_frontend.py``)."""

    def __init__(self, verifier: SignatureVerifier) -> None:
        self._verifier = verifier
        self.wal_failure: str | None = None  # why the log is unusable, once it is
        self.signatures_verified = 0

    async def append(
        self,
        admitted: Sequence[Admitted],
        timeout_seconds: float | None = None,
        job: JobEnvelope | None = None,
        meter: MeterAsk | None = None,
    ) -> list[Receipt]:
        """Verify and append ``admitted`` durably; ``job`` is the charge of a request this
        process metered, ``meter`` what another process's meter must charge (front ends)."""
        raise NotImplementedError

    async def verify(self, admitted: Sequence[Admitted]) -> None:
        """Verify every signature; InvalidSignature names the first one that does not verify."""
        checks = [c for a in admitted for c in a.checks]
        self.signatures_verified += len(checks)
        bad = await self._verifier.first_invalid(checks)
        if bad is not None:
            raise InvalidSignature(
                bad.field, "does not verify against its public key and the record's hash"
            )


class Writer(Appender):
    """Verifies admitted records' signatures and commits them durably to the WAL."""

    def __init__(self, wal: Wal, verifier: SignatureVerifier, tree: LogTree | None = None) -> None:
        super().__init__(verifier)
        self._wal = wal
        self._tree = tree  # the verifiable log: told each appended record's leaf suffix
        self._fatal_listeners: list[WalFatalListener] = []

    @property
    def wal(self) -> Wal:
        return self._wal

    def on_wal_fatal(self, listener: WalFatalListener) -> None:
        """Call ``listener(reason)`` (awaited, on the event loop) once, when the log becomes
        unusable."""
        self._fatal_listeners.append(listener)

    async def append(
        self,
        admitted: Sequence[Admitted],
        timeout_seconds: float | None = None,
        job: JobEnvelope | None = None,
        meter: MeterAsk | None = None,
    ) -> list[Receipt]:
        """Verify every signature, then append all records as one durable commit.

        ``job`` (a metered request's charge) travels with the first record, so an ingestor
        counts it once. Raises InvalidSignature naming the first signature that does not
        verify, or a WalError; nothing is written unless every record passes.
        """
        await self.verify(admitted)
        # The leaves' suffixes only for a tree (the bench's writer without one does no tree work).
        suffixes = (
            [leaf_suffix(a.record, a.canonical) for a in admitted] if self._tree is not None else []
        )
        lsns = await self.commit(wal_entries(admitted, job), suffixes, timeout_seconds)
        # Every LSN up to durable_lsn is durable, so the tree of this size holds the records
        # (the log tree extends to it right after the group commit, docs/verifiable-log.md).
        tree_size = self._wal.durable_lsn
        return [
            Receipt(a.content_hash, lsn, tree_size) for a, lsn in zip(admitted, lsns, strict=True)
        ]

    async def commit(
        self,
        entries: Sequence[tuple[int, bytes]],
        suffixes: Sequence[bytes],
        timeout_seconds: float | None = None,
    ) -> list[int]:
        """Append ready WAL entries as one durable commit and tell the log tree their leaf
        suffixes; the LSNs, consecutive. A WalError that leaves the log unusable is reported
        to the ``on_wal_fatal`` listeners first."""
        try:
            lsns = await self._wal.append_async(entries, timeout_seconds=timeout_seconds)
        except WalError as exc:
            if not isinstance(exc, _TRANSIENT_WAL_ERRORS):
                await self._wal_failed(str(exc))
            raise
        if self._tree is not None:
            self._tree.register(lsns, suffixes)
        return lsns

    async def _wal_failed(self, reason: str) -> None:
        if self.wal_failure is not None:
            return
        self.wal_failure = reason
        log_event(
            _log, logging.CRITICAL, "WAL unusable: refusing appends until restarted",
            reason=reason, durable_lsn=self._wal.durable_lsn,
        )  # fmt: skip
        for listener in self._fatal_listeners:
            try:
                await listener(reason)
            except Exception:  # a listener's bug must not hide the append's own error
                _log.exception("on_wal_fatal listener raised")
