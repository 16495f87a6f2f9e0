"""Key files (mode 0600, round trip, refusals) and signing."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path
from typing import Any

import pytest

from stemedb import canonical, signing
from stemedb.client import AgentKey, InvalidRecord, KeyFileError, make_assertion, make_epoch
from stemedb.v1 import records_pb2 as pb


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_save_load_round_trip_with_mode_0600(tmp_path: Path) -> None:
    key = AgentKey.generate()
    path = key.save(tmp_path / "nested" / "key.json")
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    data = json.loads(path.read_text())
    assert data == {"type": "ed25519", "seed": key.seed.hex(), "public_key": key.public_key_hex}
    loaded = AgentKey.load(path)
    assert loaded.public_key == key.public_key
    assert loaded.seed == key.seed


def test_save_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = AgentKey.generate().save(tmp_path / "k.json")
    with pytest.raises(KeyFileError, match="already exists"):
        AgentKey.generate().save(path)
    other = AgentKey.generate()
    other.save(path, overwrite=True)
    assert AgentKey.load(path).public_key == other.public_key
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left


def test_load_refuses_a_readable_key(tmp_path: Path) -> None:
    path = AgentKey.generate().save(tmp_path / "k.json")
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        AgentKey.load(path)


@pytest.mark.parametrize(
    "content",
    ["not json", "{}", '{"seed": "zz", "public_key": ""}', '{"seed": "00", "public_key": "00"}'],
)
def test_load_refuses_malformed_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        AgentKey.load(path)


def test_load_refuses_a_public_key_that_does_not_match(tmp_path: Path) -> None:
    key = AgentKey.generate()
    path = tmp_path / "k.json"
    path.write_text(json.dumps({**key.to_json(), "public_key": "11" * 32}))
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="does not match"):
        AgentKey.load(path)


def test_load_of_a_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"missing\.json"):
        AgentKey.load(tmp_path / "missing.json")


def test_co_signing_adds_one_entry_per_key() -> None:
    a = make_assertion("Q42", "name", "Douglas Adams", source_hash=b"\x01" * 32)
    k1, k2 = AgentKey.from_seed(b"\x01" * 32), AgentKey.from_seed(b"\x02" * 32)
    k1.sign_assertion(a)
    k2.sign_assertion(a)
    k1.sign_assertion(a)  # the same key again: no second entry
    assert [e.public_key for e in a.signatures] == [k1.public_key, k2.public_key]
    digest = canonical.record_hash(pb.Record(assertion=a))
    assert signing.check_record_signatures(pb.Record(assertion=a), digest) == 2


def test_epoch_and_vote_signatures_verify() -> None:
    key = AgentKey.from_seed(b"\x03" * 32)
    e = key.sign_epoch(make_epoch("Newtonian", "classical"))
    assert signing.check_record_signatures(
        pb.Record(epoch=e), canonical.record_hash(pb.Record(epoch=e))
    )
    v = key.vote(b"\x07" * 32, -0.25)
    assert v.agent_id == key.public_key
    assert signing.check_record_signatures(
        pb.Record(vote=v), canonical.record_hash(pb.Record(vote=v))
    )


def test_signing_an_invalid_record_names_the_field() -> None:
    key = AgentKey.generate()
    with pytest.raises(InvalidRecord) as info:
        key.sign_assertion(make_assertion("Q42", "p", "o", source_hash=b"\x01" * 5))
    assert info.value.field == "assertion.source_hash"
    with pytest.raises(InvalidRecord, match=r"vote\.assertion_hash"):
        key.vote(b"\x01" * 3, 0.5)


def test_save_never_replaces_a_name_that_exists_even_as_a_dangling_symlink(tmp_path: Path) -> None:
    # A check-then-write (exists(), then rename) sees a dangling symlink as "no file" and
    # replaces it; taking the name with link() refuses it, as it refuses any existing entry.
    path = tmp_path / "k.json"
    path.symlink_to(tmp_path / "nowhere")
    with pytest.raises(KeyFileError, match="already exists"):
        AgentKey.generate().save(path)
    assert path.is_symlink() and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]  # no temporary file left


def _save_after(barrier: Any, seed: bytes, path: str) -> str:
    barrier.wait()
    try:
        AgentKey.from_seed(seed).save(path)
    except KeyFileError:
        return "refused"
    return "saved"


def test_racing_keygens_to_one_path_leave_one_key(tmp_path: Path) -> None:
    # Processes, as two `stemedb keygen` runs would race; a barrier lines them up.
    path = tmp_path / "k.json"
    seeds = [bytes([i + 1]) * 32 for i in range(6)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(len(seeds)) as pool:
        barrier = manager.Barrier(len(seeds))
        outcome = pool.starmap(_save_after, [(barrier, s, str(path)) for s in seeds])
    winners = [i for i, what in enumerate(outcome) if what == "saved"]
    assert len(winners) == 1, outcome
    assert AgentKey.load(path).seed == seeds[winners[0]]
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]
