"""The signer: it canonicalizes records itself, fills votes, refuses what is not its to sign."""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stemedb import canonical, signing
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.wallet import BadRequest, Keystore, KeystoreLimits, KeyUnusable
from stemedb.wallet._metrics import WalletMetrics
from stemedb.wallet._signer import Signer
from tests.wallet.wallet_testlib import FAST_KDF, PASSPHRASE, leaks, secrets_of

ASSERTION_HASH = b"\x11" * 32


def _assertion(text: str = "Douglas Adams") -> pb.Assertion:
    return pb.Assertion(
        subject="Q42", predicate="name", object=pb.Value(text=text), confidence=0.9,
        source_hash=b"\x05" * 32,
    )  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    ks = Keystore.open(
        tmp_path / "ks", PASSPHRASE, kdf=FAST_KDF, limits=KeystoreLimits(sequence_block_votes=4)
    )
    ks.create_key("alice")
    ks.create_key("bob")
    yield ks
    ks.close()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def signer(store: Keystore, registry: CollectorRegistry) -> Signer:
    return Signer(store, WalletMetrics(registry))


def test_sign_assertion_adds_a_valid_signature_and_keeps_cosigners(
    signer: Signer, store: Keystore
) -> None:
    a = _assertion()
    other = signing.SigningKey(b"\x42" * 32)
    digest = canonical.content_hash(canonical.assertion_bytes(a))
    a.signatures.append(signing.signature_entry(other, digest))
    signed = signer.sign_assertion(a, "bob")
    assert signed.content_hash == digest == canonical.record_hash(pb.Record(assertion=a))
    assert [s.public_key for s in a.signatures] == [
        signing.public_key_of(other), store.get("bob").public_key,
    ]  # fmt: skip
    for s in a.signatures:
        assert signing.verify(s.public_key, s.signature, digest)
    again = pb.Assertion()
    again.CopyFrom(a)
    signer.sign_assertion(again, "bob")
    assert again == a, "signing again with the same key is idempotent"


def test_sign_epoch_uses_the_default_key(signer: Signer, store: Keystore) -> None:
    e = pb.Epoch(name="Newtonian mechanics", description="classical")
    signed = signer.sign_epoch(e)
    assert signed.key.name == "alice"
    (entry,) = e.signatures
    assert entry.public_key == store.get("alice").public_key
    assert signing.verify(
        entry.public_key, entry.signature, canonical.record_hash(pb.Record(epoch=e))
    )


def test_sign_vote_fills_agent_id_and_increasing_sequences(signer: Signer, store: Keystore) -> None:
    pk = store.get("alice").public_key
    seen = []
    for weight in (0.5, -1.0, 1.0):
        v = pb.Vote(assertion_hash=ASSERTION_HASH, weight=weight)
        signed = signer.sign_vote(v, "alice")
        assert v.agent_id == pk
        assert signing.verify(pk, v.signature, canonical.record_hash(pb.Record(vote=v)))
        assert signed.content_hash == canonical.record_hash(pb.Record(vote=v))
        seen.append(v.sequence)
    assert seen == [1, 2, 3]
    v = pb.Vote(assertion_hash=ASSERTION_HASH, agent_id=pk, weight=0.1)  # its own key: fine
    signer.sign_vote(v, "alice")
    assert v.sequence == 4


def test_the_vote_hash_covers_the_sequence() -> None:
    v = pb.Vote(assertion_hash=ASSERTION_HASH, agent_id=b"\x22" * 32, weight=0.5)
    v1 = canonical.vote_bytes(v)
    assert len(v1) == 16 + 32 + 32 + 8, "sequence 0 keeps the v1 bytes"
    v.sequence = 7
    assert canonical.vote_bytes(v) == v1 + struct.pack(">Q", 7)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"agent_id": b"\x33" * 32}, "vote.agent_id"),
        ({"sequence": 9}, "vote.sequence"),
        ({"signature": b"\x00" * 64}, "vote.signature"),
    ],
)
def test_sign_vote_refuses_foreign_keys_sequences_and_signatures(
    signer: Signer, store: Keystore, change: dict[str, object], field: str
) -> None:
    v = pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5, **change)  # type: ignore[arg-type]
    before = v.SerializeToString()
    with pytest.raises(BadRequest) as info:
        signer.sign_vote(v, "alice")
    assert info.value.field == field
    assert v.SerializeToString() == before, "a refused vote is left untouched"
    ok = pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)
    signer.sign_vote(ok, "alice")
    assert ok.sequence == 1, "a refused vote consumes no sequence"


def test_invalid_records_are_refused_naming_the_field(signer: Signer) -> None:
    with pytest.raises(InvalidRecord, match=r"^vote\.weight"):
        signer.sign_vote(pb.Vote(assertion_hash=ASSERTION_HASH, weight=2.0))
    with pytest.raises(InvalidRecord, match=r"^vote\.assertion_hash"):
        signer.sign_vote(pb.Vote(assertion_hash=b"\x01" * 5, weight=0.5))
    bad = _assertion()
    bad.confidence = 1.5
    with pytest.raises(InvalidRecord, match=r"^assertion\.confidence"):
        signer.sign_assertion(bad)
    assert len(bad.signatures) == 0
    with pytest.raises(InvalidRecord, match=r"^epoch\.name"):
        signer.sign_epoch(pb.Epoch())
    full = _assertion()
    digest = canonical.content_hash(canonical.assertion_bytes(full))
    for i in range(16):
        full.signatures.append(
            signing.signature_entry(signing.SigningKey(bytes([i + 1]) * 32), digest)
        )
    with pytest.raises(InvalidRecord, match=r"^assertion\.signatures: holds 16"):
        signer.sign_assertion(full)


def test_retired_keys_never_sign(signer: Signer, store: Keystore) -> None:
    store.retire("bob")
    with pytest.raises(KeyUnusable, match="retired"):
        signer.sign_assertion(_assertion(), "bob")
    with pytest.raises(KeyUnusable, match="retired"):
        signer.sign_vote(pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5), "bob")


def test_sign_unsigned_signs_only_unsigned_records_with_consecutive_sequences(
    signer: Signer, store: Keystore
) -> None:
    own = signing.SigningKey(b"\x44" * 32)
    presigned = _assertion("signed by the agent")
    digest = canonical.content_hash(canonical.assertion_bytes(presigned))
    presigned.signatures.append(signing.signature_entry(own, digest))
    records = [
        pb.Record(assertion=_assertion()),
        pb.Record(vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)),
        pb.Record(assertion=presigned),
        pb.Record(vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=-0.5)),
        pb.Record(epoch=pb.Epoch(name="E")),
    ]
    before = records[2].SerializeToString()
    fields = [f"records[{i}]" for i in range(len(records))]
    signed = signer.sign_unsigned(records, fields, "bob")
    assert [s.kind for s in signed] == ["assertion", "vote", "vote", "epoch"]
    assert records[2].SerializeToString() == before, "a signed record passes untouched"
    assert [records[1].vote.sequence, records[3].vote.sequence] == [1, 2]
    bob = store.get("bob").public_key
    for r in records:
        digest = canonical.record_hash(r)
        check = signing.check_record_signatures(r, digest, require_signatures=True)
        assert check >= 1
    assert records[0].assertion.signatures[0].public_key == bob
    assert records[1].vote.agent_id == bob


def test_a_refused_batch_signs_nothing_and_consumes_no_sequence(signer: Signer) -> None:
    records = [
        pb.Record(vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)),
        pb.Record(assertion=_assertion()),
        pb.Record(vote=pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5, sequence=3)),
    ]
    with pytest.raises(BadRequest, match=r"^records\[2\]\.vote\.sequence"):
        signer.sign_unsigned(records, [f"records[{i}].vote" for i in range(3)])
    assert not records[0].vote.signature and not records[1].assertion.signatures
    ok = pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)
    signer.sign_vote(ok)
    assert ok.sequence == 1


def test_every_signature_is_logged_and_counted_without_key_material(
    signer: Signer, store: Keystore, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stemedb.wallet")
    a = _assertion()
    signed_a = signer.sign_assertion(a, "alice")
    v = pb.Vote(assertion_hash=ASSERTION_HASH, weight=0.5)
    signed_v = signer.sign_vote(v, "bob")
    batch = [pb.Record(epoch=pb.Epoch(name=f"E{i}")) for i in range(3)]
    signer.sign_unsigned(batch, ["e"] * 3, "alice")
    events = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "signed"]
    assert [e["key"] for e in events] == ["alice", "bob", "alice"]
    assert events[0]["hashes"] == [signed_a.content_hash.hex()]
    assert events[1]["hashes"] == [signed_v.content_hash.hex()]
    assert events[2]["hashes"] == [canonical.record_hash(r).hex() for r in batch]
    metrics = generate_latest(registry).decode()
    assert 'stemedb_wallet_signatures_total{kind="assertion"} 1.0' in metrics
    assert 'stemedb_wallet_signatures_total{kind="vote"} 1.0' in metrics
    assert 'stemedb_wallet_signatures_total{kind="epoch"} 3.0' in metrics
    secrets = [s for group in secrets_of(store).values() for s in group]
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert leaks(logged.encode(), secrets) == []
    assert leaks(metrics.encode(), secrets) == []
