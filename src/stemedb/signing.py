"""ed25519 signing and verification of record hashes (pynacl / libsodium).

A signature signs the record's 32-byte content hash (see :mod:`stemedb.canonical`). An assertion
or an epoch may carry several co-signatures; a vote carries exactly one, by its ``agent_id``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import nacl.bindings
import nacl.exceptions
import nacl.signing

from stemedb.errors import InvalidSignature, UntrustedSigner
from stemedb.v1 import records_pb2 as pb

__all__ = [
    "SigningKey",
    "check_record_signatures",
    "public_key_of",
    "sign_hash",
    "signature_entry",
    "verify",
]

SigningKey = nacl.signing.SigningKey


def public_key_of(key: nacl.signing.SigningKey) -> bytes:
    """The 32-byte public key of a signing key."""
    return bytes(key.verify_key)


def sign_hash(key: nacl.signing.SigningKey, content_hash: bytes) -> bytes:
    """The 64-byte ed25519 signature of a 32-byte content hash."""
    return key.sign(content_hash).signature


def signature_entry(key: nacl.signing.SigningKey, content_hash: bytes) -> pb.SignatureEntry:
    """A SignatureEntry (public key and signature) for a content hash."""
    return pb.SignatureEntry(public_key=public_key_of(key), signature=sign_hash(key, content_hash))


def verify(public_key: bytes, signature: bytes, content_hash: bytes) -> bool:
    """True when ``signature`` is a valid signature of ``content_hash`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        # The raw binding skips building a VerifyKey object: verification is the writer's
        # hottest path (about 80 us per signature), so every microsecond around it counts.
        nacl.bindings.crypto_sign_open(signature + content_hash, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def _signers(r: pb.Record, field: str) -> Iterable[tuple[str, bytes, bytes]]:
    kind = r.WhichOneof("kind")
    if kind == "vote":
        yield f"{field}.vote.signature", r.vote.agent_id, r.vote.signature
        return
    entries = r.assertion.signatures if kind == "assertion" else r.epoch.signatures
    for i, e in enumerate(entries):
        yield f"{field}.{kind}.signatures[{i}].signature", e.public_key, e.signature


def check_record_signatures(
    r: pb.Record,
    content_hash: bytes,
    field: str = "record",
    *,
    trusted_keys: Collection[bytes] | None = None,
    require_signatures: bool = False,
) -> int:
    """Verify every signature of a validated record; return how many were checked.

    Raises InvalidSignature (naming the signature) when one does not verify, InvalidSignature on
    an unsigned record when ``require_signatures`` is set, and UntrustedSigner when a valid
    signature's key is not in ``trusted_keys`` (when given).
    """
    count = 0
    for name, key, sig in _signers(r, field):
        if not verify(key, sig, content_hash):
            raise InvalidSignature(name, "does not verify against its public key and the hash")
        if trusted_keys is not None and key not in trusted_keys:
            raise UntrustedSigner(name, key.hex())
        count += 1
    if count == 0 and require_signatures:
        kind = r.WhichOneof("kind")
        raise InvalidSignature(
            f"{field}.{kind}.signatures", "at least one signature is required by this writer"
        )
    return count
