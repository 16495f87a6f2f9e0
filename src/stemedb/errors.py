"""The errors of the stemedb core.

Hierarchy::

    StemeError                      base of every error raised by stemedb's own code
    ├── InvalidRecord               a record breaks a rule; names the field (INVALID_ARGUMENT)
    │   └── InvalidSignature        a signature does not verify or has the wrong length
    ├── UntrustedSigner             a valid signature by a key outside the trusted list
    │                               (PERMISSION_DENIED)
    ├── stemedb.wal.WalError        the write-ahead log's own hierarchy (``stemedb.wal``)
    └── stemedb.ingestor.IngestorError  the ingestor's own hierarchy

Each service maps its errors to gRPC status codes in one ``stemedb.runtime.StatusTable``
(``stemedb.writer`` and ``stemedb.ingestor``).
"""

from __future__ import annotations

__all__ = ["InvalidRecord", "InvalidSignature", "StemeError", "UntrustedSigner"]


class StemeError(Exception):
    """Base class of stemedb's own errors."""


class InvalidRecord(StemeError):
    """A field breaks a rule; ``field`` names it with its path, e.g. ``records[2].vote.weight``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidSignature(InvalidRecord):
    """A signature that does not verify against its key and the record's hash, or is malformed."""


class UntrustedSigner(StemeError):
    """A signature verifies, but its key is not in the trusted-key list."""

    def __init__(self, field: str, public_key_hex: str) -> None:
        super().__init__(f"{field}: key {public_key_hex} is not a trusted signer")
        self.field = field
        self.public_key_hex = public_key_hex
