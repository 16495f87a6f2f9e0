"""C2SP signed notes (https://c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and
the key formats of Go's ``golang.org/x/mod/sumdb/note``, with ed25519 (signature type 0x01).

A signed note is a text ending in a newline, a blank line, then signature lines
``— <key name> <base64(key id (4 bytes, big-endian) || signature)>``; the signature covers the
text including its final newline. Key id = SHA-256(name || 0x0A || 0x01 || public key)[:4].
Keys are text::

    signer key    PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte ed25519 seed)>
    verifier key  <name>+<8 hex key id>+<base64(0x01 || 32-byte ed25519 public key)>

A checkpoint's text is the origin line, the tree size in decimal (no leading zeros) and the
base64 root hash, each ending in a newline, optionally followed by non-empty extension lines.

Opening follows the spec and Go's ``note.Open``: signatures by unknown keys are ignored, a
signature by the known key that fails rejects the whole note, and a note with no verified
signature is rejected. Errors::

    StemeError                  (stemedb.errors)
    └── NoteError               base of this module's errors
        ├── MalformedKey        a signer or verifier key that does not parse or does not match
        ├── MalformedNote       a note that breaks the signed-note syntax or a bound
        ├── MalformedCheckpoint a note text that is not a checkpoint
        └── NoteNotVerified     no valid signature by the trusted key (or a bad one by it)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing

from stemedb.errors import StemeError
from stemedb.fsio import create_exclusive

__all__ = [
    "ALG_ED25519",
    "NOTE_BYTES_MAX",
    "NOTE_SIGNATURES_MAX",
    "Checkpoint",
    "MalformedCheckpoint",
    "MalformedKey",
    "MalformedNote",
    "Note",
    "NoteError",
    "NoteNotVerified",
    "NoteSignature",
    "Signer",
    "Verifier",
    "generate_signer",
    "key_id",
    "load_or_create_signer",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "sign_note",
]

ALG_ED25519 = 0x01
# Bounds on what a verifier reads: the spec asks to accept at least 16 signatures; Go stops at
# 100. A checkpoint is well under 1 KiB; 1 MiB leaves room for cosignatures and extensions.
NOTE_SIGNATURES_MAX = 100
NOTE_BYTES_MAX = 1 << 20

_SIG_PREFIX = "\u2014 "  # em dash, space
_U32 = struct.Struct(">I")
_HEX8 = re.compile(r"[0-9a-f]{8}\Z")
_SIZE = re.compile(r"(0|[1-9][0-9]*)\Z")
# Control characters other than newline, and lone surrogates (a str that is not UTF-8).
_FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")


class NoteError(StemeError):
    """Base class of stemedb.note's errors."""


class MalformedKey(NoteError):
    """A signer or verifier key that does not parse, or whose key id does not match."""


class MalformedNote(NoteError):
    """A note that breaks the signed-note syntax, or exceeds a bound."""


class MalformedCheckpoint(NoteError):
    """A note text that is not a well-formed checkpoint."""


class NoteNotVerified(NoteError):
    """The note carries no valid signature by the trusted key, or a bad one by it."""


def _valid_name(name: str) -> bool:
    # Non-empty, no Unicode space, no plus (and no control character, which notes forbid).
    return bool(name) and "+" not in name and not any(c.isspace() or c < " " for c in name)


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """The 32-bit key id: SHA-256(name || 0x0A || alg || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes((alg,)) + public_key).digest()
    value: int = _U32.unpack_from(digest)[0]
    return value


def _b64decode(text: str, what: str, error: type[NoteError]) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise error(f"{what} is not valid base64: {exc}") from None
    # Only the canonical encoding is accepted, so one value has one spelling.
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64")
    return raw


def _split_key(text: str, parts: int, what: str) -> list[str]:
    if not isinstance(text, str):
        raise MalformedKey(f"{what} must be text")
    # The base64 key data may itself hold '+': split only at the first parts - 1 of them.
    fields = text.split("+", parts - 1)
    if len(fields) != parts:
        raise MalformedKey(f"{what} must have {parts} '+'-separated fields, got {len(fields)}")
    return fields


def _key_parts(name: str, id_hex: str, b64: str, what: str) -> tuple[int, bytes]:
    if not _valid_name(name):
        raise MalformedKey(f"{what}: invalid key name {name!r} (empty, or has a space or '+')")
    if not _HEX8.match(id_hex):
        raise MalformedKey(f"{what}: key id must be 8 lowercase hex digits, got {id_hex!r}")
    raw = _b64decode(b64, f"{what} key data", MalformedKey)
    if len(raw) != 33:
        raise MalformedKey(f"{what}: key data must be 33 bytes (0x01 and 32), got {len(raw)}")
    if raw[0] != ALG_ED25519:
        raise MalformedKey(f"{what}: unknown signature type 0x{raw[0]:02x} (only 0x01 ed25519)")
    return int(id_hex, 16), raw[1:]


@dataclass(frozen=True, slots=True)
class Verifier:
    """A note verifier: an ed25519 public key under a name."""

    name: str
    public_key: bytes
    id: int = field(init=False)

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise MalformedKey(f"invalid key name {self.name!r} (empty, or has a space or '+')")
        if len(self.public_key) != 32:
            raise MalformedKey(f"public key must be 32 bytes, got {len(self.public_key)}")
        object.__setattr__(self, "id", key_id(self.name, self.public_key))

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse ``<name>+<8 hex key id>+<base64(0x01 || public key)>``."""
        name, id_hex, b64 = _split_key(text, 3, "verifier key")
        kid, public_key = _key_parts(name, id_hex, b64, "verifier key")
        verifier = cls(name, public_key)
        if verifier.id != kid:
            raise MalformedKey(f"verifier key: key id {id_hex} does not match the key")
        return verifier

    def encode(self) -> str:
        data = base64.b64encode(bytes((ALG_ED25519,)) + self.public_key).decode("ascii")
        return f"{self.name}+{self.id:08x}+{data}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.public_key)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """A note signer: an ed25519 seed under a name. Keep its encoding secret."""

    name: str
    seed: bytes = field(repr=False)
    verifier: Verifier = field(init=False)
    # The key expanded from the seed once: expanding it per signature cost the writer's log tree
    # about 30 us of CPU per checkpoint.
    _key: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise MalformedKey(f"ed25519 seed must be 32 bytes, got {len(self.seed)}")
        key = nacl.signing.SigningKey(self.seed)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "verifier", Verifier(self.name, bytes(key.verify_key)))

    @property
    def id(self) -> int:
        return self.verifier.id

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>``."""
        priv, key, name, id_hex, b64 = _split_key(text, 5, "signer key")
        if (priv, key) != ("PRIVATE", "KEY"):
            raise MalformedKey("signer key must start with PRIVATE+KEY+")
        kid, seed = _key_parts(name, id_hex, b64, "signer key")
        signer = cls(name, seed)
        if signer.id != kid:
            raise MalformedKey(f"signer key: key id {id_hex} does not match the key")
        return signer

    def encode(self) -> str:
        data = base64.b64encode(bytes((ALG_ED25519,)) + self.seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.id:08x}+{data}"

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


def generate_signer(name: str) -> Signer:
    """A new signer with a random seed from the OS."""
    return Signer(name, os.urandom(32))


# A signer key file is one line of about 100 bytes; anything much larger is not one.
_KEY_FILE_BYTES_MAX = 4096


def load_or_create_signer(path: Path, name: str) -> Signer:
    """The log's signer from its key file (``--log-key``), created on first use.

    A missing file is created atomically, mode 0600, holding a new signer key and a newline; it is
    never overwritten. An existing file must hold a signer key for ``name`` (the log's origin):
    anything else raises MalformedKey naming the file, so the log is never signed by another
    key than the one it started with.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        signer = generate_signer(name)
        try:
            create_exclusive(path, (signer.encode() + "\n").encode("ascii"), mode=0o600)
            return signer
        except FileExistsError:  # created meanwhile by another process: use that one
            raw = path.read_bytes()
    if len(raw) > _KEY_FILE_BYTES_MAX:
        raise MalformedKey(f"{path}: {len(raw)} bytes, not a signer key file")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedKey(f"{path}: not ASCII, not a signer key file") from None
    text = text[:-1] if text.endswith("\n") else text
    try:
        signer = Signer.parse(text)
    except MalformedKey as exc:
        raise MalformedKey(f"{path}: {exc}") from None
    if signer.name != name:
        raise MalformedKey(f"{path}: the key is for {signer.name!r}, not for {name!r}")
    return signer


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, key id and the signature bytes (without the id)."""

    name: str
    id: int
    signature: bytes

    def line(self) -> str:
        data = base64.b64encode(_U32.pack(self.id) + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {data}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A verified note: its text, the signatures that verified, and the ones not checked."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def _check_text(text: str, what: str, error: type[NoteError] = MalformedNote) -> None:
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise error(
            f"{what} contains U+{ord(bad.group()):04X} at index {bad.start()}: notes allow no "
            "control character but newline, and must be valid UTF-8"
        )


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The signed note of ``text`` (which must end in a newline) by each of ``signers``."""
    if not text.endswith("\n"):
        raise MalformedNote("note text must end with a newline")
    _check_text(text, "note text")
    if not signers:
        raise MalformedNote("a signed note needs at least one signer")
    message = text.encode("utf-8")
    lines = [NoteSignature(s.name, s.id, s.sign(message)).line() for s in signers]
    return text + "\n" + "".join(lines)


def _decode(msg: str | bytes) -> str:
    if isinstance(msg, bytes | bytearray):
        if len(msg) > NOTE_BYTES_MAX:
            raise MalformedNote(f"note is {len(msg)} bytes, more than {NOTE_BYTES_MAX}")
        try:
            return bytes(msg).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote(f"note is not valid UTF-8 at byte {exc.start}") from None
    if not isinstance(msg, str):
        raise MalformedNote(f"a note is text, got {type(msg).__name__}")
    if len(msg) > NOTE_BYTES_MAX:
        raise MalformedNote(f"note is more than {NOTE_BYTES_MAX} bytes")
    return msg


def _parse_signature_line(line: str, number: int) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise MalformedNote(f"signature line {number} does not start with an em dash and a space")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not _valid_name(name) or not b64:
        raise MalformedNote(f"signature line {number} is not '— <name> <base64>'")
    raw = _b64decode(b64, f"signature line {number}", MalformedNote)
    if len(raw) < 5:
        raise MalformedNote(f"signature line {number} holds {len(raw)} bytes, fewer than 5")
    return NoteSignature(name, _U32.unpack_from(raw)[0], raw[4:])


def open_note(msg: str | bytes, verifiers: Sequence[Verifier]) -> Note:
    """Parse a signed note and verify it with the known ``verifiers``."""
    text_all = _decode(msg)
    _check_text(text_all, "note")
    split = text_all.rfind("\n\n")
    if split < 0:
        raise MalformedNote("note has no blank line before its signatures")
    text, block = text_all[: split + 1], text_all[split + 2 :]
    if not block or not block.endswith("\n"):
        raise MalformedNote("note has no signature lines, or its last line has no newline")
    lines = block[:-1].split("\n")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise MalformedNote(f"note has {len(lines)} signatures, more than {NOTE_SIGNATURES_MAX}")
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        if (v.name, v.id) in known and known[(v.name, v.id)] != v:
            raise NoteNotVerified(f"ambiguous key {v.name}+{v.id:08x}")
        known[(v.name, v.id)] = v
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen: set[tuple[str, int]] = set()
    for number, line in enumerate(lines, start=1):
        sig = _parse_signature_line(line, number)
        verifier = known.get((sig.name, sig.id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if (sig.name, sig.id) in seen:
            continue
        seen.add((sig.name, sig.id))
        if not verifier.verify(message, sig.signature):
            raise NoteNotVerified(f"invalid signature for key {sig.name}+{sig.id:08x}")
        verified.append(sig)
    if not verified:
        names = ", ".join(f"{v.name}+{v.id:08x}" for v in verifiers) or "none"
        raise NoteNotVerified(f"note has no signature by a known key (known: {names})")
    return Note(text, tuple(verified), tuple(unverified))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A transparency log checkpoint: the log's origin, its tree size and root hash."""

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedCheckpoint("origin must be a non-empty single line")
        _check_text(self.origin, "origin", MalformedCheckpoint)
        if not 0 <= self.tree_size < 2**64:
            raise MalformedCheckpoint(f"tree size must be a u64, got {self.tree_size}")
        if len(self.root_hash) != 32:
            raise MalformedCheckpoint(f"root hash must be 32 bytes, got {len(self.root_hash)}")
        for i, ext in enumerate(self.extensions):
            if not ext or "\n" in ext:
                raise MalformedCheckpoint(f"extension line {i} must be a non-empty single line")
            _check_text(ext, f"extension line {i}", MalformedCheckpoint)

    def body(self) -> str:
        """The note text of this checkpoint."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.tree_size), root, *self.extensions)
        )

    def sign(self, signer: Signer) -> str:
        """The signed note of this checkpoint."""
        return sign_note(self.body(), [signer])


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text (not the signed note: see :func:`open_checkpoint`)."""
    if not text.endswith("\n"):
        raise MalformedCheckpoint("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint(f"checkpoint has {len(lines)} lines, needs at least 3")
    origin, size, root_b64, *extensions = lines
    if not origin:
        raise MalformedCheckpoint("checkpoint origin line is empty")
    if not _SIZE.match(size) or len(size) > 20:
        raise MalformedCheckpoint(
            f"tree size line {size[:40]!r} is not a decimal without leading zeros"
        )
    tree_size = int(size)
    if tree_size >= 2**64:
        raise MalformedCheckpoint(f"tree size {tree_size} is beyond 2**64 - 1")
    root = _b64decode(root_b64, "root hash line", MalformedCheckpoint)
    if len(root) != 32:
        raise MalformedCheckpoint(f"root hash is {len(root)} bytes, expected 32")
    if any(not ext for ext in extensions):
        raise MalformedCheckpoint("checkpoint extension lines must be non-empty")
    return Checkpoint(origin, tree_size, root, tuple(extensions))


def open_checkpoint(msg: str | bytes, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with the log's verifier key and parse it.

    The origin line must equal ``origin``, which defaults to the verifier key's name (the log's
    key name is its origin); a checkpoint of another log is refused even if signed by this key.
    """
    note = open_note(msg, [verifier])
    checkpoint = parse_checkpoint(note.text)
    expected = verifier.name if origin is None else origin
    if checkpoint.origin != expected:
        raise NoteNotVerified(f"checkpoint origin {checkpoint.origin!r} is not {expected!r}")
    return checkpoint
