"""Local checks: validation before any call, receipts and reads checked against local hashes."""

from __future__ import annotations

import pytest

from stemedb import canonical
from stemedb.client import (
    AgentKey,
    Client,
    InvalidRecord,
    ReadMismatch,
    ReceiptMismatch,
    RetryPolicy,
    make_assertion,
    make_epoch,
)
from stemedb.v1 import records_pb2 as pb
from tests.client.fake import Behaviour, fake_server

ONCE = RetryPolicy(attempts_max=1)


def _a(subject: str = "Q42") -> pb.Assertion:
    return make_assertion(subject, "name", "Douglas Adams", source_hash=b"\x05" * 32)


def test_wrong_hash_in_receipt_is_detected() -> None:
    b = Behaviour(wrong_hash=True)
    with (
        fake_server(b) as target,
        Client(target, target, retry=ONCE) as c,
        pytest.raises(ReceiptMismatch, match="hashes to"),
    ):
        c.append_assertion(_a())
        with pytest.raises(ReceiptMismatch):
            c.append_epoch(make_epoch("E"))
        with pytest.raises(ReceiptMismatch):
            c.append_batch([_a("a"), _a("b")])


def test_batch_receipts_must_be_consecutive() -> None:
    b = Behaviour(skip_lsn=True)
    with (
        fake_server(b) as target,
        Client(target, target, retry=ONCE) as c,
        pytest.raises(ReceiptMismatch, match="consecutive"),
    ):
        c.append_batch([_a("a"), _a("b")])


def test_right_receipts_pass() -> None:
    b = Behaviour()
    key = AgentKey.from_seed(b"\x09" * 32)
    with fake_server(b) as target, Client(target, target, retry=ONCE) as c:
        r = c.append_assertion(_a())
        assert r.hash == canonical.record_hash(pb.Record(assertion=_a()))
        v = c.append_vote(key.vote(r.hash, 1.0))
        assert v.lsn == 2
        receipts = c.append_batch([_a("x"), key.vote(r.hash, 0.5), make_epoch("E")])
        assert [x.lsn for x in receipts] == [3, 4, 5]


def test_invalid_record_fails_before_any_call() -> None:
    b = Behaviour()
    bad = make_assertion("Q42", "name", "x", source_hash=b"\x05" * 32, confidence=1.5)
    with (
        fake_server(b) as target,
        Client(target, target, retry=ONCE) as c,
        pytest.raises(InvalidRecord) as info,
    ):
        c.append_assertion(bad)
        assert info.value.field == "assertion.confidence"
        with pytest.raises(InvalidRecord) as info:
            c.append_batch([_a(), bad])
        assert info.value.field == "records[1].assertion.confidence"
    assert b.calls == 0


def test_a_record_read_back_must_hash_to_its_key() -> None:
    good = pb.Record(assertion=_a())
    h = canonical.record_hash(good).hex()
    b = Behaviour(stored={f"H:{h}".encode(): pb.Record(assertion=_a("Q43"))})
    with (
        fake_server(b) as target,
        Client(target, target, retry=ONCE) as c,
        pytest.raises(ReadMismatch),
    ):
        c.get(f"H:{h}")
    b.stored = {f"H:{h}".encode(): good}
    with fake_server(b) as target, Client(target, target, retry=ONCE) as c:
        got = c.get(f"H:{h}")
    assert got.found and got.record == good


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        (b"S:Q42\x00" + b"ab" * 4, "S:Q42\\x00abababab"),
        ("S:a\u202eb\x1b".encode(), "S:a\\u202eb\\x1b"),
        (b"K:\xff\xfe", "K:\\xff\\xfe"),
        (b"K:back\\slash\\x00", "K:back\\\\slash\\\\x00"),
        ("K:caf\u00e9 \u65e5".encode(), "K:caf\u00e9 \u65e5"),
    ],
)
def test_display_key_escapes_and_parse_key_reads_it_back(key: bytes, shown: str) -> None:
    from stemedb.client._cli_reads import display_key, parse_key

    assert display_key(key) == shown
    assert parse_key(shown) == key
