"""Errors of the wallet, and the one table that maps them to gRPC status codes.

The hierarchy::

    StemeError                   (stemedb.errors)
    └── WalletError              base of every error this package raises
        ├── KeystoreError            the keystore cannot be opened; the service exits 2
        │   ├── WrongPassphrase      the sealed check value does not open with this passphrase
        │   ├── KeystoreVersion      a file of an unknown format version
        │   ├── KeystoreCorrupt      a file is damaged or tampered with (names file and offset)
        │   └── KeystoreLocked       another wallet process holds the keystore's LOCK
        ├── BadRequest               a malformed or refused request field (INVALID_ARGUMENT)
        ├── KeyNotFound              no key of that name (NOT_FOUND)
        ├── KeyExists                a key of that name exists already (ALREADY_EXISTS)
        ├── KeyUnusable              retired key, no key yet, retiring the default
        │                            (FAILED_PRECONDITION)
        └── TooManyKeys              the keystore holds keys_max keys (RESOURCE_EXHAUSTED)

``stemedb.errors.InvalidRecord`` (raised by :mod:`stemedb.validation` on a record the wallet is
asked to sign) maps to INVALID_ARGUMENT too.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from stemedb.errors import InvalidRecord, StemeError
from stemedb.runtime import StatusTable

__all__ = [
    "STATUS_TABLE",
    "BadRequest",
    "KeyExists",
    "KeyNotFound",
    "KeyUnusable",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreLocked",
    "KeystoreVersion",
    "TooManyKeys",
    "WalletError",
    "WrongPassphrase",
    "grpc_code_of",
]


class WalletError(StemeError):
    """Base class of every error raised by ``stemedb.wallet``."""


class KeystoreError(WalletError):
    """The keystore cannot be opened or used; the service refuses to start (exit 2)."""


class WrongPassphrase(KeystoreError):
    """The keystore's sealed check value does not open: the passphrase is wrong."""


class KeystoreVersion(KeystoreError):
    """A keystore file has a format version this wallet does not read."""


class KeystoreCorrupt(KeystoreError):
    """A keystore file is damaged or was tampered with."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"{path}: at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class KeystoreLocked(KeystoreError):
    """Another process holds the keystore's LOCK (one wallet per keystore)."""


class BadRequest(WalletError):
    """A request field is missing, malformed or refused; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class KeyNotFound(WalletError):
    """No key has this name."""


class KeyExists(WalletError):
    """A key of this name exists already (key files are never overwritten)."""


class KeyUnusable(WalletError):
    """The key cannot do this: it is retired, it is the default, or there is no key at all."""


class TooManyKeys(WalletError):
    """The keystore holds its maximum number of keys."""


STATUS_TABLE = StatusTable({
    BadRequest: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidRecord: grpc.StatusCode.INVALID_ARGUMENT,
    KeyNotFound: grpc.StatusCode.NOT_FOUND,
    KeyExists: grpc.StatusCode.ALREADY_EXISTS,
    KeyUnusable: grpc.StatusCode.FAILED_PRECONDITION,
    TooManyKeys: grpc.StatusCode.RESOURCE_EXHAUSTED,
})  # fmt: skip


def grpc_code_of(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code of an error (INTERNAL for anything unexpected)."""
    return STATUS_TABLE.code_of(exc)
