"""stemedb.wallet: the agent wallet (``stemedb-wallet``), a signing sidecar (DESIGN section 11).

It holds agents' ed25519 keys in a passphrase-sealed keystore (:class:`Keystore`), signs records
it canonicalizes itself (:class:`Signer`), and serves ``WalletService`` and a ``WriterService``
signing proxy on a Unix socket. Keys never leave it. docs/wallet.md is the manual and the
keystore's byte-level spec.
"""

from __future__ import annotations

from stemedb.wallet._errors import (
    BadRequest,
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreLocked,
    KeystoreVersion,
    KeyUnusable,
    TooManyKeys,
    WalletError,
    WrongPassphrase,
)
from stemedb.wallet._format import DEFAULT_KDF, FORMAT_VERSION, KdfParams
from stemedb.wallet._keystore import KeyInfo, Keystore, KeystoreLimits

__all__ = [
    "DEFAULT_KDF",
    "FORMAT_VERSION",
    "BadRequest",
    "KdfParams",
    "KeyExists",
    "KeyInfo",
    "KeyNotFound",
    "KeyUnusable",
    "Keystore",
    "KeystoreCorrupt",
    "KeystoreError",
    "KeystoreLimits",
    "KeystoreLocked",
    "KeystoreVersion",
    "TooManyKeys",
    "WalletError",
    "WrongPassphrase",
]
