"""Helpers of the wallet tests: a fast (but real) Argon2id, key-material scans, a wallet process."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import nacl.pwhash.argon2id

from stemedb.wallet import KdfParams, Keystore
from tests.support import BIN, Service, free_port

PASSPHRASE = b"correct horse battery staple"
# Argon2id at its minimum cost: the same code path as the default, in milliseconds, so that
# tests can open a keystore hundreds of times. One test runs the documented default.
FAST_KDF = KdfParams(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
FAST_KDF_FLAGS = ["--kdf-opslimit", str(FAST_KDF.opslimit),
                  "--kdf-memlimit-bytes", str(FAST_KDF.memlimit_bytes)]  # fmt: skip
WINDOW_BYTES = 8  # no 8-byte run of a secret may appear anywhere


def secrets_of(store: Keystore) -> dict[str, list[bytes]]:
    """Every key's private material: its 32-byte ed25519 seed (libsodium's 64-byte secret key
    is the seed followed by the public key, which is public)."""
    out = {}
    for info in store.list_keys():
        key = store._keys[info.name].signing_key  # retired keys too (signing_key refuses them)
        seed = bytes(key)
        if bytes(key._signing_key) != seed + info.public_key:
            raise AssertionError("libsodium's secret key is not seed || public key")
        out[info.name] = [seed]
    return out


def _windows(secret: bytes) -> Iterable[bytes]:
    for i in range(len(secret) - WINDOW_BYTES + 1):
        yield secret[i : i + WINDOW_BYTES]


def leaks(blob: bytes, secrets: Iterable[bytes]) -> list[str]:
    """The secrets found in ``blob``, raw or as hex (either case), by any 8-byte window."""
    found = []
    lowered = blob.lower()
    for secret in secrets:
        for w in _windows(secret):
            if w in blob or w.hex().encode() in lowered:
                found.append(secret[:4].hex() + "...")
                break
    return found


def start_wallet(
    keystore: Path, listen_dir: Path, *extra: str, writer: str = "127.0.0.1:1",
    passphrase: bytes = PASSPHRASE, env: dict[str, str] | None = None,
    socket: Path | None = None,
) -> Service:  # fmt: skip
    """A stemedb-wallet process on a Unix socket (``socket``, else a new one under
    ``listen_dir``), with a fast KDF."""
    socket = socket or listen_dir / f"wallet-{free_port()}.sock"
    mport = free_port()
    argv = [
        str(BIN / "stemedb-wallet"), "--keystore", str(keystore), "--listen", f"unix:{socket}",
        "--writer", writer, "--metrics-listen", f"127.0.0.1:{mport}", *FAST_KDF_FLAGS, *extra,
    ]  # fmt: skip
    log = listen_dir / f"wallet-{mport}.log"
    return Service(
        argv, f"unix:{socket}", f"127.0.0.1:{mport}", log,
        {"STEMEDB_WALLET_PASSPHRASE": passphrase.decode(), **(env or {})},
    )  # fmt: skip
