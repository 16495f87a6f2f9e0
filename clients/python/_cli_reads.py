"""``stemedb get | scan | subject | votes | tail``: read records back, follow the log.

``tail`` reads the write-ahead log directory, not the store: the store answers by key and by
prefix (in key order), and has no "records after LSN n" read, so following the log in LSN order
is done where the log is. It never writes there (a read-only ``WalReader``) and never reads past
the durable watermark. Run it where the WAL volume is mounted (``--wal-dir``, env
STEMEDB_WAL_DIR, default ``./data/wal`` as the writer's default).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError

from stemedb.client._cli import (
    EXIT_NOT_FOUND,
    CliError,
    client_from_args,
    escape_text,
    fail,
    out,
    unsafe_char,
    whole_number,
)
from stemedb.client._records import Entry, GetResult
from stemedb.jsonrecord import record_to_json
from stemedb.v1 import records_pb2 as pb
from stemedb.wal import WalError, WalReader
from stemedb.walrecord import PayloadError, decode_payload

__all__ = ["display_key", "parse_key", "register"]

_HASH = re.compile(r"[0-9a-fA-F]{64}")
_RECORD_PREFIXES = ("H:", "V:", "E:")
# The key prefixes of the store (docs/ingestor.md, "Keys"), named when a key matches none.
KNOWN_KEY_PREFIXES = ("H:", "V:", "E:", "S:", "VA:", "HS:", "MV:")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
DEFAULT_WAL_DIR = "./data/wal"
TAIL_READ_RECORDS_MAX = 1000


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("get", "read a key (a bare 64-hex hash means H:, then V:, then E:)")
    p.add_argument("key", metavar="KEY_OR_HASH")
    p.add_argument("--min-lsn", type=whole_number, default=0, help="wait until this LSN is applied")
    p.set_defaults(func=get)

    listings: list[tuple[str, str, str, Callable[[argparse.Namespace], int]]] = [
        ("scan", "list the keys under a prefix (S:Q42 also matches subject Q420: see subject)",
         "prefix", scan),
        ("subject", "list the assertions about exactly SUBJECT", "subject", subject),
        ("votes", "list the votes on an assertion", "assertion_hash", votes),
    ]  # fmt: skip
    for name, help_text, argument, func in listings:
        p = add(name, help_text)
        p.add_argument(argument, metavar=argument.upper())
        _listing_options(p)
        p.set_defaults(func=func)

    p = add("tail", "follow new records in LSN order, from the WAL directory")
    p.add_argument(
        "--wal-dir",
        type=Path,
        default=Path(os.environ.get("STEMEDB_WAL_DIR") or DEFAULT_WAL_DIR),
        help="the writer's WAL directory (env STEMEDB_WAL_DIR, default ./data/wal)",
    )
    p.add_argument(
        "--from-lsn",
        type=whole_number,
        default=None,
        help="start at this LSN (default: only records appended from now on)",
    )
    p.add_argument("--limit", type=int, default=None, help="stop after N records")
    p.add_argument("--no-follow", action="store_true", help="print what is there and stop")
    p.add_argument("--poll-seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    p.set_defaults(func=tail)


def _listing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=whole_number, default=None, help="print at most N entries")
    p.add_argument(
        "--page-size", type=whole_number, default=0, help="entries per call (server default 100)"
    )
    p.add_argument("--min-lsn", type=whole_number, default=0, help="wait until this LSN is applied")


_ESCAPE = re.compile(r"\\(?:\\|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))")


def display_key(key: bytes) -> str:
    """A key for people: UTF-8 with a backslash shown as ``\\\\``, control and bidi characters
    escaped (the subject index's NUL separator shows as ``\\x00``), and bytes that are not UTF-8
    as ``\\xNN``. :func:`parse_key` reads it back to the same bytes."""
    text = key.decode("utf-8", errors="surrogateescape")
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(escape_text(ch))
    return "".join(out)


def parse_key(text: str) -> bytes:
    """A key typed by a person, as :func:`display_key` prints it: ``\\xNN`` is the byte NN,
    ``\\uNNNN`` the character, ``\\\\`` a backslash (a shell argument cannot hold a NUL, so the
    subject index's separator is typed ``\\x00``); a key printed by ``scan`` can be pasted into
    ``get``. Any other backslash stands for itself."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(text):
        out += text[pos : m.start()].encode("utf-8", errors="surrogateescape")
        if m.group(1) is not None:
            out.append(int(m.group(1), 16))
        elif m.group(2) is not None:
            out += chr(int(m.group(2), 16)).encode("utf-8", errors="surrogatepass")
        else:
            out += b"\\"
        pos = m.end()
    out += text[pos:].encode("utf-8", errors="surrogateescape")
    return bytes(out)


def _decode(value: bytes) -> dict[str, Any] | None:
    try:
        return record_to_json(pb.Record.FromString(value))
    except DecodeError:
        return None


def _dump(obj: Any, indent: int | None = None) -> str:
    """JSON for people and scripts: non-ASCII text as is, but control and bidi characters as
    ``\\uNNNN`` escapes (JSON's own, so the value parses back unchanged)."""
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    # json.dumps escapes C0 controls inside strings itself, so a raw newline is indentation.
    if not any(unsafe_char(ch) and ch != "\n" for ch in text):
        return text
    return "".join(f"\\u{ord(ch):04x}" if unsafe_char(ch) and ch != "\n" else ch for ch in text)


def _limited(items: Iterator[Any], limit: int | None) -> Iterator[Any]:
    if limit is not None and limit < 0:
        raise CliError(f"--limit must not be negative, got {limit}")
    return items if limit is None else islice(items, limit)


def _not_a_key(text: str) -> str:
    """Why ``text`` is neither a record hash nor a key of the store."""
    shown = escape_text(text)
    if _HEX_DIGITS.fullmatch(text):
        return f"{shown!r} has {len(text)} hex digits; a record hash has 64"
    return (
        f"{shown!r} is neither a 64-hex hash nor a key with a known prefix "
        f"({', '.join(KNOWN_KEY_PREFIXES)})"
    )


def get(args: argparse.Namespace) -> int:
    text: str = args.key
    is_hash = _HASH.fullmatch(text) is not None
    known = is_hash or text.startswith(KNOWN_KEY_PREFIXES)
    if not known and ":" not in text:
        # Every key of the store is PREFIX:...; this one cannot exist, so ask no server.
        raise CliError(_not_a_key(text))
    keys = [(p + text.lower()).encode() for p in _RECORD_PREFIXES] if is_hash else [parse_key(text)]
    with client_from_args(args) as client:
        result: GetResult | None = None
        for key in keys:
            result = client.get(key, min_lsn=args.min_lsn)
            if result.found:
                break
    if result is None or not result.found:
        if args.json:
            out(_dump({"key": display_key(keys[0]), "found": False}))
        if len(keys) > 1:
            what = f"no record with hash {text.lower()} (H:, V:, E:)"
        elif known:
            what = display_key(keys[0])
        else:
            what = _not_a_key(text)
        fail(f"not found: {what}")
        return EXIT_NOT_FOUND
    record = record_to_json(result.record) if result.record is not None else None
    if args.json:
        body: dict[str, Any] = {"key": display_key(result.key),
                                "found": True, "applied_lsn": result.applied_lsn}  # fmt: skip
        if record is not None:
            body["record"] = record
        else:
            body["value_hex"] = result.value.hex()
        out(_dump(body))
    elif record is not None:
        out(_dump(record, indent=2))
    else:
        out(result.value.hex())
    return 0


def _entry_json(e: Entry) -> dict[str, Any]:
    body: dict[str, Any] = {"key": display_key(e.key)}
    record = _decode(e.value) if e.key[:2].decode(errors="replace") in _RECORD_PREFIXES else None
    if record is not None:
        body["record"] = record
    else:
        body["value_hex"] = e.value.hex()
    return body


def scan(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        entries = client.iter_scan_prefix(parse_key(args.prefix), args.page_size, args.min_lsn)
        for e in _limited(entries, args.limit):
            body = _entry_json(e)
            if args.json:
                out(_dump(body))
            elif "record" in body:
                out(f"{display_key(e.key)}\t{_dump(body['record'])}")
            else:
                out(f"{display_key(e.key)}\t{body['value_hex']}")
    return 0


def _print_hashed(args: argparse.Namespace, items: Iterator[Any], kind: str) -> int:
    """Print ``subject`` or ``votes`` results: hash, then the record as JSON."""
    for item in _limited(items, args.limit):
        record = record_to_json(pb.Record(**{kind: getattr(item, kind)}))
        if args.json:
            out(_dump({"hash": item.hash.hex(), **record}))
        else:
            out(f"{item.hash.hex()}\t{_dump(record)}")
    return 0


def subject(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        items = client.iter_assertions_by_subject(args.subject, args.page_size, args.min_lsn)
        return _print_hashed(args, items, "assertion")


def votes(args: argparse.Namespace) -> int:
    if not _HASH.fullmatch(args.assertion_hash):
        shown = escape_text(args.assertion_hash)
        raise CliError(f"ASSERTION_HASH: {shown!r} is not a 64-hex hash")
    with client_from_args(args) as client:
        items = client.iter_votes(args.assertion_hash, args.page_size, args.min_lsn)
        return _print_hashed(args, items, "vote")


def _tail_line(args: argparse.Namespace, lsn: int, record_type: int, payload: bytes) -> str:
    try:
        d = decode_payload(record_type, payload)
    except PayloadError as exc:
        body: dict[str, Any] = {"lsn": lsn, "error": str(exc)}
        return _dump(body) if args.json else f"{lsn}\t?\t?\t{escape_text(str(exc))}"
    record = record_to_json(d.record)
    if args.json:
        return _dump({"lsn": lsn, "kind": d.kind, "hash": d.content_hash.hex(), **record})
    return f"{lsn}\t{d.kind}\t{d.content_hash.hex()}\t{_dump(record)}"


def tail(args: argparse.Namespace) -> int:
    wal_dir: Path = args.wal_dir
    if not wal_dir.is_dir():
        raise CliError(f"{wal_dir}: no such WAL directory (--wal-dir, env STEMEDB_WAL_DIR)")
    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be positive, got {args.limit}")
    printed = 0
    try:
        with WalReader(wal_dir, 1) as probe:
            start = args.from_lsn if args.from_lsn is not None else probe.watermark() + 1
        if start < 1:
            raise CliError(f"--from-lsn must be >= 1, got {start}")
        with WalReader(wal_dir, start) as reader:
            while args.limit is None or printed < args.limit:
                room = TAIL_READ_RECORDS_MAX
                if args.limit is not None:
                    room = min(room, args.limit - printed)
                for r in reader.read_available(room):
                    out(_tail_line(args, r.lsn, r.record_type, r.payload))
                    printed += 1
                sys.stdout.flush()
                if args.no_follow and reader.watermark() < reader.next_lsn:
                    break
                reader.wait(args.poll_seconds)
    except KeyboardInterrupt:
        return 0  # following until interrupted is the normal way to use tail
    except WalError as exc:
        raise CliError(f"{wal_dir}: {exc}", code=3) from exc
    return 0
