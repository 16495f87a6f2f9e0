"""The ``stemedb`` CLI: the parser, global options, dispatch and the one table of exit codes.

Every failure ends as one line on stderr (``stemedb: error: ...``) and an exit code:

    0  success
    1  not found (``get`` of a key that does not exist)
    2  usage error or invalid input (bad flag, bad record, bad key file, INVALID_ARGUMENT)
    3  server or network error (unreachable, deadline, any other status, a receipt mismatch)

``stemedb wal ...`` keeps the codes of stemedb.wal (0 sound, 1 corruption, 2 failure).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn, cast

import grpc

from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig
from stemedb.client._client import DEFAULT_TIMEOUT_SECONDS, Client
from stemedb.client._errors import ClientError, KeyFileError, RpcFailed
from stemedb.errors import InvalidRecord
from stemedb.wal import add_wal_commands

__all__ = [
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "CliError",
    "build_parser",
    "client_from_args",
    "escape_text",
    "main",
    "package_version",
    "target",
    "through_wallet",
    "unsafe_char",
    "whole_number",
]

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_SERVER = 3
EXIT_INTERRUPTED = 130

PROG = "stemedb"
Command = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A usage or input problem found by the CLI itself (exit 2 unless ``code`` says else)."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Bidirectional formatting characters (embeddings, overrides, isolates, marks): printed raw they
# reorder what a terminal shows ("Trojan Source"), so a key or value could look like another.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe_char(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI


def escape_text(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) and bidi control escaped: ``\\xNN``
    below U+0080, ``\\uNNNN`` above. Nothing a terminal would act on or reorder is printed raw."""
    if not any(unsafe_char(ch) for ch in text):
        return text
    return "".join(
        (f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}") if unsafe_char(ch) else ch
        for ch in text
    )


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def fail(message: str) -> None:
    print(f"{PROG}: error: {escape_text(one_line(message))}", file=sys.stderr)


def whole_number(text: str) -> int:
    """An argparse type: a whole number >= 0 (an LSN, a page size, a count)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


# A gRPC target with a scheme (unix:/path, dns:///host:port, ...) is passed through as it is.
_SCHEMES = ("unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:", "vsock:")


def target(text: str) -> str:
    """An argparse type: a server address, HOST:PORT (``[v6]:PORT``) or a gRPC target URI."""
    if text.startswith(_SCHEMES):
        return text
    # Not stemedb.runtime.parse_host_port: importing the servers' runtime (gRPC server shell,
    # Prometheus) would add a fifth of a second to every CLI start. Same rules, same messages.
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: port {port!r} is not a number")
    if not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: port {int(port)} is out of range")
    return text


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _env_seconds(name: str, default: float) -> float:
    text = _env(name)
    try:
        return float(text) if text else default
    except ValueError:
        # A bad environment value must not crash the parser; --timeout reports it when used.
        return -1.0


# The TLS settings of a channel; each is given for both channels (--tls-ca) or for one
# (--writer-tls-ca, --store-tls-ca), the per-channel value winning.
_TLS_FILES = (
    ("ca", "PEM", "PEM CA bundle to trust; enables TLS"),
    ("cert", "PEM", "client certificate (mutual TLS)"),
    ("key", "PEM", "private key of the client certificate"),
    ("server-name", "NAME", "the name to check the server certificate against"),
)


def _global_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Global options, accepted before or after the command name.

    On the command's own parser they default to SUPPRESS, so a value given before the command
    is not overwritten by the sub-parser's default (an argparse pitfall).
    """

    def d(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    g = p.add_argument_group("connection and output (also accepted before the command)")
    g.add_argument(
        "--writer", metavar="HOST:PORT", type=target,
        default=d(_env("STEMEDB_WRITER", DEFAULT_WRITER)),
        help=f"writer address (env STEMEDB_WRITER, default {DEFAULT_WRITER})",
    )  # fmt: skip
    g.add_argument(
        "--store", metavar="HOST:PORT", type=target,
        default=d(_env("STEMEDB_STORE", DEFAULT_STORE)),
        help=f"store (ingestor) address (env STEMEDB_STORE, default {DEFAULT_STORE})",
    )  # fmt: skip
    g.add_argument(
        "--wallet-key", metavar="NAME", default=d(_env("STEMEDB_WALLET_KEY")),
        help="write through a stemedb-wallet at --writer, signed with its key NAME (sent as "
        "the stemedb-key metadata; env STEMEDB_WALLET_KEY). A unix: --writer is taken as a "
        "wallet too (signed with its default key unless NAME is given)",
    )  # fmt: skip
    g.add_argument(
        "--timeout", metavar="SECONDS", type=float,
        default=d(_env_seconds("STEMEDB_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)),
        help="deadline of each call (env STEMEDB_TIMEOUT, default 10)",
    )  # fmt: skip
    for scope, what in (("", "both channels"), ("writer-", "the writer"), ("store-", "the store")):
        env = f"STEMEDB_{scope.upper().replace('-', '_')}TLS"
        g.add_argument(
            f"--{scope}tls", action="store_true", default=d(False),
            help=f"TLS to {what}, trusting the system's root certificates (implied by the "
            f"--{scope}tls-* options below)",
        )  # fmt: skip
        for name, metavar, text in _TLS_FILES:
            g.add_argument(
                f"--{scope}tls-{name}", metavar=metavar,
                default=d(_env(f"{env}_{name.upper().replace('-', '_')}")),
                help=f"{text} for {what} (env {env}_{name.upper().replace('-', '_')})",
            )  # fmt: skip
    g.add_argument(
        "--json", action="store_true", default=d(False), help="machine-readable JSON output"
    )


def tls_from_args(args: argparse.Namespace, channel: str) -> TlsConfig | None:
    """The TLS settings of ``channel`` ("writer" or "store"): its own options, else the ones
    for both; None (plaintext) when neither asks for TLS."""

    def value(name: str) -> str | None:
        own: str | None = getattr(args, f"{channel}_tls_{name}")
        return own or getattr(args, f"tls_{name}")

    ca, cert, key = value("ca"), value("cert"), value("key")
    for name, path in (("ca", ca), ("cert", cert), ("key", key)):
        if path and not Path(path).expanduser().is_file():
            flag = (
                f"--{channel}-tls-{name}"
                if getattr(args, f"{channel}_tls_{name}")
                else (f"--tls-{name}")
            )
            raise CliError(f"{flag} {path}: no such file")
    if bool(cert) != bool(key):
        raise CliError(
            f"the {channel}'s client certificate and key go together "
            f"(--tls-cert and --tls-key, or --{channel}-tls-cert and --{channel}-tls-key)"
        )
    if not (args.tls or getattr(args, f"{channel}_tls") or ca or cert):
        return None
    return TlsConfig(
        root_ca=Path(ca) if ca else None,
        client_cert=Path(cert) if cert else None,
        client_key=Path(key) if key else None,
        server_name=value("server_name"),
    )


def through_wallet(args: argparse.Namespace) -> bool:
    """Whether writes go through a stemedb-wallet (DESIGN 11): ``--wallet-key`` is given, or
    ``--writer`` is a Unix socket (where the wallet listens by default; the writer listens on
    TCP). The wallet then signs what the CLI sends unsigned, and fills a vote's agent and
    sequence."""
    return bool(args.wallet_key) or str(args.writer).startswith("unix:")


def client_from_args(args: argparse.Namespace) -> Client:
    if args.timeout <= 0:
        shown = os.environ.get("STEMEDB_TIMEOUT") if args.timeout == -1.0 else args.timeout
        raise CliError(
            f"--timeout (or STEMEDB_TIMEOUT) must be a positive number of seconds, got {shown!r}"
        )
    return Client(
        args.writer, args.store, timeout_seconds=args.timeout,
        writer_tls=tls_from_args(args, "writer"), store_tls=tls_from_args(args, "store"),
        through_wallet=through_wallet(args), wallet_key=args.wallet_key or None,
    )  # fmt: skip


def package_version() -> str:
    """The installed ``stemedb`` package's version (pyproject.toml), from its metadata."""
    try:
        return importlib.metadata.version("stemedb")
    except importlib.metadata.PackageNotFoundError:  # run from a tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from stemedb.client import (
        _cli_completion,
        _cli_import,
        _cli_query,
        _cli_reads,
        _cli_records,
        _cli_verify,
        _cli_wallet,
    )

    parser = _Parser(
        prog=PROG,
        description="StemeDB command-line client: append records, read them back, ask what is "
        "believed (resolve, beliefs, tally, history), follow the log, bulk-import JSON Lines, "
        "inspect a WAL. Docs: docs/cli.md",
        epilog="exit codes: 0 ok, 1 not found, 2 usage or invalid input, 3 server or network error",
    )
    parser.add_argument(
        "--version", action="version", version=f"{PROG} {package_version()}",
        help="print the version of the stemedb package and exit",
    )  # fmt: skip
    _global_options(parser, top=True)
    common = _Parser(add_help=False)
    _global_options(common, top=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help, description=help, parents=[common]
        )
        return sub

    _cli_records.register(add)
    _cli_reads.register(add)
    _cli_query.register(add)
    _cli_import.register(add)
    _cli_wallet.register(add)
    _cli_verify.register(add)
    add_wal_commands(cast("argparse._SubParsersAction[argparse.ArgumentParser]", commands))
    _cli_completion.register(add)
    return parser


def _server_code(exc: RpcFailed) -> int:
    # The server refusing the input is the caller's mistake, like a local validation error.
    return EXIT_USAGE if exc.code == grpc.StatusCode.INVALID_ARGUMENT else EXIT_SERVER


def _describe(exc: RpcFailed) -> str:
    what = "writer" if exc.method.startswith("Append") else "store"
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        if "connection refused" in exc.details.lower():
            # Nothing listens there: the usual cause is a service that is not started.
            flag = "--writer" if what == "writer" else "--store"
            return (
                f"cannot reach the {what} at {exc.target}: connection refused (is it running? "
                f"`make run` starts the writer and the ingestor; {flag} sets the address)"
            )
        return f"cannot reach the {what} at {exc.target} ({exc.details})"
    if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{exc.method} at {exc.target}: no answer within the deadline (--timeout)"
    said = f"{exc.method} rejected by the {what} at {exc.target}: {exc.code.name}: {exc.details}"
    if exc.retry_after_seconds is not None:
        said += f" (nothing was written; retry in {exc.retry_after_seconds:.3f} s)"
    return said


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; every expected failure becomes one line and an exit code."""
    func: Command = args.func
    try:
        return func(args)
    except CliError as exc:
        fail(str(exc))
        return exc.code
    except InvalidRecord as exc:
        fail(f"invalid input: {exc}")
        return EXIT_USAGE
    except KeyFileError as exc:
        fail(str(exc))
        return EXIT_USAGE
    except RpcFailed as exc:
        fail(_describe(exc))
        return _server_code(exc)
    except ClientError as exc:
        fail(str(exc))
        return EXIT_SERVER
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `stemedb scan H: | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


def out(text: str, stream: IO[str] | None = None) -> None:
    print(text, file=stream or sys.stdout)
