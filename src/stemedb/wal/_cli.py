"""``stemedb wal verify|dump|repair``: offline tools for operators."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from stemedb.wal._errors import WalCorruption, WalError
from stemedb.wal._repair import repair_wal
from stemedb.wal._verify import dump_wal, verify_wal

__all__ = ["add_wal_commands"]

EXIT_OK = 0
EXIT_CORRUPT = 1
EXIT_FAILED = 2


def _wal_dir(text: str) -> Path:
    """An argparse type: an existing directory (a missing one is a mistyped path, not a log
    that is corrupt)."""
    path = Path(text)
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "no such directory"
        raise argparse.ArgumentTypeError(f"{text}: {what}")
    return path


def add_wal_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``wal verify DIR``, ``wal dump DIR [--from LSN]``, ``wal repair DIR
    --accept-loss-from LSN``; each parser's ``func(args)`` returns the exit code."""
    wal = subparsers.add_parser("wal", help="inspect and repair a write-ahead log directory")
    commands = wal.add_subparsers(dest="wal_command", required=True)

    verify = commands.add_parser("verify", help="check every record; exit 0 when sound")
    verify.add_argument("dir", type=_wal_dir)
    verify.set_defaults(func=_verify)

    dump = commands.add_parser("dump", help="print one JSON line per record")
    dump.add_argument("dir", type=_wal_dir)
    dump.add_argument("--from", dest="from_lsn", type=int, default=1, metavar="LSN")
    dump.set_defaults(func=_dump)

    repair = commands.add_parser(
        "repair", help="give up every LSN from --accept-loss-from on (copies files aside first)"
    )
    repair.add_argument("dir", type=_wal_dir)
    repair.add_argument(
        "--accept-loss-from", dest="accept_loss_from", type=int, required=True, metavar="LSN"
    )
    repair.set_defaults(func=_repair)


def _describe(error: WalCorruption) -> str:
    lsn = "unknown" if error.lsn is None else str(error.lsn)
    return f"file {error.file}, offset {error.offset}, lsn {lsn}, reason: {error.reason}"


def _verify(args: argparse.Namespace) -> int:
    report = verify_wal(args.dir)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"corruption: {_describe(error)}", file=sys.stderr)
    if not report.ok:
        print(f"WAL {args.dir}: CORRUPT ({len(report.errors)} error(s))")
        return EXIT_CORRUPT
    print(
        f"WAL {args.dir}: ok, {report.records} records, LSNs {report.first_lsn}.."
        f"{report.last_lsn}, watermark {report.watermark}, {len(report.segments)} segment(s)"
    )
    return EXIT_OK


def _dump(args: argparse.Namespace) -> int:
    try:
        for record in dump_wal(args.dir, args.from_lsn):
            line = {
                "lsn": record.lsn,
                "type": record.record_type,
                "timestamp_ns": record.timestamp_ns,
                "payload_length": len(record.payload),
                "payload_base64": base64.b64encode(record.payload).decode(),
                "checksum": record.checksum.hex(),
                "segment": record.segment.name,
                "offset": record.offset,
            }
            sys.stdout.write(json.dumps(line) + "\n")
    except WalCorruption as exc:
        sys.stdout.flush()
        print(f"corruption: {_describe(exc)}", file=sys.stderr)
        return EXIT_CORRUPT
    return EXIT_OK


def _repair(args: argparse.Namespace) -> int:
    try:
        lines = repair_wal(args.dir, args.accept_loss_from)
    except WalCorruption as exc:
        print(f"repair refused: {_describe(exc)}", file=sys.stderr)
        return EXIT_CORRUPT
    except (WalError, ValueError) as exc:
        print(f"repair refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in lines:
        print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m stemedb.wal._cli wal verify DIR``) until the stemedb
    console script wires ``add_wal_commands`` in."""
    parser = argparse.ArgumentParser(prog="stemedb")
    add_wal_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
