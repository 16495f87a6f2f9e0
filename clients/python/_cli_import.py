"""``stemedb import FILE.jsonl``: bulk append through AppendBatch, with progress and a summary.

Each non-blank line is one record in the JSON form of :mod:`stemedb.jsonrecord`. Lines are
gathered into chunks (``--batch-size``, default 1,000; also cut before 8 MiB, half the 16 MiB
request limit) and every chunk is checked whole before it is sent: the JSON, the record's fields
(validation), and its signatures. A bad line is reported as ``line N: <field>: <reason>`` and
nothing of its chunk is sent; the import stops there (earlier chunks are already durable), and
the exit code is 2. Through a wallet (``--wallet-key``, or a ``unix:`` ``--writer``), unsigned
records are signed there, and a vote may leave out ``agent_id``, ``sequence`` and ``signature``
for the wallet to fill. With ``--keep-going`` bad lines are reported and skipped, the rest is sent,
and the exit code is still 2 when any line was skipped. One chunk is one AppendBatch: all or
nothing, one durable commit. The summary (stdout) says what was sent, even after a failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from stemedb import canonical
from stemedb.client._cli import (
    EXIT_USAGE,
    CliError,
    client_from_args,
    fail,
    out,
)
from stemedb.client._client import Client
from stemedb.client._errors import RpcFailed
from stemedb.client._records import normalize_record, prepare, wallet_signs
from stemedb.errors import InvalidRecord
from stemedb.jsonrecord import record_from_json
from stemedb.signing import check_record_signatures
from stemedb.v1 import records_pb2 as pb
from stemedb.validation import DEFAULT_LIMITS, validate_record

__all__ = ["register"]

DEFAULT_BATCH_RECORDS = 1000
CHUNK_BYTES_MAX = 8 * 1024 * 1024
PROGRESS_TTY_SECONDS = 0.1
PROGRESS_PLAIN_SECONDS = 2.0
_RECORD_INDEX = re.compile(r"records\[(\d+)\]")


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("import", "bulk-append a JSON Lines file of records (- reads stdin)")
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_RECORDS,
                   help=f"records per AppendBatch (1 to {DEFAULT_LIMITS.batch_records_max:,}, "
                   f"default {DEFAULT_BATCH_RECORDS:,})")  # fmt: skip
    p.add_argument("--keep-going", action="store_true", help="skip bad lines instead of stopping")
    p.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    p.set_defaults(func=import_)


class LineError(Exception):
    """A line that cannot be imported; the message names the line and the field."""


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    records: int = 0
    batches: int = 0
    lines_read: int = 0
    skipped_lines: int = 0
    last_line_sent: int = 0
    first_lsn: int = 0
    last_lsn: int = 0

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        s = self.seconds()
        return self.records / s if s > 0 else 0.0


class Progress:
    """A bar redrawn in place on a terminal; plain periodic lines when stderr is not one."""

    def __init__(self, stream: IO[str], total_lines: int | None, enabled: bool) -> None:
        self.stream = stream
        self.total = total_lines
        self.enabled = enabled
        self.tty = stream.isatty()
        self.last = 0.0

    def update(self, stats: Stats, *, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        interval = PROGRESS_TTY_SECONDS if self.tty else PROGRESS_PLAIN_SECONDS
        if not final and self.last and now - self.last < interval:
            return
        self.last = now
        done = stats.lines_read
        if self.tty:
            if self.total:
                frac = min(1.0, done / self.total)
                bar = "#" * int(frac * 30)
                text = f"[{bar:<30}] {frac:4.0%} {done:,}/{self.total:,} lines"
            else:
                text = f"{done:,} lines"
            self.stream.write(f"\r{text}  {stats.records:,} records  {stats.rate():,.0f} rec/s")
            if final:
                self.stream.write("\n")
        else:
            of = f"/{self.total:,}" if self.total else ""
            self.stream.write(
                f"import: {done:,}{of} lines, {stats.records:,} records sent, "
                f"{stats.seconds():.1f} s\n"
            )
        self.stream.flush()


def _count_lines(path: Path) -> int:
    count = 0
    last = b"\n"
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (0 if last == b"\n" else 1)


def parse_line(number: int, line: str, *, wallet: bool = False) -> pb.Record:
    """One JSONL line as a validated record whose signatures verify (its subject, predicate or
    epoch name NFC-normalized first); LineError otherwise. Through a wallet (``wallet``), a vote
    may come without agent, sequence and signature: the wallet fills them."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LineError(f"line {number}: not valid JSON: {exc.msg} at column {exc.colno}") from exc
    try:
        record = normalize_record(record_from_json(obj))
        if wallet and wallet_signs(record):
            prepare(record)
            return record
        validate_record(record)
        check_record_signatures(record, canonical.record_hash(record))
    except InvalidRecord as exc:
        raise LineError(f"line {number}: {exc.field}: {exc.reason}") from exc
    return record


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _send(client: Client, chunk: list[pb.Record], numbers: list[int], stats: Stats) -> None:
    try:
        receipts = client.append_batch(chunk)
    except RpcFailed as exc:
        # The writer names a bad record as records[i]: say which line that is.
        m = _RECORD_INDEX.search(exc.details)
        if m and int(m.group(1)) < len(numbers):
            exc.details = f"line {numbers[int(m.group(1))]}: {exc.details}"
        raise
    stats.records += len(receipts)
    stats.batches += 1
    stats.last_line_sent = numbers[-1]
    stats.first_lsn = stats.first_lsn or receipts[0].lsn
    stats.last_lsn = receipts[-1].lsn


def _summary(args: argparse.Namespace, stats: Stats, ok: bool) -> None:
    seconds = stats.seconds()
    rate = stats.records / seconds if seconds > 0 else 0.0
    if args.json:
        body: dict[str, Any] = {
            "ok": ok, "records": stats.records, "batches": stats.batches,
            "seconds": round(seconds, 3), "records_per_second": round(rate, 1),
            "skipped_lines": stats.skipped_lines, "last_line_sent": stats.last_line_sent,
            "first_lsn": stats.first_lsn, "last_lsn": stats.last_lsn,
        }  # fmt: skip
        out(json.dumps(body))
        return
    text = (
        f"imported {stats.records:,} records in {stats.batches:,} batches, "
        f"{seconds:.2f} s, {rate:,.0f} records/s"
    )
    if stats.records:
        text += f" (LSNs {stats.first_lsn}..{stats.last_lsn})"
    if stats.skipped_lines:
        text += f"; skipped {stats.skipped_lines:,} bad lines"
    if not ok:
        text += f"; stopped: lines after {stats.last_line_sent} were not sent"
    out(text)


def import_(args: argparse.Namespace) -> int:
    limit = DEFAULT_LIMITS.batch_records_max
    if not 1 <= args.batch_size <= limit:
        raise CliError(f"--batch-size must be in [1, {limit:,}], got {args.batch_size}")
    path = None if args.file == "-" else Path(args.file)
    total = _count_lines(path) if path is not None else None
    stream = sys.stdin if path is None else path.open(encoding="utf-8", errors="strict")
    stats = Stats()
    progress = Progress(sys.stderr, total, enabled=not args.no_progress)
    ok = False
    try:
        with client_from_args(args) as client:
            ok = _run(args, client, stream, stats, progress)
    except UnicodeDecodeError as exc:
        fail(f"line {stats.lines_read + 1}: not UTF-8: {exc.reason}")
    finally:
        if stream is not sys.stdin:
            stream.close()
        progress.update(stats, final=True)
        _summary(args, stats, ok)
    return 0 if ok and not stats.skipped_lines else EXIT_USAGE


def _run(
    args: argparse.Namespace, client: Client, stream: IO[str], stats: Stats, progress: Progress
) -> bool:
    """Read, check and send every chunk; False when a bad line stopped the import."""
    chunk: list[pb.Record] = []
    numbers: list[int] = []
    chunk_bytes = 0
    for number, line in _lines(stream):
        stats.lines_read = number
        try:
            record = parse_line(number, line, wallet=client.through_wallet)
        except LineError as exc:
            fail(str(exc))
            stats.skipped_lines += 1
            if not args.keep_going:
                return False
            continue
        size = record.ByteSize() + 8  # +8 bounds the per-record framing in the request
        if chunk and chunk_bytes + size > CHUNK_BYTES_MAX:
            _send(client, chunk, numbers, stats)
            chunk, numbers, chunk_bytes = [], [], 0
            progress.update(stats)
        chunk.append(record)
        numbers.append(number)
        chunk_bytes += size
        if len(chunk) >= args.batch_size:
            _send(client, chunk, numbers, stats)
            chunk, numbers, chunk_bytes = [], [], 0
            progress.update(stats)
    if chunk:
        _send(client, chunk, numbers, stats)
    return True
