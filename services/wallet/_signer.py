"""The signer: validates a record, canonicalizes it itself and signs its hash with a wallet key.

The wallet never signs bytes a caller supplies: it computes the record's canonical bytes and hash
with :mod:`stemedb.canonical` and signs that hash with :mod:`stemedb.signing`. A vote's
``agent_id`` and ``sequence`` are the wallet's to fill: a vote naming another key, or carrying
a sequence or a signature, is refused. Every signature is logged (key name, record kind, hash;
never key bytes) and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.signing

from stemedb import canonical, validation
from stemedb.errors import InvalidRecord
from stemedb.runtime import log_event
from stemedb.signing import public_key_of, sign_hash
from stemedb.v1 import records_pb2 as pb
from stemedb.wallet._errors import BadRequest
from stemedb.wallet._keystore import KeyInfo, Keystore
from stemedb.wallet._metrics import WalletMetrics

__all__ = ["Signed", "Signer", "is_unsigned", "needs_signature"]

_log = logging.getLogger("stemedb.wallet")

# v1 canonical vote bytes: tag, assertion hash, agent id, weight. With a sequence, u64 follows.
_V1_VOTE_BYTES = len(canonical.VOTE_TAG) + 32 + 32 + 8
_PLACEHOLDER_SIGNATURE = bytes(validation.SIGNATURE_BYTES)


@dataclass(frozen=True)
class Signed:
    """One signature made: the record's content hash and the key that signed."""

    kind: str
    content_hash: bytes
    key: KeyInfo


def is_unsigned(rec: pb.Assertion | pb.Vote | pb.Epoch) -> bool:
    """True for a record that carries no signature at all."""
    if isinstance(rec, pb.Vote):
        return not rec.signature
    return len(rec.signatures) == 0


def needs_signature(record: pb.Record) -> bool:
    """True for a record that arrives unsigned (the proxy signs those, passes the others)."""
    kind = record.WhichOneof("kind")
    return kind is not None and is_unsigned(getattr(record, kind))


class Signer:
    """Signs records in place with keys of one keystore."""

    def __init__(
        self,
        keystore: Keystore,
        metrics: WalletMetrics | None = None,
        limits: validation.Limits = validation.DEFAULT_LIMITS,
    ) -> None:
        self._keystore = keystore
        self._metrics = metrics
        self._limits = limits

    # ------------------------------------------------------------- one record per call
    def sign_assertion(
        self, a: pb.Assertion, key_name: str = "", field: str = "assertion"
    ) -> Signed:
        """Add the key's (public key, signature) to ``a.signatures`` (in place)."""
        info, key = self._keystore.signing_key(key_name)
        signed = self._cosign(a, "assertion", field, info, key)
        self._record([signed])
        return signed

    def sign_epoch(self, e: pb.Epoch, key_name: str = "", field: str = "epoch") -> Signed:
        """Add the key's (public key, signature) to ``e.signatures`` (in place)."""
        info, key = self._keystore.signing_key(key_name)
        signed = self._cosign(e, "epoch", field, info, key)
        self._record([signed])
        return signed

    def sign_vote(self, v: pb.Vote, key_name: str = "", field: str = "vote") -> Signed:
        """Fill ``agent_id``, ``sequence`` and ``signature`` of ``v`` (in place)."""
        info, key = self._keystore.signing_key(key_name)
        self._check_vote(v, field, info)
        first = self._keystore.take_sequences(info.name, 1)
        signed = self._sign_vote(v, first, info, key)
        self._record([signed])
        return signed

    # ------------------------------------------------------------- the proxy's batches
    def sign_unsigned(
        self, records: Sequence[pb.Record], fields: Sequence[str], key_name: str = ""
    ) -> list[Signed]:
        """Sign, in place, every record of ``records`` that carries no signature; leave the
        others untouched. Everything is checked before the first signature or sequence is
        taken, so a refused request consumes nothing. ``fields`` names each record in errors."""
        todo = [i for i, r in enumerate(records) if needs_signature(r)]
        if not todo:
            return []
        info, key = self._keystore.signing_key(key_name)
        votes = []
        for i in todo:
            r, f = records[i], fields[i]
            kind = r.WhichOneof("kind")
            if kind == "vote":
                self._check_vote(r.vote, f, info)
                votes.append(i)
            elif kind == "assertion":
                self._check_cosign(r.assertion, f, info)
            elif kind == "epoch":
                self._check_cosign(r.epoch, f, info)
        sequence = self._keystore.take_sequences(info.name, len(votes)) if votes else 0
        out: list[Signed] = []
        for i in todo:
            r = records[i]
            kind = r.WhichOneof("kind")
            if kind == "vote":
                out.append(self._sign_vote(r.vote, sequence, info, key))
                sequence += 1
            elif kind == "assertion":
                out.append(self._add_signature(r.assertion, "assertion", info, key))
            else:
                out.append(self._add_signature(r.epoch, "epoch", info, key))
        self._record(out)
        return out

    # ------------------------------------------------------------- checks
    def _check_cosign(self, rec: pb.Assertion | pb.Epoch, field: str, info: KeyInfo) -> None:
        if isinstance(rec, pb.Assertion):
            validation.validate_assertion(rec, field, self._limits)
        else:
            validation.validate_epoch(rec, field, self._limits)
        others = sum(1 for s in rec.signatures if s.public_key != info.public_key)
        if others + 1 > self._limits.signatures_max:
            raise InvalidRecord(
                f"{field}.signatures",
                f"holds {others} signatures: no room for the wallet's under the limit of "
                f"{self._limits.signatures_max}",
            )

    def _check_vote(self, v: pb.Vote, field: str, info: KeyInfo) -> None:
        if v.signature:
            raise BadRequest(f"{field}.signature", "must be empty: the wallet signs the vote")
        if v.agent_id and v.agent_id != info.public_key:
            raise BadRequest(
                f"{field}.agent_id",
                f"names key {v.agent_id.hex()}, not the wallet key {info.name!r} "
                f"({info.public_key.hex()}): the wallet votes only as its own keys",
            )
        if v.sequence:
            raise BadRequest(
                f"{field}.sequence", "must be 0: the wallet assigns the key's next sequence"
            )
        probe = pb.Vote()
        probe.CopyFrom(v)
        probe.agent_id = info.public_key
        probe.signature = _PLACEHOLDER_SIGNATURE
        validation.validate_vote(probe, field, self._limits)

    # ------------------------------------------------------------- signing
    def _cosign(
        self,
        rec: pb.Assertion | pb.Epoch,
        kind: str,
        field: str,
        info: KeyInfo,
        key: nacl.signing.SigningKey,
    ) -> Signed:
        self._check_cosign(rec, field, info)
        return self._add_signature(rec, kind, info, key)

    @staticmethod
    def _add_signature(
        rec: pb.Assertion | pb.Epoch, kind: str, info: KeyInfo, key: nacl.signing.SigningKey
    ) -> Signed:
        if isinstance(rec, pb.Assertion):
            content_hash = canonical.content_hash(canonical.assertion_bytes(rec))
        else:
            content_hash = canonical.content_hash(canonical.epoch_bytes(rec))
        signature = sign_hash(key, content_hash)
        for entry in rec.signatures:
            if entry.public_key == info.public_key:
                entry.signature = signature  # ed25519 is deterministic: the same value again
                break
        else:
            rec.signatures.add(public_key=info.public_key, signature=signature)
        return Signed(kind, content_hash, info)

    @staticmethod
    def _sign_vote(
        v: pb.Vote, sequence: int, info: KeyInfo, key: nacl.signing.SigningKey
    ) -> Signed:
        if public_key_of(key) != info.public_key:
            raise RuntimeError(f"key {info.name!r}: signing key and public key differ")
        v.agent_id = info.public_key
        v.sequence = sequence
        data = canonical.vote_bytes(v)
        # The sequence is only worth signing if the hash covers it (DESIGN 9.1).
        if sequence < 1 or len(data) != _V1_VOTE_BYTES + 8:
            raise RuntimeError(
                f"canonical vote bytes are {len(data)} bytes with sequence {sequence}: the "
                "sequence would not be signed"
            )
        content_hash = canonical.content_hash(data)
        v.signature = sign_hash(key, content_hash)
        return Signed("vote", content_hash, info)

    def _record(self, signed: Sequence[Signed]) -> None:
        if self._metrics is not None:
            counts: dict[str, int] = {}
            for s in signed:
                counts[s.kind] = counts.get(s.kind, 0) + 1
            for kind, n in counts.items():
                self._metrics.signatures.labels(kind).inc(n)
        if not signed:
            return
        log_event(
            _log, logging.INFO, "signed",
            key=signed[0].key.name, records=len(signed),
            kinds=sorted({s.kind for s in signed}),
            hashes=[s.content_hash.hex() for s in signed],
        )  # fmt: skip
