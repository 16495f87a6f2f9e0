"""The keystore: sealed files, the check value, tamper detection, rotation, vote sequences."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.validation import DEFAULT_LIMITS, validate_vote
from stemedb.wallet import (
    DEFAULT_KDF,
    KeyExists,
    KeyNotFound,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreLimits,
    KeystoreLocked,
    KeystoreVersion,
    KeyUnusable,
    TooManyKeys,
    WrongPassphrase,
)
from stemedb.wallet import Keystore as _Keystore
from stemedb.wallet._keystore import SEQUENCE_MAX
from tests.wallet.wallet_testlib import FAST_KDF, PASSPHRASE, leaks, secrets_of


def open_store(d: Path, passphrase: bytes = PASSPHRASE, **kw: object) -> _Keystore:
    return _Keystore.open(d, passphrase, kdf=FAST_KDF, **kw)  # type: ignore[arg-type]


def test_keys_survive_reopen_and_every_file_is_0600(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    alice = store.create_key("alice")
    bob = store.create_key("bob")
    _, alice_key = store.signing_key("alice")
    store.close()
    store = open_store(d)
    assert [k.name for k in store.list_keys()] == ["alice", "bob"]
    assert store.get("alice").public_key == alice.public_key
    assert store.get("bob").public_key == bob.public_key
    assert bytes(store.signing_key("alice")[1]) == bytes(alice_key)
    assert store.get().name == "alice", "the first key created is the default"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    names = sorted(p.name for p in d.iterdir())
    assert names == ["KEYSTORE", "LOCK", "STATE", "alice.key", "alice.seq", "bob.key", "bob.seq"]
    for p in d.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    store.close()


def test_keystore_files_hold_no_plaintext_key_material(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    for i in range(8):
        store.create_key(f"agent-{i}")
    secrets = [s for group in secrets_of(store).values() for s in group]
    store.take_sequences("agent-0", 3)
    store.retire("agent-7")
    store.close()
    assert len(secrets) == 8
    for p in sorted(d.iterdir()):
        assert leaks(p.read_bytes(), secrets) == [], f"{p.name} holds key material"


def test_wrong_passphrase_is_detected_even_on_an_empty_keystore(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    open_store(d).close()
    with pytest.raises(WrongPassphrase, match="passphrase"):
        open_store(d, b"not the passphrase")
    store = open_store(d)  # the right one still opens
    assert store.list_keys() == []
    store.close()


def test_an_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="empty"):
        open_store(tmp_path / "ks", b"")
    assert not (tmp_path / "ks" / "KEYSTORE").exists()


def test_one_process_per_keystore(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    with pytest.raises(KeystoreLocked, match="another wallet"):
        open_store(d)
    store.close()
    open_store(d).close()


def _populated(d: Path) -> None:
    store = open_store(d)
    store.create_key("alice")
    store.create_key("bob")
    store.take_sequences("alice", 5)
    store.set_default("bob")
    store.close()


@pytest.mark.parametrize("name", ["alice.key", "alice.seq", "STATE", "KEYSTORE"])
def test_changing_any_byte_of_a_file_is_detected(tmp_path: Path, name: str) -> None:
    d = tmp_path / "ks"
    _populated(d)
    path = d / name
    original = path.read_bytes()
    # KEYSTORE's Argon2id parameters (offsets 13 to 28) get their own test below: a bit flip
    # there can ask for a costly derivation, which this loop would repeat dozens of times.
    kdf_params = range(13, 29) if name == "KEYSTORE" else range(0)
    for offset in range(len(original)):
        if offset in kdf_params:
            continue
        for flip in (0x01, 0x80):
            damaged = bytearray(original)
            damaged[offset] ^= flip
            path.write_bytes(bytes(damaged))
            with pytest.raises(KeystoreError) as info:
                open_store(d).close()
            assert str(path) in str(info.value) or "passphrase" in str(info.value), (
                f"offset {offset}: {info.value}"
            )
            if 8 <= offset < 10:
                assert isinstance(info.value, KeystoreVersion)
    for cut in (0, 11, len(original) // 2, len(original) - 1):
        path.write_bytes(original[:cut])
        with pytest.raises(KeystoreError):
            open_store(d).close()
    path.write_bytes(original + b"\x00")
    with pytest.raises(KeystoreError):
        open_store(d).close()
    path.write_bytes(original)
    open_store(d).close()


def test_a_keystore_of_another_version_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    _populated(d)
    data = bytearray((d / "KEYSTORE").read_bytes())
    data[8:10] = (2).to_bytes(2, "big")
    (d / "KEYSTORE").write_bytes(bytes(data))
    with pytest.raises(KeystoreVersion, match="version 2"):
        open_store(d)


def test_files_swapped_between_keys_are_detected(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    _populated(d)
    alice = (d / "alice.key").read_bytes()
    (d / "alice.key").write_bytes((d / "bob.key").read_bytes())
    with pytest.raises(KeystoreCorrupt, match="holds key 'bob'"):
        open_store(d)
    (d / "alice.key").write_bytes(alice)
    (d / "alice.seq").unlink()
    with pytest.raises(KeystoreCorrupt, match="sequence file of key 'alice' is missing"):
        open_store(d)


def test_a_key_file_from_another_keystore_is_detected(tmp_path: Path) -> None:
    other = tmp_path / "other"
    store = open_store(other)
    store.create_key("carol")
    store.close()
    d = tmp_path / "ks"
    _populated(d)
    for suffix in (".key", ".seq"):
        (d / f"carol{suffix}").write_bytes((other / f"carol{suffix}").read_bytes())
    with pytest.raises(KeystoreCorrupt, match="fails authentication"):
        open_store(d)


def test_key_files_are_never_overwritten(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    store.create_key("alice")
    before = (d / "alice.key").read_bytes()
    with pytest.raises(KeyExists):
        store.create_key("alice")
    store.close()
    assert (d / "alice.key").read_bytes() == before


def test_rotation_default_and_retired_keys(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    with pytest.raises(KeyUnusable, match="no key"):
        store.signing_key("")
    store.create_key("old")
    store.create_key("new")
    assert store.get().name == "old"
    with pytest.raises(KeyUnusable, match="default"):
        store.retire("old")
    store.set_default("new")
    store.retire("old")
    with pytest.raises(KeyUnusable, match="retired"):
        store.signing_key("old")
    with pytest.raises(KeyUnusable, match="retired"):
        store.set_default("old")
    with pytest.raises(KeyNotFound):
        store.signing_key("nobody")
    store.close()
    store = open_store(d)
    keys = {k.name: k for k in store.list_keys()}
    assert keys["old"].retired and not keys["old"].is_default
    assert keys["new"].is_default and not keys["new"].retired
    assert store.signing_key("")[0].name == "new"
    store.close()


def test_make_default_at_creation_and_the_key_bound(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d, limits=KeystoreLimits(keys_max=2))
    store.create_key("a")
    assert store.create_key("b", make_default=True).is_default
    assert not store.get("a").is_default
    with pytest.raises(TooManyKeys):
        store.create_key("c")
    store.close()
    assert not (d / "c.key").exists()


def test_sequences_are_reserved_in_blocks_and_never_go_back(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    limits = KeystoreLimits(sequence_block_votes=10)
    store = open_store(d, limits=limits)
    store.create_key("alice")
    store.create_key("bob")
    got = [store.take_sequences("alice") for _ in range(25)]
    assert got == list(range(1, 26))
    assert store.take_sequences("alice", 7) == 26
    assert store.take_sequences("bob") == 1, "counters are per key"
    store.close()
    store = open_store(d, limits=limits)
    resumed = store.take_sequences("alice")
    # A restart resumes past everything reserved: never below what was handed out, and at
    # most one block above it.
    assert 33 <= resumed <= 33 + 10
    store.close()


def test_an_orphan_sequence_file_from_a_crashed_creation_is_kept(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    store.create_key("alice")
    used = store.take_sequences("alice", 2000)
    store.close()
    # Simulate a crash between the .seq and the .key of a creation of the same name.
    (d / "alice.key").unlink()
    store = open_store(d)
    assert store.list_keys() == []
    store.create_key("alice")
    assert store.take_sequences("alice") > used + 1999, "a sequence counter never goes back"
    store.close()


def test_keystore_without_its_keystore_file_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    _populated(d)
    (d / "KEYSTORE").unlink()
    with pytest.raises(KeystoreCorrupt, match="KEYSTORE is missing"):
        open_store(d)


def test_the_documented_default_kdf_opens(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = _Keystore.open(d, PASSPHRASE)
    store.create_key("alice")
    store.close()
    data = (d / "KEYSTORE").read_bytes()
    assert int.from_bytes(data[13:21], "big") == DEFAULT_KDF.opslimit
    assert int.from_bytes(data[21:29], "big") == DEFAULT_KDF.memlimit_bytes
    with pytest.raises(WrongPassphrase):
        _Keystore.open(d, PASSPHRASE + b"!")
    store = _Keystore.open(d, PASSPHRASE, kdf=FAST_KDF)  # the file's parameters win
    assert store.get().name == "alice"
    store.close()


@pytest.mark.parametrize(
    ("opslimit", "memlimit", "error"),
    [
        (2, FAST_KDF.memlimit_bytes, WrongPassphrase),  # another cost: another key
        (FAST_KDF.opslimit, 2 * FAST_KDF.memlimit_bytes, WrongPassphrase),
        (0, FAST_KDF.memlimit_bytes, KeystoreCorrupt),  # outside the bounds: never derived
        (1000, FAST_KDF.memlimit_bytes, KeystoreCorrupt),
        (FAST_KDF.opslimit, 2**40, KeystoreCorrupt),
        (FAST_KDF.opslimit, 1024, KeystoreCorrupt),
    ],
)
def test_changed_kdf_parameters_are_detected(
    tmp_path: Path, opslimit: int, memlimit: int, error: type[Exception]
) -> None:
    d = tmp_path / "ks"
    _populated(d)
    data = bytearray((d / "KEYSTORE").read_bytes())
    data[13:21] = opslimit.to_bytes(8, "big")
    data[21:29] = memlimit.to_bytes(8, "big")
    (d / "KEYSTORE").write_bytes(bytes(data))
    with pytest.raises(error):
        open_store(d)


def test_files_follow_the_documented_layout(tmp_path: Path) -> None:
    """docs/wallet.md's tables: sizes, header, clear fields at their offsets."""
    d = tmp_path / "ks"
    store = open_store(d)
    info = store.create_key("alice")
    store.take_sequences("alice", 3)
    store.close()
    n = len("alice")
    keystore, key, seq = (
        (d / "KEYSTORE").read_bytes(),
        (d / "alice.key").read_bytes(),
        (d / "alice.seq").read_bytes(),
    )
    assert (len(keystore), len(key), len(seq)) == (162, 180 + 2 * n, 84 + 2 * n)
    for data, kind in ((keystore, 1), (key, 2), ((d / "STATE").read_bytes(), 3), (seq, 4)):
        assert data[:8] == b"STMDBWLT"
        assert int.from_bytes(data[8:10], "big") == 1
        assert int.from_bytes(data[10:12], "big") == kind
    assert keystore[12] == 1
    assert int.from_bytes(key[12:14], "big") == n and key[14 : 14 + n] == b"alice"
    assert key[14 + n : 46 + n] == info.public_key
    assert int.from_bytes(key[46 + n : 54 + n], "big") == info.created_unix_ms
    assert int.from_bytes(seq[14 + n : 22 + n], "big") == 4 + KeystoreLimits().sequence_block_votes


def test_a_closed_keystore_writes_nothing(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d, limits=KeystoreLimits(sequence_block_votes=1))
    store.create_key("alice")
    store.close()
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    with pytest.raises(KeystoreError, match="closed"):
        store.create_key("bob")
    with pytest.raises(KeystoreError, match="closed"):
        store.take_sequences("alice", 5)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_sequences_stop_at_2_53_minus_1(tmp_path: Path) -> None:
    d = tmp_path / "ks"
    store = open_store(d)
    store.create_key("alice")
    store._write_sequence("alice", SEQUENCE_MAX - 1)  # as if 2^53 - 2 votes had been signed
    store.close()
    store = open_store(d)
    assert store.take_sequences("alice") == SEQUENCE_MAX - 1
    last = store.take_sequences("alice")
    assert last == SEQUENCE_MAX
    # The last sequence handed out is one the writer's validation accepts; one more it refuses.
    validate_vote(pb.Vote(assertion_hash=b"\1" * 32, agent_id=b"\2" * 32, weight=1.0,
                          signature=b"\3" * 64, sequence=last))  # fmt: skip
    with pytest.raises(InvalidRecord, match=r"vote\.sequence"):
        validate_vote(pb.Vote(assertion_hash=b"\1" * 32, agent_id=b"\2" * 32, weight=1.0,
                              signature=b"\3" * 64, sequence=last + 1))  # fmt: skip
    bound = str(DEFAULT_LIMITS.vote_sequence_max)
    with pytest.raises(KeyUnusable, match=f"used up .*sequence {last + 1} .*bound {bound}"):
        store.take_sequences("alice")
    store.close()
    store = open_store(d)  # the reserve persisted is 2^53, which still reads
    with pytest.raises(KeyUnusable, match="used up"):
        store.take_sequences("alice")
    store.close()
