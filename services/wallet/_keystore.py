"""The keystore: one sealed file per key, the default/retired state, per-key vote sequences.

Layout of ``--keystore DIR`` (docs/wallet.md has every byte)::

    KEYSTORE        Argon2id parameters, salt and the sealed check value; written once
    STATE           the default key and the retired keys; replaced atomically
    <name>.key      one key: name, public key, creation time, sealed ed25519 seed; written once
    <name>.seq      the key's next unreserved vote sequence; replaced atomically
    LOCK            flock'ed by the one wallet process that uses the keystore

Every file is mode 0600 and goes through :mod:`stemedb.fsio` (key files and KEYSTORE with
``create_exclusive``: never overwritten, a crash leaves no file or the whole file; STATE and the
sequence files with ``atomic_replace``), so a SIGKILL at any point leaves a keystore that opens.

Vote sequences are reserved in blocks: before handing out sequence ``n`` the wallet has made
``<name>.seq`` say a value above ``n`` durable. A restart resumes at the persisted value, so a
crash skips at most one block and never hands out a sequence twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
import nacl.utils

from stemedb import fsio
from stemedb.signing import public_key_of
from stemedb.validation import DEFAULT_LIMITS
from stemedb.wallet import _format as fmt
from stemedb.wallet._errors import (
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreLocked,
    KeyUnusable,
    TooManyKeys,
    WrongPassphrase,
)

__all__ = ["SEQUENCE_MAX", "KeyInfo", "Keystore", "KeystoreLimits"]

_KEYSTORE = "KEYSTORE"
_STATE = "STATE"
_LOCK = "LOCK"
_FILE_MODE = 0o600
_DIR_MODE = 0o700
# The largest vote sequence the wallet hands out: validation's bound (2^53 - 1, exact as a JSON
# number in every language), so a vote the wallet signs is never one the writer refuses.
SEQUENCE_MAX = DEFAULT_LIMITS.vote_sequence_max

_KEYSTORE_CLEAR = struct.Struct(">BQQ16s")  # kdf id, opslimit, memlimit, salt
_STATE_CLEAR = struct.Struct(">Q")  # generation
_KEY_TAIL = struct.Struct(">32sQ")  # public key, created_unix_ms
_SEQ_TAIL = struct.Struct(">Q")  # next unreserved sequence
_NAME_LEN = struct.Struct(">H")


@dataclass(frozen=True)
class KeystoreLimits:
    """Bounds of a keystore: how many keys, and the vote-sequence reservation block."""

    keys_max: int = 1024
    # Sequences reserved per durable write of <name>.seq: one fsync per this many votes, and
    # at most this many sequences skipped by a crash.
    sequence_block_votes: int = 1024
    # The most sequences one request may take at once (one AppendBatch of votes).
    sequences_per_call_max: int = 10_000


@dataclass(frozen=True)
class KeyInfo:
    """What may be said about a key outside the wallet: never its private half."""

    name: str
    public_key: bytes
    created_unix_ms: int
    is_default: bool
    retired: bool


@dataclass
class _Key:
    name: str
    public_key: bytes
    created_unix_ms: int
    signing_key: nacl.signing.SigningKey
    next_sequence: int  # the next sequence to hand out
    reserved_until: int  # what <name>.seq says: every sequence below it may have been used


class Keystore:
    """An opened, unlocked keystore. Thread-safe; one per directory (LOCK)."""

    def __init__(
        self, directory: Path, box_key: bytes, lock_fd: int, limits: KeystoreLimits
    ) -> None:
        self.directory = directory
        self._box_key = box_key
        self._lock_fd = lock_fd
        self._limits = limits
        self._mutex = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._default: str | None = None
        self._retired: set[str] = set()
        self._generation = 0

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        directory: Path,
        passphrase: bytes,
        *,
        kdf: fmt.KdfParams = fmt.DEFAULT_KDF,
        limits: KeystoreLimits | None = None,
    ) -> Keystore:
        """Lock, unlock (creating a new keystore with ``kdf`` when DIR holds none) and load.

        Raises a KeystoreError subclass on a wrong passphrase, a damaged or tampered file, a
        keystore of another format version or one already in use.
        """
        if not passphrase:
            raise KeystoreError("the passphrase is empty")
        limits = limits or KeystoreLimits()
        _make_dir(directory)
        lock_fd = _lock(directory)
        try:
            box_key = _unlock(directory, passphrase, kdf)
            store = cls(directory, box_key, lock_fd, limits)
            store._load()
        except BaseException:
            os.close(lock_fd)
            raise
        return store

    def close(self) -> None:
        with self._mutex:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def _load(self) -> None:
        d = self.directory
        names = sorted(p.name[: -len(".key")] for p in d.glob("*.key") if p.name[0] != ".")
        if len(names) > self._limits.keys_max:
            raise KeystoreError(f"{d}: {len(names)} key files, more than keys_max")
        for name in names:
            self._keys[name] = self._read_key(name)
        state_path = d / _STATE
        if not state_path.exists():
            if self._keys:
                raise KeystoreCorrupt(state_path, 0, "STATE is missing but key files exist")
            self._write_state()  # a crash between KEYSTORE and STATE at creation
            return
        data = fmt.read_bounded(state_path, fmt.KIND_STATE)
        fmt.check_header(state_path, data, fmt.KIND_STATE)
        clear = fmt.HEADER_BYTES + _STATE_CLEAR.size
        payload = fmt.open_file(state_path, data, clear, self._box_key)
        (self._generation,) = _STATE_CLEAR.unpack_from(data, fmt.HEADER_BYTES)
        try:
            doc = json.loads(payload.decode("utf-8"))
            default, retired = doc["default"], doc["retired"]
        except (ValueError, KeyError, TypeError) as exc:
            raise KeystoreCorrupt(state_path, clear, f"sealed state is not valid: {exc}") from None
        for name in [*([default] if default is not None else []), *retired]:
            if name not in self._keys:
                raise KeystoreCorrupt(state_path, clear, f"state names a missing key {name!r}")
        self._default = default
        self._retired = set(retired)

    def _read_key(self, name: str) -> _Key:
        path = self.directory / f"{name}.key"
        data = fmt.read_bounded(path, fmt.KIND_KEY)
        file_name = _read_name(path, data)
        if file_name != name:
            raise KeystoreCorrupt(path, 14, f"holds key {file_name!r}, not {name!r}")
        at = fmt.HEADER_BYTES + _NAME_LEN.size + len(name)
        if len(data) < at + _KEY_TAIL.size:
            raise KeystoreCorrupt(path, len(data), "file ends inside the public key")
        public_key, created = _KEY_TAIL.unpack_from(data, at)
        clear = at + _KEY_TAIL.size
        seed = fmt.open_file(path, data, clear, self._box_key)
        expected = clear + fmt.NONCE_BYTES + fmt.TAG_BYTES + clear + 32
        if len(seed) != 32 or len(data) != expected:
            raise KeystoreCorrupt(path, min(len(data), expected), "key file has the wrong length")
        signing_key = nacl.signing.SigningKey(seed)
        if public_key_of(signing_key) != public_key:
            raise KeystoreCorrupt(path, at, "public key does not match the sealed private key")
        reserved = self._read_sequence(name)
        return _Key(name, public_key, created, signing_key, reserved, reserved)

    def _read_sequence(self, name: str) -> int:
        path = self.directory / f"{name}.seq"
        if not path.exists():
            raise KeystoreCorrupt(path, 0, f"vote sequence file of key {name!r} is missing")
        data = fmt.read_bounded(path, fmt.KIND_SEQUENCE)
        if _read_name(path, data) != name:
            raise KeystoreCorrupt(path, 14, f"is not the sequence file of key {name!r}")
        at = fmt.HEADER_BYTES + _NAME_LEN.size + len(name)
        if len(data) < at + _SEQ_TAIL.size:
            raise KeystoreCorrupt(path, len(data), "file ends inside the sequence")
        (reserved,) = _SEQ_TAIL.unpack_from(data, at)
        clear = at + _SEQ_TAIL.size
        if fmt.open_file(path, data, clear, self._box_key) != b"":
            raise KeystoreCorrupt(path, clear, "sequence file has a sealed payload")
        if len(data) != clear + fmt.NONCE_BYTES + fmt.TAG_BYTES + clear:
            raise KeystoreCorrupt(path, len(data), "sequence file has the wrong length")
        if not 1 <= reserved <= SEQUENCE_MAX + 1:
            raise KeystoreCorrupt(
                path,
                at,
                f"next sequence {reserved} outside [1, {SEQUENCE_MAX + 1}] (sequences start at 1)",
            )
        return int(reserved)

    # ----------------------------------------------------------------- writing
    def _check_open(self) -> None:
        # Writing without the LOCK could race another wallet on the same counters.
        if self._lock_fd < 0:
            raise KeystoreError(f"{self.directory}: the keystore is closed")

    def _write_state(self) -> None:
        self._check_open()
        self._generation += 1
        clear = fmt.header(fmt.KIND_STATE) + _STATE_CLEAR.pack(self._generation)
        doc = {"default": self._default, "retired": sorted(self._retired)}
        payload = json.dumps(doc, sort_keys=True).encode("utf-8")
        data = fmt.seal_file(self._box_key, clear, payload)
        fsio.atomic_replace(self.directory / _STATE, data, mode=_FILE_MODE)

    def _write_sequence(self, name: str, reserved: int) -> None:
        self._check_open()
        data = fmt.seal_file(
            self._box_key, _named_clear(fmt.KIND_SEQUENCE, name, _SEQ_TAIL.pack(reserved)), b""
        )
        fsio.atomic_replace(self.directory / f"{name}.seq", data, mode=_FILE_MODE)

    # ----------------------------------------------------------------- keys
    def _info(self, key: _Key) -> KeyInfo:
        return KeyInfo(
            name=key.name, public_key=key.public_key, created_unix_ms=key.created_unix_ms,
            is_default=key.name == self._default_name(), retired=key.name in self._retired,
        )  # fmt: skip

    def _default_name(self) -> str | None:
        if self._default is not None:
            return self._default
        if not self._keys:
            return None
        # Never changed: the first key created (a crash may have left STATE unwritten).
        return min(self._keys.values(), key=lambda k: (k.created_unix_ms, k.name)).name

    def _find(self, name: str | None) -> _Key:
        if not name:
            default = self._default_name()
            if default is None:
                raise KeyUnusable("the wallet holds no key yet: create one first")
            return self._keys[default]
        key = self._keys.get(name)
        if key is None:
            raise KeyNotFound(f"no key named {name!r}")
        return key

    def list_keys(self) -> list[KeyInfo]:
        """Every key, retired ones included, sorted by name."""
        with self._mutex:
            return [self._info(self._keys[n]) for n in sorted(self._keys)]

    def get(self, name: str | None = None) -> KeyInfo:
        """One key by name; the default key for None or an empty name."""
        with self._mutex:
            return self._info(self._find(name))

    def signing_key(self, name: str | None = None) -> tuple[KeyInfo, nacl.signing.SigningKey]:
        """The key that signs for ``name`` (the default when empty); refuses a retired key."""
        with self._mutex:
            key = self._find(name)
            if key.name in self._retired:
                raise KeyUnusable(f"key {key.name!r} is retired and signs nothing")
            return self._info(key), key.signing_key

    def create_key(self, name: str, *, make_default: bool = False) -> KeyInfo:
        """Create and persist a new key. Its sequence file is made durable before its key file,
        so a key that exists always has its counter."""
        with self._mutex:
            self._check_open()
            if name in self._keys:
                raise KeyExists(f"a key named {name!r} exists already")
            if len(self._keys) >= self._limits.keys_max:
                raise TooManyKeys(f"the keystore holds {len(self._keys)} keys, its keys_max")
            signing_key = nacl.signing.SigningKey.generate()
            public_key = public_key_of(signing_key)
            created = time.time_ns() // 1_000_000
            reserved = self._orphan_sequence(name)
            if reserved is None:
                reserved = 1
                seq = _named_clear(fmt.KIND_SEQUENCE, name, _SEQ_TAIL.pack(reserved))
                fsio.create_exclusive(
                    self.directory / f"{name}.seq", fmt.seal_file(self._box_key, seq, b""),
                    mode=_FILE_MODE,
                )  # fmt: skip
            clear = _named_clear(fmt.KIND_KEY, name, _KEY_TAIL.pack(public_key, created))
            data = fmt.seal_file(self._box_key, clear, bytes(signing_key))
            try:
                fsio.create_exclusive(self.directory / f"{name}.key", data, mode=_FILE_MODE)
            except FileExistsError:
                raise KeyExists(f"a key file named {name!r} exists already") from None
            key = _Key(name, public_key, created, signing_key, reserved, reserved)
            self._keys[name] = key
            if make_default and self._default_name() != name:
                self._default = name
                self._write_state()
            return self._info(key)

    def _orphan_sequence(self, name: str) -> int | None:
        # A crash between the .seq and the .key of a creation leaves a counter whose key never
        # existed; it is reused as it stands (it never goes back).
        if not (self.directory / f"{name}.seq").exists():
            return None
        return self._read_sequence(name)

    def set_default(self, name: str) -> KeyInfo:
        """Make ``name`` the default key."""
        with self._mutex:
            key = self._find(name)
            if name in self._retired:
                raise KeyUnusable(f"key {name!r} is retired and cannot be the default")
            if self._default_name() != name or self._default is None:
                self._default = name
                self._write_state()
            return self._info(key)

    def retire(self, name: str) -> KeyInfo:
        """Retire ``name`` for good; the default key cannot be retired."""
        with self._mutex:
            key = self._find(name)
            if self._default_name() == name:
                raise KeyUnusable(f"key {name!r} is the default: make another key default first")
            if name not in self._retired:
                if self._default is None:
                    # Pin today's implicit default so retiring does not move it.
                    self._default = self._default_name()
                self._retired.add(name)
                self._write_state()
            return self._info(key)

    # ----------------------------------------------------------------- sequences
    def take_sequences(self, name: str, count: int = 1) -> int:
        """Hand out ``count`` consecutive vote sequences of key ``name``; return the first.

        The reservation is durable before the call returns, so none is ever handed out twice.
        """
        if not 1 <= count <= self._limits.sequences_per_call_max:
            raise ValueError(f"count {count} outside [1, {self._limits.sequences_per_call_max}]")
        with self._mutex:
            key = self._find(name)
            first = key.next_sequence
            end = first + count
            if end > key.reserved_until:
                reserved = min(end + self._limits.sequence_block_votes, SEQUENCE_MAX + 1)
                if end - 1 > SEQUENCE_MAX:
                    raise KeyUnusable(
                        f"key {name!r} has used up its vote sequences: sequence {end - 1} is "
                        f"above vote.sequence's bound {SEQUENCE_MAX} (2^53 - 1); use a new key"
                    )
                self._write_sequence(key.name, reserved)
                key.reserved_until = reserved
            if end > key.reserved_until:
                raise RuntimeError(f"key {name!r}: sequence {end} handed out beyond the reserve")
            key.next_sequence = end
            return first

    def describe(self) -> dict[str, object]:
        """Counts for logs (no key material)."""
        with self._mutex:
            return {"keys": len(self._keys), "retired": len(self._retired),
                    "default": self._default_name()}  # fmt: skip


def _named_clear(kind: int, name: str, tail: bytes) -> bytes:
    raw = name.encode("ascii")
    return fmt.header(kind) + _NAME_LEN.pack(len(raw)) + raw + tail


def _read_name(path: Path, data: bytes) -> str:
    kind = fmt.KIND_KEY if path.suffix == ".key" else fmt.KIND_SEQUENCE
    fmt.check_header(path, data, kind)
    at = fmt.HEADER_BYTES
    if len(data) < at + _NAME_LEN.size:
        raise KeystoreCorrupt(path, len(data), "file ends inside the name length")
    (n,) = _NAME_LEN.unpack_from(data, at)
    if not 1 <= n <= fmt.NAME_BYTES_MAX or len(data) < at + 2 + n:
        raise KeystoreCorrupt(path, at, f"name length {n} outside [1, {fmt.NAME_BYTES_MAX}]")
    raw = data[at + 2 : at + 2 + n]
    name = raw.decode("ascii", errors="replace")
    if not fmt.NAME_PATTERN.fullmatch(name):
        raise KeystoreCorrupt(path, at + 2, f"{raw!r} is not a key name")
    return name


def _make_dir(directory: Path) -> None:
    if directory.is_dir():
        return
    directory.mkdir(parents=True, mode=_DIR_MODE, exist_ok=True)
    fsio.fsync_dir(directory.parent)


def _lock(directory: Path) -> int:
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise KeystoreLocked(f"{directory}: another wallet process uses this keystore") from None
    return fd


def _unlock(directory: Path, passphrase: bytes, kdf: fmt.KdfParams) -> bytes:
    """The box key of the keystore in ``directory``, creating KEYSTORE when there is none."""
    path = directory / _KEYSTORE
    if not path.exists():
        if any(p.name[0] != "." for p in directory.glob("*.key")):
            raise KeystoreCorrupt(path, 0, "KEYSTORE is missing but key files exist")
        kdf.check()
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        box_key = fmt.derive_box_key(passphrase, salt, kdf)
        fresh = fmt.header(fmt.KIND_KEYSTORE) + _KEYSTORE_CLEAR.pack(
            fmt.KDF_ARGON2ID, kdf.opslimit, kdf.memlimit_bytes, salt
        )
        try:
            fsio.create_exclusive(
                path, fmt.seal_file(box_key, fresh, fmt.CHECK_TEXT), mode=_FILE_MODE
            )
        except FileExistsError:
            pass  # created meanwhile: read it as any other
        else:
            return box_key
    data = fmt.read_bounded(path, fmt.KIND_KEYSTORE)
    fmt.check_header(path, data, fmt.KIND_KEYSTORE)
    clear = fmt.HEADER_BYTES + _KEYSTORE_CLEAR.size
    if len(data) != clear + fmt.NONCE_BYTES + fmt.TAG_BYTES + clear + len(fmt.CHECK_TEXT):
        raise KeystoreCorrupt(path, min(len(data), clear), "KEYSTORE has the wrong length")
    kdf_id, ops, mem, salt = _KEYSTORE_CLEAR.unpack_from(data, fmt.HEADER_BYTES)
    if kdf_id != fmt.KDF_ARGON2ID:
        raise KeystoreCorrupt(path, 12, f"unknown key derivation {kdf_id} (1 is Argon2id)")
    fmt.KdfParams(ops, mem).check(path)
    box_key = fmt.derive_box_key(passphrase, salt, fmt.KdfParams(ops, mem))
    try:
        check = fmt.open_file(path, data, clear, box_key)
    except KeystoreCorrupt as exc:
        if exc.offset != clear + fmt.NONCE_BYTES:
            raise
        raise WrongPassphrase(
            f"{path}: the passphrase does not open the keystore's check value (wrong passphrase, "
            "or KEYSTORE was altered)"
        ) from None
    if check != fmt.CHECK_TEXT:
        raise KeystoreCorrupt(path, clear, "sealed check value differs")
    return box_key
