"""Argument and response helpers of the client core (no I/O here).

Arguments are converted (a hash as bytes or hex, a key as bytes or text, any record kind as a
Record); responses are checked (records read back against their keys and hashes) before they
are returned. Requests are built in :mod:`stemedb.client._core`.
"""

from __future__ import annotations

from stemedb import canonical
from stemedb.client._errors import ReadMismatch
from stemedb.client._records import Entry, GetResult, Page
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb

__all__ = [
    "AnyRecord",
    "HashLike",
    "as_hash",
    "as_key",
    "as_record",
    "check_assertion",
    "get_result",
    "page_of_assertions",
    "page_of_entries",
    "page_of_votes",
]

AnyRecord = pb.Record | pb.Assertion | pb.Vote | pb.Epoch
HashLike = bytes | str
_RECORD_PREFIXES = {b"H:": "assertion", b"V:": "vote", b"E:": "epoch"}


def as_record(item: AnyRecord) -> pb.Record:
    if isinstance(item, pb.Record):
        return item
    if isinstance(item, pb.Assertion):
        return pb.Record(assertion=item)
    if isinstance(item, pb.Vote):
        return pb.Record(vote=item)
    if isinstance(item, pb.Epoch):
        return pb.Record(epoch=item)
    raise TypeError(f"not a record: {type(item).__name__}")


def as_hash(value: HashLike, field: str) -> bytes:
    """A 32-byte hash given as bytes or as 64 hex digits."""
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError as exc:
            raise InvalidRecord(field, f"is not valid hex: {exc}") from exc
    if len(value) != 32:
        raise InvalidRecord(field, f"must be a 32-byte hash, got {len(value)} bytes")
    return value


def as_key(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def _check_record_key(key: bytes, record: pb.Record) -> None:
    kind = _RECORD_PREFIXES.get(key[:2])
    if kind is None:
        return
    if record.WhichOneof("kind") != kind:
        raise ReadMismatch(f"{key!r}: the store returned a {record.WhichOneof('kind')}")
    digest = canonical.record_hash(record).hex().encode()
    if key[2:] != digest:
        raise ReadMismatch(f"{key.decode(errors='replace')}: the record read hashes to {digest!r}")


def get_result(key: bytes, resp: spb.GetResponse) -> GetResult:
    record = resp.record if resp.found and resp.HasField("record") else None
    if record is not None:
        _check_record_key(key, record)
    return GetResult(key, resp.found, resp.value, record, resp.applied_lsn)


def check_assertion(expected: bytes, a: pb.Assertion) -> pb.Assertion:
    got = canonical.record_hash(pb.Record(assertion=a))
    if got != expected:
        raise ReadMismatch(f"assertion {expected.hex()}: the record read hashes to {got.hex()}")
    return a


def page_of_entries(resp: spb.ScanPrefixResponse) -> Page[Entry]:
    items = [Entry(e.key, e.value) for e in resp.entries]
    return Page(items, resp.next_page_token, resp.applied_lsn)


def page_of_assertions(
    resp: spb.ListAssertionsBySubjectResponse,
) -> Page[spb.HashedAssertion]:
    for item in resp.assertions:
        check_assertion(item.hash, item.assertion)
    return Page(list(resp.assertions), resp.next_page_token, resp.applied_lsn)


def page_of_votes(resp: spb.ListVotesResponse) -> Page[spb.HashedVote]:
    for item in resp.votes:
        got = canonical.record_hash(pb.Record(vote=item.vote))
        if got != item.hash:
            raise ReadMismatch(f"vote {item.hash.hex()}: the record read hashes to {got.hex()}")
    return Page(list(resp.votes), resp.next_page_token, resp.applied_lsn)
