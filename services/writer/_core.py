"""The writer's logic, free of gRPC: verify, hash, and durably append validated records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from stemedb import canonical
from stemedb.errors import InvalidSignature, StemeError, UntrustedSigner
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import Wal
from stemedb.walrecord import TYPE_OF_KIND, encode_payload
from stemedb.writer._verify import SignatureCheck, SignatureVerifier

__all__ = ["Overloaded", "Receipt", "Writer"]


class Overloaded(StemeError):
    """More requests or records in flight than the writer's bounds allow."""


@dataclass(frozen=True)
class Receipt:
    content_hash: bytes
    lsn: int


class Writer:
    """Appends validated records: hash, verify signatures, enforce policy, commit durably."""

    def __init__(
        self,
        wal: Wal,
        verifier: SignatureVerifier,
        *,
        require_signatures: bool = False,
        trusted_keys: Collection[bytes] | None = None,
        inflight_records_max: int = 200_000,
    ) -> None:
        self._wal = wal
        self._verifier = verifier
        self._require_signatures = require_signatures
        self._trusted = trusted_keys
        self._inflight_records_max = inflight_records_max
        self._inflight_records = 0

    @property
    def wal(self) -> Wal:
        return self._wal

    def _checks(
        self, records: Sequence[pb.Record], kinds: Sequence[str], fields: Sequence[str],
        hashes: Sequence[bytes],
    ) -> list[SignatureCheck]:  # fmt: skip
        checks: list[SignatureCheck] = []
        for r, kind, field, h in zip(records, kinds, fields, hashes, strict=True):
            if kind == "vote":
                v = r.vote
                checks.append(SignatureCheck(f"{field}.signature", v.agent_id, v.signature, h))
                continue
            entries = r.assertion.signatures if kind == "assertion" else r.epoch.signatures
            if not entries and self._require_signatures:
                raise InvalidSignature(
                    f"{field}.signatures", "at least one signature is required by this writer"
                )
            for i, e in enumerate(entries):
                checks.append(
                    SignatureCheck(f"{field}.signatures[{i}].signature", e.public_key,
                                   e.signature, h)
                )  # fmt: skip
        return checks

    async def append(
        self,
        records: Sequence[pb.Record],
        kinds: Sequence[str],
        fields: Sequence[str],
        timeout_seconds: float | None = None,
    ) -> list[Receipt]:
        """Append validated ``records`` (their ``kinds`` and error ``fields`` paths given) as one
        all-or-nothing durable commit. Raises InvalidSignature, UntrustedSigner, Overloaded or a
        WalError; nothing is written unless every record passes."""
        count = len(records)
        if self._inflight_records + count > self._inflight_records_max:
            raise Overloaded(
                f"{self._inflight_records} records in flight; the bound is "
                f"{self._inflight_records_max}: retry later"
            )
        self._inflight_records += count
        try:
            hashes = [canonical.record_hash(r) for r in records]
            checks = self._checks(records, kinds, fields, hashes)
            bad = await self._verifier.first_invalid(checks)
            if bad is not None:
                raise InvalidSignature(
                    bad.field, "does not verify against its public key and the record's hash"
                )
            if self._trusted is not None:
                for c in checks:
                    if c.public_key not in self._trusted:
                        raise UntrustedSigner(c.field, c.public_key.hex())
            entries = [
                (TYPE_OF_KIND[kind], encode_payload(h, r.SerializeToString()))
                for r, kind, h in zip(records, kinds, hashes, strict=True)
            ]
            lsns = await self._wal.append_async(entries, timeout_seconds=timeout_seconds)
        finally:
            self._inflight_records -= count
        return [Receipt(h, lsn) for h, lsn in zip(hashes, lsns, strict=True)]
