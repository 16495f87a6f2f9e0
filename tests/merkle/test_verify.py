"""RFC 9162 verification: honest proofs pass, every tampering is refused, fuzzing raises only
ProofError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from stemedb import merkle
from stemedb.merkle import oracle

LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(33)]
ROOTS = [oracle.mth(LEAVES[:n]) for n in range(34)]


def _flip(h: bytes, bit: int = 0) -> bytes:
    return bytes([h[0] ^ (1 << bit)]) + h[1:]


def test_every_flipped_inclusion_node_is_refused() -> None:
    for n in range(1, 34):
        for i in range(n):
            path = oracle.path(i, LEAVES[:n])
            merkle.verify_inclusion(LEAVES[i], i, n, path, ROOTS[n])
            for j in range(len(path)):
                bad = [*path[:j], _flip(path[j]), *path[j + 1 :]]
                with pytest.raises(merkle.ProofError, match="root"):
                    merkle.verify_inclusion(LEAVES[i], i, n, bad, ROOTS[n])
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(_flip(LEAVES[i]), i, n, path, ROOTS[n])


def test_inclusion_wrong_size_index_or_length_is_refused() -> None:
    path = oracle.path(5, LEAVES[:13])
    merkle.verify_inclusion(LEAVES[5], 5, 13, path, ROOTS[13])
    # A path fixes the tree's shape only: sizes 9..16 share this one, so the size is bound by
    # the signed checkpoint (check_leaf_inclusion compares them), not by the path.
    for size in (6, 7, 8, 17, 32):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[5], 5, size, path, ROOTS[13])
    for index in (4, 6, 12):
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[5], index, 13, path, ROOTS[13])
    with pytest.raises(merkle.ProofError, match="not in a tree"):
        merkle.verify_inclusion(LEAVES[5], 13, 13, path, ROOTS[13])
    with pytest.raises(merkle.ProofError, match="too long"):
        merkle.verify_inclusion(LEAVES[5], 5, 13, [*path, LEAVES[0]], ROOTS[13])
    with pytest.raises(merkle.ProofError, match="too short"):
        merkle.verify_inclusion(LEAVES[5], 5, 13, path[:-1], ROOTS[13])
    with pytest.raises(merkle.ProofError, match=r"proof\[1\]"):
        merkle.verify_inclusion(LEAVES[5], 5, 13, [path[0], b"x" * 31], ROOTS[13])
    with pytest.raises(merkle.ProofError, match="more than 64"):
        merkle.verify_inclusion(LEAVES[5], 5, 13, [LEAVES[0]] * 65, ROOTS[13])
    # A single-leaf tree: the leaf is the root, with an empty proof.
    merkle.verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])


def test_consistency_tampering_is_refused() -> None:
    for n in range(1, 34):
        for m in range(1, n + 1):
            proof = oracle.proof(m, LEAVES[:n])
            merkle.verify_consistency(m, n, proof, ROOTS[m], ROOTS[n])
            for j in range(len(proof)):
                bad = [*proof[:j], _flip(proof[j], 7), *proof[j + 1 :]]
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, bad, ROOTS[m], ROOTS[n])
            if m < n:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, proof, _flip(ROOTS[m]), ROOTS[n])
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, proof, ROOTS[m], _flip(ROOTS[n]))
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(m, n, proof[:-1], ROOTS[m], ROOTS[n])


def test_consistency_between_non_prefix_trees_is_refused() -> None:
    # A second tree that rewrote leaf 2: its own proof from size 5 does not reach the old root.
    rewritten = [*LEAVES[:2], merkle.leaf_hash(b"rewritten"), *LEAVES[3:20]]
    proof = oracle.proof(5, rewritten)
    merkle.verify_consistency(5, 20, proof, oracle.mth(rewritten[:5]), oracle.mth(rewritten))
    with pytest.raises(merkle.ProofError, match="root of tree 5"):
        merkle.verify_consistency(5, 20, proof, ROOTS[5], oracle.mth(rewritten))
    honest = oracle.proof(5, LEAVES[:20])
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(5, 20, honest, ROOTS[5], oracle.mth(rewritten))


def test_consistency_edge_cases() -> None:
    merkle.verify_consistency(7, 7, [], ROOTS[7], ROOTS[7])
    with pytest.raises(merkle.ProofError, match="different roots"):
        merkle.verify_consistency(7, 7, [], ROOTS[7], ROOTS[6])
    with pytest.raises(merkle.ProofError, match="must be empty"):
        merkle.verify_consistency(7, 7, [ROOTS[7]], ROOTS[7], ROOTS[7])
    with pytest.raises(merkle.ProofError, match="at least 1"):
        merkle.verify_consistency(0, 7, [], merkle.EMPTY_ROOT, ROOTS[7])
    with pytest.raises(merkle.ProofError, match="larger"):
        merkle.verify_consistency(8, 7, oracle.proof(7, LEAVES[:8]), ROOTS[8], ROOTS[7])
    with pytest.raises(merkle.ProofError, match="empty consistency proof"):
        merkle.verify_consistency(3, 7, [], ROOTS[3], ROOTS[7])
    # The proof of another pair of sizes does not pass for this one.
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(3, 8, oracle.proof(3, LEAVES[:7]), ROOTS[3], ROOTS[8])


_hashes = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
_sizes = st.one_of(st.integers(0, 40), st.integers(-5, 2**64 + 5))


def test_fuzz_verifiers_raise_only_proof_error(seed: int) -> None:
    @hypothesis_seed(seed)
    @settings(
        max_examples=400, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(
        st.sampled_from(["inclusion", "consistency"]),
        _sizes,
        _sizes,
        st.lists(st.one_of(_hashes, st.sampled_from(LEAVES + ROOTS)), max_size=70),
        st.one_of(_hashes, st.sampled_from(ROOTS)),
        st.one_of(_hashes, st.sampled_from(LEAVES)),
    )
    def run(kind: str, a: int, b: int, proof: list[bytes], r1: bytes, r2: bytes) -> None:
        try:
            if kind == "inclusion":
                merkle.verify_inclusion(r2, a, b, proof, r1)
            else:
                merkle.verify_consistency(a, b, proof, r1, r2)
        except merkle.ProofError:
            return
        # Accepted against a root of our tree: then it is the truth about our tree (no forged
        # leaf passes: the shape of (a, b) and collision resistance fix every hash of the chain).
        if kind == "inclusion" and 0 < b <= 33 and r1 == ROOTS[b]:
            assert r2 == LEAVES[a] and proof == oracle.path(a, LEAVES[:b])

    run()
