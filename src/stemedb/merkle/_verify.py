"""Proof verification, exactly the algorithms of RFC 9162 section 2.1.3.2 (inclusion) and
2.1.4.2 (consistency). The verifier trusts nothing it is given: every refusal is a ProofError
saying why, and nothing else is raised for any input of the documented types.
"""

from __future__ import annotations

from collections.abc import Sequence

from stemedb.merkle._errors import ProofError
from stemedb.merkle._hashing import HASH_BYTES, TREE_SIZE_MAX, node_hash

__all__ = ["PROOF_HASHES_MAX", "verify_consistency", "verify_inclusion"]

# A tree of at most 2**64 - 1 leaves has proofs of at most 64 hashes; longer ones are refused
# before any hashing, which bounds the work an adversary can ask of a verifier.
PROOF_HASHES_MAX = 64


def _check_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_BYTES:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be {HASH_BYTES} bytes, got {size}")
    return bytes(value)


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    if len(proof) > PROOF_HASHES_MAX:
        raise ProofError(f"proof has {len(proof)} hashes, more than {PROOF_HASHES_MAX}")
    return [_check_hash(p, f"proof[{i}]") for i, p in enumerate(proof)]


def _check_size(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= TREE_SIZE_MAX:
        raise ProofError(f"{what} must be an integer in [0, 2**64 - 1], got {value!r}")


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree of ``tree_size`` whose root
    is ``root`` (RFC 9162 section 2.1.3.2); raise ProofError otherwise."""
    _check_size(leaf_index, "leaf_index")
    _check_size(tree_size, "tree_size")
    path = _check_proof(proof)
    r = _check_hash(leaf_hash, "leaf hash")
    expected = _check_hash(root, "root")
    if leaf_index >= tree_size:
        raise ProofError(f"leaf_index {leaf_index} is not in a tree of size {tree_size}")
    fn, sn = leaf_index, tree_size - 1
    for p in path:
        if sn == 0:
            raise ProofError(f"proof is too long for leaf {leaf_index} of a tree of {tree_size}")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof is too short for leaf {leaf_index} of a tree of {tree_size}")
    if r != expected:
        raise ProofError(
            f"inclusion proof of leaf {leaf_index} does not lead to the root of tree {tree_size}"
        )


def verify_consistency(
    first_size: int,
    second_size: int,
    proof: Sequence[bytes],
    first_root: bytes,
    second_root: bytes,
) -> None:
    """Check that the tree of ``first_size`` with ``first_root`` is a prefix of the tree of
    ``second_size`` with ``second_root`` (RFC 9162 section 2.1.4.2); raise ProofError
    otherwise. Equal sizes need an empty proof and equal roots; a first size of 0 is refused,
    as RFC 9162 defines no proof for it."""
    _check_size(first_size, "first_size")
    _check_size(second_size, "second_size")
    path = _check_proof(proof)
    first = _check_hash(first_root, "first root")
    second = _check_hash(second_root, "second root")
    if first_size == 0:
        raise ProofError("first_size must be at least 1: no consistency proof from an empty tree")
    if first_size > second_size:
        raise ProofError(f"first_size {first_size} is larger than second_size {second_size}")
    if first_size == second_size:
        if path:
            raise ProofError("a consistency proof between equal sizes must be empty")
        if first != second:
            raise ProofError(f"two different roots for the same tree size {first_size}")
        return
    if not path:
        raise ProofError("empty consistency proof between different sizes")
    if first_size & (first_size - 1) == 0:
        path = [first, *path]
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof {first_size} -> {second_size} is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof {first_size} -> {second_size} is too short")
    if fr != first:
        raise ProofError(f"consistency proof does not lead to the root of tree {first_size}")
    if sr != second:
        raise ProofError(f"consistency proof does not lead to the root of tree {second_size}")
