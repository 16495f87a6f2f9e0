"""Agent keys: generate an ed25519 key, keep it in a key file, sign records with it.

Key file format (JSON, written with mode 0600, never group- or world-readable)::

    {"type": "ed25519", "seed": "<64 hex digits>", "public_key": "<64 hex digits>"}

``seed`` is the 32-byte ed25519 private seed; ``public_key`` is derived from it and stored so a
person (or a trusted-keys list) can read the agent's identity without the library; loading checks
that the two agree. The file is written with :func:`stemedb.fsio.create_exclusive`: a temporary
file in the same folder, fsynced, then hard-linked to the key's name (``link`` fails when the name
exists, dangling symlink included, so there is no window between a check and the write in which
another process's key could be overwritten) and the folder fsynced. A crash leaves no key file
or the whole one. ``overwrite=True`` replaces an existing key atomically
(:func:`stemedb.fsio.atomic_replace`).
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nacl.signing

from stemedb import canonical, fsio, signing, validation
from stemedb.client._errors import KeyFileError
from stemedb.client._records import normalize_assertion, normalize_epoch
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.validation import validate_assertion, validate_epoch

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

__all__ = ["KEY_FILE_MODE", "AgentKey"]

KEY_FILE_MODE = 0o600
_SEED_BYTES = 32


@dataclass(frozen=True)
class AgentKey:
    """An agent's ed25519 signing key. ``public_key`` (32 bytes) is the agent's identity."""

    signing_key: nacl.signing.SigningKey

    @classmethod
    def generate(cls) -> AgentKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> AgentKey:
        """The key of a 32-byte seed (deterministic: for tests and key derivation)."""
        if len(seed) != _SEED_BYTES:
            raise ValueError(f"an ed25519 seed is {_SEED_BYTES} bytes, got {len(seed)}")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self.signing_key)

    @property
    def public_key(self) -> bytes:
        return signing.public_key_of(self.signing_key)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    # --- files -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, str]:
        return {"type": "ed25519", "seed": self.seed.hex(), "public_key": self.public_key_hex}

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the key file (mode 0600), creating its folder (mode 0700) when missing.

        Never overwrites unless ``overwrite``: the name is taken atomically (``link``), so two
        ``keygen`` runs racing for one path leave one key and one KeyFileError.
        """
        target = Path(path).expanduser()
        data = (json.dumps(self.to_json(), indent=2) + "\n").encode()
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if overwrite:
                fsio.atomic_replace(target, data, mode=KEY_FILE_MODE)
            else:
                fsio.create_exclusive(target, data, mode=KEY_FILE_MODE)
        except FileExistsError as exc:
            raise KeyFileError(f"{target}: already exists; refusing to overwrite a key") from exc
        except OSError as exc:
            raise KeyFileError(f"{target}: cannot write: {exc.strerror or exc}") from exc
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AgentKey:
        """Read a key file; refuse one that others can read, or a malformed one."""
        source = Path(path).expanduser()
        try:
            mode = stat.S_IMODE(source.stat().st_mode)
            text = source.read_text()
        except OSError as exc:
            raise KeyFileError(f"{source}: cannot read key file: {exc.strerror or exc}") from exc
        if mode & 0o077:
            raise KeyFileError(
                f"{source}: key file mode is {mode:04o}; it must not be readable by others "
                f"(chmod 600 {source})"
            )
        try:
            data = json.loads(text)
            seed = bytes.fromhex(data["seed"])
            public_hex = data["public_key"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(
                f"{source}: not a stemedb key file (JSON with seed and public_key hex)"
            ) from exc
        if len(seed) != _SEED_BYTES:
            raise KeyFileError(f"{source}: seed must be {_SEED_BYTES} bytes of hex")
        key = cls.from_seed(seed)
        if not isinstance(public_hex, str) or public_hex.lower() != key.public_key_hex:
            raise KeyFileError(f"{source}: public_key does not match the seed")
        return key

    # --- signing -----------------------------------------------------------------------------

    def sign_hash(self, content_hash: bytes) -> bytes:
        """The 64-byte signature of a 32-byte content hash."""
        return signing.sign_hash(self.signing_key, content_hash)

    def sign_assertion(self, assertion: pb.Assertion) -> pb.Assertion:
        """Add (co-sign) this key's signature to ``assertion`` in place; return it.

        Signing twice with the same key is a no-op: a record holds one entry per key. Subject
        and predicate are normalized to NFC first (what is signed is what the writer accepts),
        then the assertion is validated, so a bad field is an InvalidRecord naming it.
        """
        normalize_assertion(assertion)
        validate_assertion(assertion)
        digest = canonical.content_hash(canonical.assertion_bytes(assertion))
        self._add_entry(assertion.signatures, digest)
        return assertion

    def sign_epoch(self, epoch: pb.Epoch) -> pb.Epoch:
        """Add (co-sign) this key's signature to ``epoch`` in place (name NFC-normalized first);
        return it."""
        normalize_epoch(epoch)
        validate_epoch(epoch)
        digest = canonical.content_hash(canonical.epoch_bytes(epoch))
        self._add_entry(epoch.signatures, digest)
        return epoch

    def vote(self, assertion_hash: bytes, weight: float) -> pb.Vote:
        """A signed vote by this key on an assertion (weight in [-1, 1])."""
        if len(assertion_hash) != validation.HASH_BYTES:
            raise InvalidRecord(
                "vote.assertion_hash", f"must be 32 bytes, got {len(assertion_hash)}"
            )
        v = pb.Vote(assertion_hash=assertion_hash, agent_id=self.public_key, weight=weight)
        v.signature = self.sign_hash(canonical.content_hash(canonical.vote_bytes(v)))
        return v

    def _add_entry(
        self, entries: RepeatedCompositeFieldContainer[pb.SignatureEntry], digest: bytes
    ) -> None:
        public_key = self.public_key
        if any(e.public_key == public_key for e in entries):
            return
        entries.append(pb.SignatureEntry(public_key=public_key, signature=self.sign_hash(digest)))
