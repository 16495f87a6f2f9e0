"""``stemedb verify HASH`` and ``stemedb witness --state FILE``: check the verifiable log.

Neither trusts the store. Both need the log's verifier key, pinned out of band (``--log-key``,
the key text or a file holding it; env STEMEDB_LOG_KEY): the copy the store serves is never used
to verify. ``verify`` checks that every append of a record (its LSNs, from ListRecordLsns) is in
the tree of a signed checkpoint, recomputing each leaf from the record the store returns and
checking that record's hash. ``witness`` follows the store's checkpoints, keeps the last one it
trusted in ``--state`` (written atomically), and checks each new one against it with a
consistency proof: a smaller tree (a shrink), another root at the same size or a proof that
fails (a fork, or a rewritten record) stops it with a loud message. Exit codes: 0 ok, 1 not
found, 2 usage, 3 server or network error, 4 verification failed (docs/verifiable-log.md).
Both read the store through the client's LogService methods (its deadline and retries).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc

from stemedb import canonical, merkle, note
from stemedb.client._cli import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_SERVER,
    CliError,
    client_from_args,
    out,
)
from stemedb.client._client import Client
from stemedb.client._errors import RpcFailed
from stemedb.fsio import atomic_replace

__all__ = ["EXIT_VERIFICATION_FAILED", "register"]

EXIT_VERIFICATION_FAILED = 4
_STATE_BYTES_MAX = 1024 * 1024
_LSNS_PER_RECORD_MAX = 10_000  # appends of one record checked by verify; more is refused
_T = TypeVar("_T")


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("verify", "check that a record is in the signed log (inclusion proofs, client side)")
    p.add_argument("hash", metavar="HASH", help="the record's content hash, 64 hex digits")
    _log_key_option(p)
    p.add_argument(
        "--checkpoint", metavar="FILE", type=Path,
        help="verify against this signed checkpoint (e.g. a witness's) instead of the store's",
    )  # fmt: skip
    p.set_defaults(func=verify)

    p = add("witness", "follow the log's signed checkpoints; fail loudly on a fork or a shrink")
    p.add_argument("--state", metavar="FILE", type=Path, required=True,
                   help="the last trusted checkpoint (created on first run)")  # fmt: skip
    _log_key_option(p)
    p.add_argument("--interval-seconds", type=float, default=10.0,
                   help="between checks (default 10)")  # fmt: skip
    p.add_argument("--once", action="store_true", help="check once and exit")
    p.set_defaults(func=witness)


def _log_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-key", metavar="KEY_OR_FILE", default=os.environ.get("STEMEDB_LOG_KEY"),
        help="the log's verifier key <name>+<id>+<base64>, or a file holding it (env "
        "STEMEDB_LOG_KEY); pin it out of band",
    )  # fmt: skip


class _Failed(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"VERIFICATION FAILED: {message}", EXIT_VERIFICATION_FAILED)


def _verifier(args: argparse.Namespace) -> note.Verifier:
    text = args.log_key
    if not text:
        raise CliError("--log-key (or STEMEDB_LOG_KEY) is required: the log's pinned verifier key")
    if "+" not in text or Path(text).is_file():
        try:
            text = Path(text).read_text("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"--log-key: {exc}") from None
    try:
        return note.Verifier.parse(text)
    except note.NoteError as exc:
        raise CliError(f"--log-key: {exc}") from None


def _call(what: str, fn: Callable[[], _T]) -> _T:
    """A LogService read through the client (its deadline and retries); a refusal is one line,
    and DATA_LOSS (the store's own tree failed a check) a verification failure."""
    try:
        return fn()
    except RpcFailed as exc:
        if exc.code == grpc.StatusCode.DATA_LOSS:
            raise _Failed(f"the store says: {exc.details}") from None
        raise CliError(f"{what} failed: {exc.code.name}: {exc.details}", EXIT_SERVER) from None


def _open(text: str, verifier: note.Verifier, where: str) -> note.Checkpoint:
    try:
        return note.open_checkpoint(text, verifier)
    except note.NoteError as exc:
        raise _Failed(f"{where}: the checkpoint does not verify with the log key: {exc}") from None


def verify(args: argparse.Namespace) -> int:
    try:
        content_hash = bytes.fromhex(args.hash)
    except ValueError:
        content_hash = b""
    if len(content_hash) != 32:
        raise CliError("HASH must be 64 hex digits")
    verifier = _verifier(args)
    with client_from_args(args) as client:
        if args.checkpoint is not None:
            signed = args.checkpoint.read_text("utf-8")
        else:
            signed = _call("GetCheckpoint", client.get_checkpoint).checkpoint
        cp = _open(signed, verifier, "GetCheckpoint")
        lsns: list[int] = []
        token = ""
        while True:
            page = _call("ListRecordLsns", functools.partial(
                client.list_record_lsns, content_hash, 1000, token))  # fmt: skip
            lsns += [n for n in page.items if n <= cp.tree_size]
            token = page.next_page_token
            if not token or len(lsns) > _LSNS_PER_RECORD_MAX:
                break
        if len(lsns) > _LSNS_PER_RECORD_MAX:
            raise CliError(f"more than {_LSNS_PER_RECORD_MAX} appends of {args.hash}")
        if not lsns:
            out(f"{args.hash}: not in the log of size {cp.tree_size}")
            return EXIT_NOT_FOUND
        for lsn in lsns:
            proof = _call("GetInclusionProof", functools.partial(
                client.get_inclusion_proof, lsn, cp.tree_size))  # fmt: skip
            record = proof.record
            if canonical.content_hash(canonical.record_bytes(record)) != content_hash:
                raise _Failed(f"LSN {lsn}: the store returned a record of another hash")
            try:
                merkle.check_record_inclusion(
                    signed, verifier, lsn, record, list(proof.hashes), proof.tree_size
                )
            except (merkle.MerkleError, note.NoteError) as exc:
                raise _Failed(f"LSN {lsn}: {exc}") from None
            out(f"{args.hash}: LSN {lsn} is in the signed log of size {cp.tree_size} "
                f"(root {cp.root_hash.hex()})")  # fmt: skip
    return EXIT_OK


def _load_state(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) > _STATE_BYTES_MAX:
        raise CliError(f"{path}: more than {_STATE_BYTES_MAX} bytes, not a witness state")
    try:
        text = json.loads(data)["checkpoint"]
        if not isinstance(text, str):
            raise TypeError("checkpoint is not a string")
        return text
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: not a witness state file: {exc}") from None


def _witness_once(args: argparse.Namespace, client: Client, verifier: note.Verifier) -> None:
    trusted_text = _load_state(args.state)
    text = _call("GetCheckpoint", client.get_checkpoint).checkpoint
    new = _open(text, verifier, "GetCheckpoint")
    if trusted_text is not None:
        old = _open(trusted_text, verifier, str(args.state))
        if new.tree_size < old.tree_size:
            raise _Failed(
                f"the log shrank: size {new.tree_size} served, {old.tree_size} trusted in "
                f"{args.state}"
            )
        if new.tree_size == old.tree_size and new.root_hash != old.root_hash:
            raise _Failed(
                f"fork: two roots for size {new.tree_size}: {new.root_hash.hex()} served, "
                f"{old.root_hash.hex()} trusted"
            )
        if old.tree_size > 0 and new.tree_size > old.tree_size:
            proof = _call("GetConsistencyProof", functools.partial(
                client.get_consistency_proof, old.tree_size, new.tree_size))  # fmt: skip
            try:
                merkle.check_consistency(trusted_text, text, verifier, list(proof.hashes))
            except (merkle.MerkleError, note.NoteError) as exc:
                raise _Failed(
                    f"the log of size {new.tree_size} does not extend the trusted one of size "
                    f"{old.tree_size} (a fork or a rewritten history): {exc}"
                ) from None
        if new.tree_size == old.tree_size:
            out(f"log unchanged at size {new.tree_size}")
            return
    atomic_replace(args.state, json.dumps({"checkpoint": text}).encode("utf-8"))
    out(f"trusted the log at size {new.tree_size} (root {new.root_hash.hex()})")


def witness(args: argparse.Namespace) -> int:
    if args.interval_seconds <= 0:
        raise CliError("--interval-seconds must be positive")
    verifier = _verifier(args)
    with client_from_args(args) as client:
        while True:
            _witness_once(args, client, verifier)
            if args.once:
                return EXIT_OK
            time.sleep(args.interval_seconds)
