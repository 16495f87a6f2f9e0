"""``stemedb wallet create | list | pubkey | default | retire``: manage a stemedb-wallet's keys.

The commands talk to the wallet's ``WalletService`` at ``--wallet`` (env ``STEMEDB_WALLET``,
default ``unix:./data/wallet.sock``, the wallet's own default). The wallet stands where the
writer would, so the writer's TLS options (``--writer-tls-*``, or ``--tls-*`` for both channels)
apply when it serves loopback TCP with TLS or mutual TLS. They never see private keys:
the wallet answers with names and public keys only.

Exit codes are the CLI's: 0 done, 1 no such key, 2 a refused name or request (INVALID_ARGUMENT,
ALREADY_EXISTS, FAILED_PRECONDITION: the caller's to fix), 3 the wallet cannot be reached or
failed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from collections.abc import Callable
from typing import Any

import grpc

from stemedb.client._channel import sync_channel
from stemedb.client._cli import (
    EXIT_NOT_FOUND,
    EXIT_SERVER,
    EXIT_USAGE,
    CliError,
    out,
    tls_from_args,
)
from stemedb.v1 import wallet_pb2 as wpb
from stemedb.v1 import wallet_pb2_grpc

__all__ = ["DEFAULT_WALLET", "register"]

DEFAULT_WALLET = "unix:./data/wallet.sock"
_CALLER_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
}


def _options(p: argparse.ArgumentParser, *, top: bool) -> None:
    # On the sub-commands' parsers the defaults are SUPPRESS, so that a value given before the
    # sub-command (``stemedb wallet --wallet X list``) is not overwritten.
    def d(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--wallet", metavar="ADDRESS",
        default=d(os.environ.get("STEMEDB_WALLET") or DEFAULT_WALLET),
        help=f"the wallet: unix:PATH or HOST:PORT (env STEMEDB_WALLET, default {DEFAULT_WALLET})",
    )  # fmt: skip
    if not top:
        p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="machine-readable JSON output")  # fmt: skip


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``stemedb wallet ...`` through the CLI's ``add(name, help)``."""
    wallet = add("wallet", "manage the keys of a stemedb-wallet (the agents' signing sidecar)")
    _options(wallet, top=True)
    commands = wallet.add_subparsers(dest="wallet_command", required=True, metavar="COMMAND")

    def sub(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = commands.add_parser(name, help=help, description=help)
        _options(p, top=False)
        p.set_defaults(func=func)
        return p

    p = sub("create", "create a key in the wallet (the first one is the default)", create)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--default", dest="make_default", action="store_true",
                   help="make the new key the default key")  # fmt: skip
    sub("list", "list the wallet's keys (retired ones too)", list_keys)
    p = sub("pubkey", "print a key's public key, hex (without NAME: the default key)", pubkey)
    p.add_argument("name", metavar="NAME", nargs="?", default="")
    p = sub("default", "make NAME the default key (key rotation)", set_default)
    p.add_argument("name", metavar="NAME")
    p = sub("retire", "retire NAME for good: listed, never signs again", retire)
    p.add_argument("name", metavar="NAME")


def _call(args: argparse.Namespace, method: str, request: Any) -> Any:
    if args.timeout <= 0:
        raise CliError("--timeout (or STEMEDB_TIMEOUT) must be a positive number of seconds")
    # The wallet stands where the writer would (its proxy is the agent's writer): the writer's
    # TLS settings (--writer-tls-*, or --tls-* for both channels) are the wallet's.
    with sync_channel(args.wallet, tls_from_args(args, "writer")) as channel:
        stub = wallet_pb2_grpc.WalletServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            return getattr(stub, method)(request, timeout=args.timeout)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            details: str = exc.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE:
                raise CliError(f"cannot reach the wallet at {args.wallet} ({details})",
                               EXIT_SERVER) from None  # fmt: skip
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise CliError(f"{method} at {args.wallet}: no answer within the deadline "
                               "(--timeout)", EXIT_SERVER) from None  # fmt: skip
            exit_code = (
                EXIT_NOT_FOUND if code == grpc.StatusCode.NOT_FOUND
                else EXIT_USAGE if code in _CALLER_CODES else EXIT_SERVER
            )  # fmt: skip
            raise CliError(
                f"{method} refused by the wallet at {args.wallet}: {code.name}: {details}",
                exit_code,
            ) from None


def key_json(key: wpb.WalletKey) -> dict[str, Any]:
    return {
        "name": key.name, "public_key": key.public_key.hex(), "default": key.is_default,
        "retired": key.retired, "created_unix_ms": key.created_unix_ms,
    }  # fmt: skip


def _key_line(key: wpb.WalletKey) -> str:
    created = datetime.datetime.fromtimestamp(key.created_unix_ms / 1000, datetime.UTC)
    marks = [m for m, on in (("default", key.is_default), ("retired", key.retired)) if on]
    when = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{key.name}\t{key.public_key.hex()}\t{when}\t{','.join(marks) or '-'}"


def _print_key(args: argparse.Namespace, key: wpb.WalletKey) -> int:
    out(json.dumps(key_json(key)) if args.json else _key_line(key))
    return 0


def create(args: argparse.Namespace) -> int:
    request = wpb.CreateKeyRequest(name=args.name, make_default=args.make_default)
    return _print_key(args, _call(args, "CreateKey", request).key)


def list_keys(args: argparse.Namespace) -> int:
    keys = _call(args, "ListKeys", wpb.ListKeysRequest()).keys
    if args.json:
        out(json.dumps([key_json(k) for k in keys]))
    else:
        for key in keys:
            out(_key_line(key))
    return 0


def pubkey(args: argparse.Namespace) -> int:
    key = _call(args, "GetPublicKey", wpb.GetPublicKeyRequest(name=args.name)).key
    out(json.dumps(key_json(key)) if args.json else key.public_key.hex())
    return 0


def set_default(args: argparse.Namespace) -> int:
    request = wpb.SetDefaultKeyRequest(name=args.name)
    return _print_key(args, _call(args, "SetDefaultKey", request).key)


def retire(args: argparse.Namespace) -> int:
    return _print_key(args, _call(args, "RetireKey", wpb.RetireKeyRequest(name=args.name)).key)
