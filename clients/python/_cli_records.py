"""``stemedb keygen | assert | vote | epoch``: make a key, append signed records.

Keys: ``--key FILE`` (repeatable: each key co-signs). Without ``--key``, the default key file is
used when it exists: ``$STEMEDB_KEY`` if set, else ``~/.stemedb/key.json`` (where ``keygen``
writes by default). ``--unsigned`` appends an assertion or epoch without any signature (a writer
started with ``--require-signatures`` refuses it). Without ``--unsigned`` and without any key, an
assertion or epoch is still appended unsigned, but a warning on stderr says so and how to sign
(stdout keeps only the receipt). A vote is always signed.

Through a wallet (``--wallet-key NAME``, or a ``unix:`` ``--writer``: see ``through_wallet``)
records are sent unsigned unless ``--key`` is given, and the wallet signs them with its key NAME
(or its default key); a vote is then sent with only its assertion hash and weight, and the
wallet fills in its agent (the key's public key) and its sequence (the key's next one).

Source hash of ``assert``: ``--source-hash HEX`` as given; else BLAKE3-256 of the ``--source``
text (UTF-8); else BLAKE3-256 of the 3 bytes ``cli``, so a fact typed at the command line without
a source says so, the same way every time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

from stemedb.client._cli import PROG, CliError, client_from_args, out, through_wallet
from stemedb.client._keys import AgentKey
from stemedb.client._records import Ref, make_assertion, make_epoch, source_hash_of
from stemedb.errors import InvalidRecord
from stemedb.phash import visual_hash
from stemedb.v1 import records_pb2 as pb

__all__ = ["default_key_path", "register"]

CLI_SOURCE = "cli"
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def default_key_path() -> Path:
    env = os.environ.get("STEMEDB_KEY")
    return Path(env).expanduser() if env else Path("~/.stemedb/key.json").expanduser()


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("keygen", "generate an ed25519 agent key and save it (mode 0600)")
    p.add_argument(
        "--out", metavar="FILE", help="key file (default $STEMEDB_KEY or ~/.stemedb/key.json)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing key file")
    p.set_defaults(func=keygen)

    p = add("assert", "append an assertion: SUBJECT PREDICATE OBJECT")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("predicate", metavar="PREDICATE")
    p.add_argument("object", metavar="OBJECT", help="text unless a type flag says otherwise")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--number", dest="object_type", action="store_const", const="number",
                      help="OBJECT is a number")  # fmt: skip
    kind.add_argument("--flag", dest="object_type", action="store_const", const="flag",
                      help="OBJECT is a boolean: true/false, yes/no, 1/0")  # fmt: skip
    kind.add_argument("--blob-hex", dest="object_type", action="store_const", const="blob",
                      help="OBJECT is bytes, as hex")  # fmt: skip
    kind.add_argument("--ref", dest="object_type", action="store_const", const="ref",
                      help="OBJECT is the 64-hex-digit hash of another record")  # fmt: skip
    p.add_argument("--confidence", type=float, default=1.0, help="in [0, 1] (default 1.0)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--source", metavar="TEXT", help="source_hash = BLAKE3(TEXT)")
    source.add_argument("--source-hash", metavar="HEX", help="the 32-byte source hash, as hex")
    p.add_argument("--image", metavar="FILE", type=Path, help="PNG/JPEG: sets visual_hash (pHash)")
    p.add_argument("--epoch", metavar="HEX", help="hash of the epoch the assertion belongs to")
    _key_options(p)
    p.set_defaults(func=assert_, object_type="text")

    p = add("vote", "append a signed vote on an assertion (WEIGHT in [-1, 1])")
    p.add_argument("assertion_hash", metavar="ASSERTION_HASH")
    p.add_argument("weight", metavar="WEIGHT", type=float)
    p.add_argument("--key", metavar="FILE", action="append",
                   help="signing key (default key file; through a wallet: none, the wallet "
                   "signs)")  # fmt: skip
    p.set_defaults(func=vote)

    p = add("epoch", "append an epoch (a named group of assertions)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--description", default="")
    p.add_argument("--supersedes", metavar="HEX", help="hash of the epoch this one supersedes")
    p.add_argument("--type", dest="supersession_type",
                   choices=["extension", "refinement", "revolution"],
                   help="how it relates to --supersedes (required with it)")  # fmt: skip
    _key_options(p)
    p.set_defaults(func=epoch)


def _key_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", metavar="FILE", action="append",
                   help="sign with this key file; repeat to co-sign (default: the default key "
                   "file, when it exists)")  # fmt: skip
    p.add_argument("--unsigned", action="store_true",
                   help="do not sign here, even with the default key (through a wallet, the "
                   "wallet signs)")  # fmt: skip


def signing_keys(args: argparse.Namespace, *, required: bool) -> list[AgentKey]:
    """The keys that sign here: ``--key`` files, else the default key file; none through a
    wallet unless ``--key`` is given (the wallet signs what arrives unsigned)."""
    if getattr(args, "unsigned", False):
        if args.key:
            raise CliError("--unsigned and --key exclude each other")
        return []  # through a wallet, the wallet still signs what arrives unsigned
    if args.key:
        return [AgentKey.load(path) for path in args.key]
    if through_wallet(args):
        return []
    default = default_key_path()
    if default.exists():
        return [AgentKey.load(default)]
    if required:
        raise CliError(f"a key is needed: pass --key FILE or run `stemedb keygen` ({default})")
    return []


def warn_if_unsigned(args: argparse.Namespace, keys: list[AgentKey]) -> None:
    """After an append without any key (and without ``--unsigned``), say on stderr that the
    record is UNSIGNED and how to sign. Said after the append so a failure stays one line."""
    if keys or getattr(args, "unsigned", False) or through_wallet(args):
        return
    print(
        f"{PROG}: warning: wrote an UNSIGNED record: no --key given and no key file at "
        f"{default_key_path()}. To sign, run `{PROG} keygen` once (or pass --key FILE); "
        f"--unsigned appends unsigned without this warning.",
        file=sys.stderr,
    )


def _hex(value: str, field: str, size: int | None = 32) -> bytes:
    try:
        data = bytes.fromhex(value)
    except ValueError as exc:
        raise InvalidRecord(field, f"is not valid hex: {value!r}") from exc
    if size is not None and len(data) != size:
        raise InvalidRecord(field, f"must be {size} bytes ({2 * size} hex digits), got {len(data)}")
    return data


def _object(args: argparse.Namespace) -> pb.Value | str | float | bool | bytes | Ref:
    text: str = args.object
    kind: str = args.object_type
    if kind == "number":
        try:
            number = float(text)
        except ValueError as exc:
            raise InvalidRecord("assertion.object.number", f"is not a number: {text!r}") from exc
        if not math.isfinite(number):
            raise InvalidRecord("assertion.object.number", f"must be finite, got {text!r}")
        return number
    if kind == "flag":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise InvalidRecord("assertion.object.flag", f"is not true/false: {text!r}")
    if kind == "blob":
        return _hex(text, "assertion.object.blob", None)
    if kind == "ref":
        return Ref(_hex(text, "assertion.object.ref"))
    return text


def _print_receipt(args: argparse.Namespace, kind: str, digest: bytes, lsn: int) -> None:
    if args.json:
        out(json.dumps({"kind": kind, "hash": digest.hex(), "lsn": lsn}))
    else:
        out(f"{digest.hex()} lsn={lsn}")


def keygen(args: argparse.Namespace) -> int:
    path = Path(args.out).expanduser() if args.out else default_key_path()
    key = AgentKey.generate()
    saved = key.save(path, overwrite=args.force)
    if args.json:
        out(json.dumps({"path": str(saved), "public_key": key.public_key_hex}))
    else:
        out(f"wrote {saved} (mode 0600)\npublic key {key.public_key_hex}")
    return 0


def _image_hash(path: Path) -> int:
    if path.is_dir():
        raise CliError(f"--image {path}: is a directory, not a PNG or JPEG file")
    try:
        return visual_hash(path.read_bytes())
    except InvalidRecord as exc:
        raise CliError(f"--image {path}: not a readable PNG or JPEG image") from exc


def assert_(args: argparse.Namespace) -> int:
    if args.source_hash:
        source_hash = _hex(args.source_hash, "assertion.source_hash")
    else:
        source_hash = source_hash_of(args.source if args.source is not None else CLI_SOURCE)
    vh = _image_hash(args.image) if args.image else None
    a = make_assertion(
        args.subject, args.predicate, _object(args),
        source_hash=source_hash, confidence=args.confidence, visual_hash=vh,
        epoch=_hex(args.epoch, "assertion.epoch") if args.epoch else b"",
    )  # fmt: skip
    return _sign_and_append(args, pb.Record(assertion=a))


def _sign_and_append(args: argparse.Namespace, record: pb.Record) -> int:
    """Sign an assertion or epoch with the keys of ``args`` (co-signing), append it, print the
    receipt; warn when it went unsigned."""
    keys = signing_keys(args, required=False)
    for key in keys:
        if record.HasField("assertion"):
            key.sign_assertion(record.assertion)
        else:
            key.sign_epoch(record.epoch)
    with client_from_args(args) as client:
        receipt = client.append_record(record)
    _print_receipt(args, str(record.WhichOneof("kind")), receipt.hash, receipt.lsn)
    warn_if_unsigned(args, keys)
    return 0


def vote(args: argparse.Namespace) -> int:
    assertion_hash = _hex(args.assertion_hash, "vote.assertion_hash")
    keys = signing_keys(args, required=True)
    if len(keys) > 1:
        raise CliError("a vote is signed by exactly one key: pass --key once")
    if keys:
        v = keys[0].vote(assertion_hash, args.weight)
    else:
        # Through a wallet: no agent, no sequence, no signature; the wallet fills all three
        # with its key's (DESIGN 11) and refuses a vote that names them.
        v = pb.Vote(assertion_hash=assertion_hash, weight=args.weight)
    with client_from_args(args) as client:
        receipt = client.append_vote(v)
    _print_receipt(args, "vote", receipt.hash, receipt.lsn)
    return 0


def epoch(args: argparse.Namespace) -> int:
    if bool(args.supersedes) != bool(args.supersession_type):
        raise CliError("--supersedes and --type go together")
    e = make_epoch(
        args.name, args.description,
        supersedes=_hex(args.supersedes, "epoch.supersedes") if args.supersedes else b"",
        supersession_type=args.supersession_type or pb.SUPERSESSION_TYPE_UNSPECIFIED,
    )  # fmt: skip
    return _sign_and_append(args, pb.Record(epoch=e))
