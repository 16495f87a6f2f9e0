"""The implementation agrees with tests/vectors/merkle.json, the file is what the script makes,
and the oracle and the fast code agree with the published RFC 6962 reference data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gen_merkle_vectors
import gen_vectors
import pytest

from stemedb import canonical, jsonrecord, merkle, note, validation
from stemedb.merkle import oracle

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "merkle.json"
DATA: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))


def _b(hexes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _store(leaf_hashes: list[bytes]) -> tuple[merkle.CompactRange, merkle.MemoryNodeStore]:
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for h in leaf_hashes:
        store.put_nodes(cr.append(h))
    return cr, store


def test_vectors_file_is_fresh() -> None:
    assert VECTORS.read_text(encoding="utf-8") == gen_merkle_vectors.render(), (
        "tests/vectors/merkle.json is stale: run `python tools/gen_merkle_vectors.py`"
    )


def test_leaf_tag() -> None:
    assert merkle.LEAF_TAG == b"stemedb.v1.Leaf\x00" and len(merkle.LEAF_TAG) == 16
    assert DATA["leaf_tag_hex"] == merkle.LEAF_TAG.hex()


@pytest.mark.parametrize("case", DATA["leaves"], ids=[c["name"] for c in DATA["leaves"]])
def test_leaf(case: dict[str, Any]) -> None:
    record = jsonrecord.record_from_json(case["record"])
    if case["name"] not in gen_vectors.REFUSED_BY_WRITERS:  # -0.0: encoded, but refused
        validation.validate_record(record)
    lsn = int(case["lsn"])
    leaf = merkle.leaf_bytes(lsn, record)
    assert leaf.hex() == case["leaf_hex"]
    assert merkle.record_leaf_hash(lsn, record).hex() == case["leaf_hash_hex"]


def test_leaf_layout_byte_by_byte() -> None:
    """The leaf of a vector case, re-assembled by hand from docs/verifiable-log.md."""
    case = next(c for c in DATA["leaves"] if c["name"] == "assertion-three-cosigners")
    record = jsonrecord.record_from_json(case["record"])
    sigs = record.assertion.signatures
    manual = (
        b"stemedb.v1.Leaf\x00"
        + int(case["lsn"]).to_bytes(8, "big")
        + canonical.record_bytes(record)
        + len(sigs).to_bytes(4, "big")
        + b"".join(s.public_key + len(s.signature).to_bytes(4, "big") + s.signature for s in sigs)
    )
    assert manual.hex() == case["leaf_hex"]
    vote = next(c for c in DATA["leaves"] if c["name"].startswith("vote-"))
    v = jsonrecord.record_from_json(vote["record"]).vote
    tail = (1).to_bytes(4, "big") + v.agent_id + (64).to_bytes(4, "big") + v.signature
    assert vote["leaf_hex"].endswith(tail.hex())


def test_leaf_differs_by_lsn_and_signatures() -> None:
    by_name = {c["name"]: c for c in DATA["leaves"]}
    one, three = by_name["assertion-text-minimal"], by_name["assertion-three-cosigners"]
    # Same record hash, other co-signers: another leaf. Same record at another LSN: another leaf.
    assert one["leaf_hash_hex"] != three["leaf_hash_hex"]
    assert one["leaf_hash_hex"] != by_name["assertion-text-minimal-lsn-max"]["leaf_hash_hex"]
    assert len({c["leaf_hash_hex"] for c in DATA["leaves"]}) == len(DATA["leaves"])


def test_leaf_refuses_bad_lsn_and_key() -> None:
    record = jsonrecord.record_from_json(DATA["leaves"][0]["record"])
    for lsn in (0, -1, 2**64):
        with pytest.raises(ValueError, match="lsn"):
            merkle.leaf_bytes(lsn, record)
    record.assertion.signatures[0].public_key = b"\x01" * 31
    with pytest.raises(ValueError, match=r"signatures\[0\]\.public_key"):
        merkle.leaf_bytes(1, record)


def test_tree_vectors_against_fast_code() -> None:
    tree = DATA["tree"]
    leaves = _b(tree["leaf_hashes"])
    cr, store = _store([])
    assert cr.root().hex() == tree["roots"][0]
    for n, h in enumerate(leaves, start=1):
        store.put_nodes(cr.append(h))
        assert cr.root().hex() == tree["roots"][n]
        assert merkle.root_at(store, n).hex() == tree["roots"][n]
    for p in tree["inclusion"]:
        i, n = p["leaf_index"], p["tree_size"]
        assert _b(p["hashes"]) == merkle.inclusion_proof(store, i, n)
        root = bytes.fromhex(tree["roots"][n])
        merkle.verify_inclusion(leaves[i], i, n, _b(p["hashes"]), root)
    for p in tree["consistency"]:
        m, n = p["first_size"], p["second_size"]
        assert _b(p["hashes"]) == merkle.consistency_proof(store, m, n)
        merkle.verify_consistency(
            m, n, _b(p["hashes"]), bytes.fromhex(tree["roots"][m]), bytes.fromhex(tree["roots"][n])
        )
    assert len(tree["inclusion"]) == len(tree["consistency"]) == 20 * 21 // 2


def test_rfc6962_reference_data() -> None:
    ref = DATA["rfc6962_reference"]
    leaves = [merkle.leaf_hash(e) for e in _b(ref["entries_hex"])]
    assert merkle.EMPTY_ROOT.hex() == ref["roots"][0]
    _, store = _store(leaves)
    for n, root in enumerate(ref["roots"]):
        assert oracle.mth(leaves[:n]).hex() == root
        assert merkle.root_at(store, n).hex() == root
    for p in ref["inclusion"]:
        i, n = p["leaf_index"], p["tree_size"]
        assert _b(p["hashes"]) == merkle.inclusion_proof(store, i, n) == oracle.path(i, leaves[:n])
        merkle.verify_inclusion(leaves[i], i, n, _b(p["hashes"]), bytes.fromhex(ref["roots"][n]))
    for p in ref["consistency"]:
        m, n = p["first_size"], p["second_size"]
        assert (
            _b(p["hashes"]) == merkle.consistency_proof(store, m, n) == oracle.proof(m, leaves[:n])
        )
        first, second = bytes.fromhex(ref["roots"][m]), bytes.fromhex(ref["roots"][n])
        merkle.verify_consistency(m, n, _b(p["hashes"]), first, second)


def test_compact_range_vectors() -> None:
    leaves = _b(DATA["tree"]["leaf_hashes"])
    for case in DATA["compact_ranges"]:
        cr = merkle.CompactRange.from_bytes(bytes.fromhex(case["bytes_hex"]))
        assert cr.size == case["size"]
        assert list(cr.hashes) == _b(case["hashes"])
        assert cr.root().hex() == case["root"]
        fresh, _ = _store(leaves[: case["size"]])
        assert fresh == cr


def test_node_key_vectors() -> None:
    for case in DATA["node_keys"]:
        key = merkle.node_key(case["level"], case["index"])
        assert key.hex() == case["key_hex"]
        assert merkle.parse_node_key(key) == (case["level"], case["index"])


def test_go_sumdb_note_known_answers() -> None:
    go = DATA["notes"]["go_sumdb_note"]
    signer = note.Signer.parse(go["signer_key"])
    assert signer.encode() == go["signer_key"]
    assert signer.verifier.encode() == go["verifier_key"]
    assert note.Verifier.parse(go["verifier_key"]) == signer.verifier
    assert note.sign_note(go["text"], [signer]) == go["text"] + "\n" + go["signature_line"]
    other = note.Verifier.parse(go["other_verifier_key"])
    both = go["text"] + "\n" + go["signature_line"] + go["other_signature_line"]
    opened = note.open_note(both, [signer.verifier, other])
    assert opened.text == go["text"]
    assert [(s.name, s.id) for s in opened.signatures] == [
        ("PeterNeumann", 0xC74F20A3), ("EnochRoot", 0xAF0CFE78),
    ]  # fmt: skip
    only_peter = note.open_note(both, [signer.verifier])
    assert [s.name for s in only_peter.unverified] == ["EnochRoot"]


def test_log_checkpoint_vectors() -> None:
    log = DATA["notes"]["log"]
    signer = note.Signer.parse(log["signer_key"])
    assert signer.seed.hex() == log["seed_hex"]
    assert signer.verifier.encode() == log["verifier_key"]
    verifier = note.Verifier.parse(log["verifier_key"])
    for cp in log["checkpoints"]:
        opened = note.open_checkpoint(cp["signed"], verifier)
        assert opened.tree_size == cp["tree_size"]
        assert opened.root_hash.hex() == DATA["tree"]["roots"][cp["tree_size"]]
        assert opened.body() == cp["body"]
        assert opened.sign(signer) == cp["signed"]
