"""The keystore's on-disk format (version 1); docs/wallet.md is its byte-by-byte spec.

Every keystore file starts with the same 12-byte header: the magic ``STMDBWLT``, ``u16`` format
version, ``u16`` file kind. Then come the kind's clear fields, a 24-byte random nonce and a
XSalsa20-Poly1305 box (libsodium ``crypto_secretbox_easy``: 16-byte Poly1305 tag, then the
ciphertext) whose plaintext is a copy of every byte before the nonce followed by the kind's
secret payload. The box authenticates the clear fields: a change of any byte of a file makes it
fail to open (or its sealed copy differ), which :func:`open_file` reports with file and offset.

All integers are big-endian. The box key is derived once per keystore by Argon2id from the
passphrase and the salt stored in ``KEYSTORE``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils

from stemedb.wallet._errors import KeystoreCorrupt, KeystoreVersion

__all__ = [
    "CHECK_TEXT",
    "DEFAULT_KDF",
    "FORMAT_VERSION",
    "HEADER_BYTES",
    "KIND_KEY",
    "KIND_KEYSTORE",
    "KIND_SEQUENCE",
    "KIND_STATE",
    "MAGIC",
    "NAME_BYTES_MAX",
    "NAME_PATTERN",
    "NONCE_BYTES",
    "TAG_BYTES",
    "KdfParams",
    "check_header",
    "check_name",
    "derive_box_key",
    "file_bytes_max",
    "header",
    "open_file",
    "read_bounded",
    "seal_file",
]

MAGIC = b"STMDBWLT"
FORMAT_VERSION = 1
KIND_KEYSTORE = 1
KIND_KEY = 2
KIND_STATE = 3
KIND_SEQUENCE = 4
_KIND_NAMES = {
    KIND_KEYSTORE: "keystore",
    KIND_KEY: "key",
    KIND_STATE: "state",
    KIND_SEQUENCE: "sequence",
}
_HEADER = struct.Struct(">8sHH")
HEADER_BYTES = _HEADER.size  # 12
NONCE_BYTES = nacl.secret.SecretBox.NONCE_SIZE  # 24
TAG_BYTES = nacl.secret.SecretBox.MACBYTES  # 16

# The sealed check value of KEYSTORE: opening it proves the passphrase before any key is read,
# so even an empty keystore detects a wrong passphrase.
CHECK_TEXT = b"stemedb wallet keystore check v1"

# Key names double as file names: ASCII, no leading dot (dot files are fsio's temporaries).
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_BYTES_MAX = 64

# Argon2id bounds, checked on the parameters read from KEYSTORE before deriving: a damaged file
# must not make the wallet allocate terabytes or spin for hours.
KDF_ARGON2ID = 1
KDF_OPSLIMIT_MAX = 16
KDF_MEMLIMIT_BYTES_MAX = 1024 * 1024 * 1024  # libsodium's "sensitive" level
# Every file is small; STATE holds the default key's name and the retired names (at most
# keys_max of 64 bytes each), so 1 MiB bounds any keystore this wallet writes.
_FILE_BYTES_MAX = {KIND_KEYSTORE: 256, KIND_KEY: 512, KIND_STATE: 1024 * 1024, KIND_SEQUENCE: 256}


def file_bytes_max(kind: int) -> int:
    """The largest file of ``kind`` a reader accepts."""
    return _FILE_BYTES_MAX[kind]


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: ``opslimit`` passes over ``memlimit_bytes`` of memory."""

    opslimit: int
    memlimit_bytes: int

    def check(self, path: Path | None = None, offset: int = 13) -> None:
        ok_ops = nacl.pwhash.argon2id.OPSLIMIT_MIN <= self.opslimit <= KDF_OPSLIMIT_MAX
        ok_mem = nacl.pwhash.argon2id.MEMLIMIT_MIN <= self.memlimit_bytes <= KDF_MEMLIMIT_BYTES_MAX
        if ok_ops and ok_mem:
            return
        reason = (
            f"Argon2id opslimit {self.opslimit} / memlimit {self.memlimit_bytes} bytes outside "
            f"[{nacl.pwhash.argon2id.OPSLIMIT_MIN}, {KDF_OPSLIMIT_MAX}] / "
            f"[{nacl.pwhash.argon2id.MEMLIMIT_MIN}, {KDF_MEMLIMIT_BYTES_MAX}]"
        )
        if path is None:
            raise ValueError(reason)
        raise KeystoreCorrupt(path, offset, reason)


# libsodium's "moderate" opslimit (3 passes) over its "interactive" memory (64 MiB): about 0.3 s
# on one core, once per start. A keystore records its own parameters, so raising them later
# (--kdf-opslimit, --kdf-memlimit-bytes when a keystore is created) keeps old keystores readable.
DEFAULT_KDF = KdfParams(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
    memlimit_bytes=nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
)


def derive_box_key(passphrase: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    """The 32-byte XSalsa20-Poly1305 key of a keystore."""
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
        opslimit=kdf.opslimit, memlimit=kdf.memlimit_bytes,
    )  # fmt: skip


def header(kind: int) -> bytes:
    return _HEADER.pack(MAGIC, FORMAT_VERSION, kind)


def seal_file(box_key: bytes, clear: bytes, secret: bytes) -> bytes:
    """``clear`` (starting with the header), nonce, box(clear || secret)."""
    nonce = nacl.utils.random(NONCE_BYTES)
    sealed = nacl.secret.SecretBox(box_key).encrypt(clear + secret, nonce)
    return clear + bytes(sealed)  # EncryptedMessage = nonce || tag || ciphertext


def read_bounded(path: Path, kind: int) -> bytes:
    """The bytes of a keystore file, refusing one larger than its kind allows."""
    limit = file_bytes_max(kind)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise KeystoreCorrupt(path, limit, f"a {_KIND_NAMES[kind]} file is at most {limit} bytes")
    return data


def check_header(path: Path, data: bytes, kind: int) -> None:
    """Raise unless ``data`` starts with the header of a version-1 file of ``kind``."""
    if len(data) < HEADER_BYTES:
        raise KeystoreCorrupt(path, len(data), f"file ends inside the {HEADER_BYTES}-byte header")
    magic, version, found = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise KeystoreCorrupt(path, 0, f"bad magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise KeystoreVersion(
            f"{path}: at offset 8: keystore format version {version}; this wallet reads "
            f"version {FORMAT_VERSION} only"
        )
    if found != kind:
        raise KeystoreCorrupt(path, 10, f"file kind {found}, expected {kind} ({_KIND_NAMES[kind]})")


def open_file(path: Path, data: bytes, clear_bytes: int, box_key: bytes) -> bytes:
    """Open the box after ``clear_bytes`` clear bytes; return the secret payload.

    The box must authenticate and its sealed copy of the clear bytes must equal them.
    """
    box_at = clear_bytes + NONCE_BYTES
    if len(data) < box_at + TAG_BYTES + clear_bytes:
        raise KeystoreCorrupt(path, len(data), "file ends inside the sealed box")
    try:
        plain = nacl.secret.SecretBox(box_key).decrypt(data[clear_bytes:])
    except nacl.exceptions.CryptoError:
        raise KeystoreCorrupt(
            path, box_at, "sealed box fails authentication: the file was altered or damaged"
        ) from None
    if plain[:clear_bytes] != data[:clear_bytes]:
        raise KeystoreCorrupt(path, 0, "clear fields differ from their sealed copy")
    return plain[clear_bytes:]


def check_name(name: str, field: str = "name") -> str:
    """Return ``name`` when it is a valid key name, else raise ValueError naming ``field``."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{field}: {name!r} is not a key name: 1 to {NAME_BYTES_MAX} characters of "
            "[A-Za-z0-9_.-], starting with a letter or digit"
        )
    return name
