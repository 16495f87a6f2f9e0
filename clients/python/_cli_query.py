"""``stemedb resolve | beliefs | tally | history | lenses``: what is believed, by whom, and why.

The Lattice's reads (DESIGN 9.6) through the ingestor's QueryService at ``--store``. Each prints a
readable form by default and, with ``--json``, the protobuf JSON mapping of the answer with the
proto field names (hashes hex, enums by name, 64-bit integers as numbers): one object for
``resolve``, ``tally`` and ``lenses``, one object per line for the listings ``beliefs`` and
``history``. An unknown lens, or an ``--as-of`` above the store's applied LSN, is the server's
INVALID_ARGUMENT (exit 2, its message names the known lenses or the applied LSN); ``tally`` of an
unknown assertion exits 1.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Iterable

from stemedb.client._cli import (
    EXIT_NOT_FOUND,
    CliError,
    client_from_args,
    escape_text,
    fail,
    out,
    whole_number,
)
from stemedb.client._cli_reads import _dump, _limited
from stemedb.jsonmessage import message_to_json
from stemedb.v1 import query_pb2 as qpb
from stemedb.v1 import records_pb2 as pb

__all__ = ["describe_value", "register"]

_HASH = re.compile(r"[0-9a-fA-F]{64}")
_LENS_HELP = "the lens: consensus (default), skeptic or recent (`stemedb lenses` lists them)"


def register(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = add("resolve", "what is believed about SUBJECT PREDICATE: status, winner, candidates")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("predicate", metavar="PREDICATE")
    p.add_argument("--lens", default="", help=_LENS_HELP)
    p.add_argument("--as-of", dest="as_of_lsn", metavar="LSN", type=whole_number, default=0,
                   help="answer as the store would have at this LSN (default: now)")  # fmt: skip
    _min_lsn(p)
    p.set_defaults(func=resolve)

    p = add("beliefs", "every predicate of SUBJECT resolved (one line each, all pages)")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("--lens", default="", help=_LENS_HELP)
    _listing(p)
    p.set_defaults(func=beliefs)

    p = add("tally", "the votes counted for an assertion: support, dispute, supporters")
    p.add_argument("assertion_hash", metavar="HASH", help="the assertion's hash, 64 hex digits")
    _min_lsn(p)
    p.set_defaults(func=tally)

    p = add("history", "when the winner or status of SUBJECT PREDICATE changed, oldest first")
    p.add_argument("subject", metavar="SUBJECT")
    p.add_argument("predicate", metavar="PREDICATE")
    p.add_argument("--lens", default="", help=_LENS_HELP)
    _listing(p)
    p.set_defaults(func=history)

    p = add("lenses", "the lenses the store resolves with, and their parameters in force")
    p.set_defaults(func=lenses)


def _min_lsn(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-lsn", metavar="LSN", type=whole_number, default=0,
                   help="wait until this LSN is applied (read-your-writes)")  # fmt: skip


def _listing(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=whole_number, default=None, help="print at most N entries")
    p.add_argument("--page-size", type=whole_number, default=0,
                   help="entries per call (server default 100)")  # fmt: skip
    _min_lsn(p)


def _figure(x: float) -> str:
    return f"{x:.6g}"


def _status(value: int) -> str:
    return qpb.Status.Name(value).removeprefix("STATUS_")


def describe_value(v: pb.Value) -> str:
    """An assertion's object for people: text quoted (control characters escaped), numbers and
    flags as they are, bytes as hex, a reference as ``ref:<hash>``."""
    kind = v.WhichOneof("kind")
    if kind == "text":
        return escape_text(json.dumps(v.text, ensure_ascii=False))
    if kind == "number":
        return _figure(v.number)
    if kind == "flag":
        return "true" if v.flag else "false"
    if kind == "blob":
        return f"blob:{v.blob.hex()}"
    if kind == "ref":
        return f"ref:{v.ref.hex()}"
    return "(no object)"


def _candidates_table(candidates: Iterable[qpb.Candidate]) -> list[str]:
    header = ("assertion_hash", "score", "support", "dispute", "supporters", "disputers", "retired")
    rows = [header]
    for c in candidates:
        retired = "yes" if c.retired else ("no" if c.qualified else "no (does not qualify)")
        rows.append((c.assertion_hash.hex(), _figure(c.score), _figure(c.support),
                     _figure(c.dispute), str(c.supporters), str(c.disputers), retired))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]  # fmt: skip


def _resolution_lines(r: qpb.Resolution, applied_lsn: int | None) -> list[str]:
    lens = r.lens or "consensus"
    at = f"as of LSN {r.as_of_lsn}"
    if applied_lsn is not None and applied_lsn != r.as_of_lsn:
        at += f" (applied {applied_lsn})"
    lines = [
        f"{escape_text(r.subject)} / {escape_text(r.predicate)}  lens {lens}, {at}",
        f"status     {_status(r.status)}",
    ]
    if r.HasField("winner"):
        lines.append(
            f"winner     {r.winner.hash.hex()}  {describe_value(r.winner.assertion.object)}"
        )
    else:
        lines.append("winner     (none)")
    lines.append(f"score      {_figure(r.score)}")
    lines.append(f"policy     {r.policy_hash.hex()}")
    shown = len(r.candidates)
    total = max(r.candidates_total, shown)
    lines.append(f"candidates {shown} of {total}" + (":" if shown else ""))
    if shown:
        lines.extend(_candidates_table(r.candidates))
    return lines


def resolve(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        resp = client.resolve(args.subject, args.predicate, args.lens, args.min_lsn, args.as_of_lsn)
    if args.json:
        out(_dump(message_to_json(resp)))
    else:
        out("\n".join(_resolution_lines(resp.resolution, resp.applied_lsn)))
    return 0


def beliefs(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        items = client.iter_resolve_subject(args.subject, args.lens, args.page_size, args.min_lsn)
        printed = 0
        for r in _limited(items, args.limit):
            printed += 1
            if args.json:
                out(_dump(message_to_json(r)))
                continue
            winner = (
                f"{r.winner.hash.hex()}  {describe_value(r.winner.assertion.object)}"
                if r.HasField("winner") else "(no winner)"
            )  # fmt: skip
            out(f"{escape_text(r.predicate)}\t{_status(r.status)}\t{_figure(r.score)}\t{winner}")
    if not printed and not args.json:
        fail(f"nothing is asserted about {escape_text(args.subject)!r} (yet)")
    return 0


def tally(args: argparse.Namespace) -> int:
    if not _HASH.fullmatch(args.assertion_hash):
        raise CliError(f"HASH: {escape_text(args.assertion_hash)!r} is not a 64-hex hash")
    with client_from_args(args) as client:
        resp = client.get_tally(args.assertion_hash, args.min_lsn)
    if args.json:
        out(_dump(message_to_json(resp)))
    if not resp.found:
        fail(f"not found: no assertion with hash {args.assertion_hash.lower()}")
        return EXIT_NOT_FOUND
    if not args.json:
        t = resp.tally
        out("\n".join([
            f"assertion  {t.assertion_hash.hex()}  (applied LSN {resp.applied_lsn})",
            f"score      {_figure(t.score)}",
            f"support    {_figure(t.support)}  ({t.supporters} supporters)",
            f"dispute    {_figure(t.dispute)}  ({t.disputers} disputers)",
            f"votes      {t.votes}",
            f"policy     {resp.policy_hash.hex()}",
        ]))  # fmt: skip
    return 0


def history(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        entries = client.iter_history(
            args.subject, args.predicate, args.lens, args.page_size, args.min_lsn
        )
        for e in _limited(entries, args.limit):
            if args.json:
                out(_dump(message_to_json(e)))
            else:
                winner = e.winner_hash.hex() if e.winner_hash else "(no winner)"
                out(f"lsn={e.lsn}\t{_status(e.status)}\t{_figure(e.score)}\t{winner}")
    return 0


def lenses(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        resp = client.list_lenses()
    if args.json:
        out(_dump(message_to_json(resp)))
        return 0
    for lens in resp.lenses:
        params = ", ".join(f"{k}={_figure(v)}" for k, v in sorted(lens.parameters.items()))
        out(f"{lens.name}\t{escape_text(lens.description)}" + (f"\t{params}" if params else ""))
    out(f"candidates_max={resp.candidates_max}  policy {resp.policy_hash.hex()}")
    return 0
