"""Our tree against an independent RFC 6962 implementation from PyPI: pymerkle 7 (in its
default "security" mode it hashes leaves as SHA-256(0x00 || entry) and nodes as
SHA-256(0x01 || left || right), RFC 6962's definitions, checked first below).

- Roots: pymerkle's root of every size equals ours (and the CT reference roots).
- Inclusion: pymerkle's inclusion path is RFC 6962's PATH preceded by the leaf itself, so its
  verifier checks our proofs and ours checks its proofs, both ways.
- Consistency: pymerkle's consistency proofs are not RFC 9162's (it splits a tree of prior size
  k differently and always sends the base hash), so they cannot be exchanged; instead its
  verifier checks proofs in its own layout made of hashes from *our* node store, and our
  verifier connects pymerkle's roots with our RFC proofs.
"""

from __future__ import annotations

import hashlib

import pytest
from pymerkle import InmemoryTree, InvalidProof
from pymerkle import verify_consistency as pm_verify_consistency
from pymerkle import verify_inclusion as pm_verify_inclusion
from pymerkle.proof import ConsistencyProof, InclusionProof

from stemedb import merkle

from .test_vectors import DATA

ENTRIES = [f"entry {i}".encode() * (i % 5) for i in range(70)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]


def _ours() -> merkle.MemoryNodeStore:
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for h in LEAVES:
        store.put_nodes(cr.append(h))
    return store


STORE = _ours()
THEIRS = InmemoryTree.init_from_entries(ENTRIES, algorithm="sha256")


def test_pymerkle_hashes_as_rfc_6962() -> None:
    assert (
        THEIRS.hash_buff(b"abc") == hashlib.sha256(b"\x00abc").digest() == merkle.leaf_hash(b"abc")
    )
    left, right = LEAVES[0], LEAVES[1]
    assert THEIRS.hash_pair(left, right) == merkle.node_hash(left, right)
    assert THEIRS.get_leaf(1) == LEAVES[0]
    ref = DATA["rfc6962_reference"]
    ct = InmemoryTree.init_from_entries(
        [bytes.fromhex(e) for e in ref["entries_hex"]], algorithm="sha256"
    )
    assert [ct.get_root(n).hex() for n in range(9)] == ref["roots"]


def test_roots_agree_for_every_size() -> None:
    for n in range(len(ENTRIES) + 1):
        assert THEIRS.get_root(n) == merkle.root_at(STORE, n)


def test_inclusion_proofs_both_ways() -> None:
    for n in range(1, len(ENTRIES) + 1, 3):
        root = merkle.root_at(STORE, n)
        for i in range(n):
            ours = merkle.inclusion_proof(STORE, i, n)
            theirs = THEIRS.prove_inclusion(i + 1, n)  # pymerkle counts leaves from one
            # Our verifier accepts theirs (their path less the leaf it starts with).
            assert theirs.path[0] == LEAVES[i]
            merkle.verify_inclusion(LEAVES[i], i, n, theirs.path[1:], root)
            # Their verifier accepts ours, in their envelope (their rule bits, our hashes).
            proof = InclusionProof("sha256", True, n, i + 1, theirs.rule, [LEAVES[i], *ours])
            pm_verify_inclusion(LEAVES[i], root, proof, index=i + 1, size=n)
            assert ours == theirs.path[1:]
            if ours:
                bad = [LEAVES[i], bytes([ours[0][0] ^ 1]) + ours[0][1:], *ours[1:]]
                with pytest.raises(InvalidProof):
                    pm_verify_inclusion(
                        LEAVES[i], root, InclusionProof("sha256", True, n, i + 1, theirs.rule, bad)
                    )


def _layout_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The leaf ranges of pymerkle's consistency layout, from its own layout function: each of
    its proof's hashes is the root of one such range, an RFC 6962 subtree."""
    from pymerkle.core import _consistency_path_layout

    _, _, ranges = _consistency_path_layout(m, n)
    return list(ranges)


def test_consistency_with_pymerkle() -> None:
    for n in range(1, len(ENTRIES) + 1, 2):
        for m in range(1, n + 1):
            theirs = THEIRS.prove_consistency(m, n)
            first, second = THEIRS.get_root(m), THEIRS.get_root(n)
            # Our RFC proof connects the roots pymerkle computed.
            ours = merkle.consistency_proof(STORE, m, n)
            merkle.verify_consistency(m, n, ours, first, second)
            # Their verifier accepts their layout filled with hashes from our node store.
            hashes = [merkle.subtree_hash(STORE, b, e) for b, e in _layout_ranges(m, n)]
            assert hashes == theirs.path
            proof = ConsistencyProof("sha256", True, n, m, theirs.rule, theirs.subset, hashes)
            pm_verify_consistency(first, second, proof, prior_size=m, later_size=n)
    # A rewritten prefix: pymerkle's own proof of the forged tree fails against our old root.
    forged = InmemoryTree.init_from_entries([b"forged", *ENTRIES[1:40]], algorithm="sha256")
    with pytest.raises(InvalidProof):
        pm_verify_consistency(
            merkle.root_at(STORE, 10), forged.get_root(40), forged.prove_consistency(10, 40)
        )
