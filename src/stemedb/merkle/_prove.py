"""Root hashes, inclusion proofs and consistency proofs computed from stored perfect nodes.

The proofs are those of RFC 6962 section 2.1.1 (PATH) and 2.1.2 (PROOF); the recursion is
unrolled into a walk down the tree. Every hash in a proof is the hash of an RFC 6962 subtree
D[begin:end] whose ``begin`` is a multiple of a power of two >= its size; such a subtree is the
right fold of the perfect nodes of its size's set bits, each read from the store. At most one
hash of a proof lies on the tree's right edge, so a proof costs O(log n) node reads.
"""

from __future__ import annotations

from stemedb.merkle._compact import CompactRange
from stemedb.merkle._errors import MerkleError, NodeMissing, OutOfRange, ProofRequestError
from stemedb.merkle._hashing import EMPTY_ROOT, HASH_BYTES, TREE_SIZE_MAX, node_hash
from stemedb.merkle._store import NodeStore

__all__ = ["compact_range_at", "consistency_proof", "inclusion_proof", "root_at", "subtree_hash"]


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def _addresses(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect nodes whose right fold is MTH(D[begin:end]), largest first."""
    if not 0 <= begin < end:
        raise MerkleError(f"subtree [{begin}, {end}) is empty or negative")
    out = []
    pos = begin
    while pos < end:
        level = (end - pos).bit_length() - 1
        if pos & ((1 << level) - 1):
            raise MerkleError(f"subtree [{begin}, {end}) is not aligned: no RFC 6962 subtree")
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def _subtree_hashes(store: NodeStore, ranges: list[tuple[int, int]]) -> list[bytes]:
    """MTH of each range, from one batched read of every node they need."""
    plans = [_addresses(b, e) for b, e in ranges]
    wanted = [a for plan in plans for a in plan]
    got = store.get_nodes(wanted)
    if len(got) != len(wanted):
        raise MerkleError(f"node store answered {len(got)} nodes for {len(wanted)} asked")
    out: list[bytes] = []
    pos = 0
    for plan in plans:
        hashes: list[bytes] = []
        for (level, index), h in zip(plan, got[pos : pos + len(plan)], strict=True):
            if h is None:
                raise NodeMissing(level, index)
            if len(h) != HASH_BYTES:
                raise MerkleError(f"Merkle node (level {level}, index {index}) is {len(h)} bytes")
            hashes.append(h)
        pos += len(plan)
        folded = hashes[-1]
        for left in reversed(hashes[:-1]):
            folded = node_hash(left, folded)
        out.append(folded)
    return out


def subtree_hash(store: NodeStore, begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) of an RFC 6962 subtree: ``begin`` a multiple of the largest power of
    two <= ``end - begin`` (any subtree the RFC's recursion visits is one)."""
    return _subtree_hashes(store, [(begin, end)])[0]


def _check_size(tree_size: int, field: str) -> None:
    if not 0 <= tree_size <= TREE_SIZE_MAX:
        raise ProofRequestError(field, f"must be in [0, 2**64 - 1], got {tree_size}")


def root_at(store: NodeStore, tree_size: int) -> bytes:
    """The root hash of the tree's first ``tree_size`` leaves."""
    _check_size(tree_size, "tree_size")
    return EMPTY_ROOT if tree_size == 0 else subtree_hash(store, 0, tree_size)


def compact_range_at(store: NodeStore, tree_size: int) -> CompactRange:
    """The compact range of the tree's first ``tree_size`` leaves, read from stored nodes (one
    per set bit of the size): how an ingestor resumes appending after a restart."""
    _check_size(tree_size, "tree_size")
    if tree_size == 0:
        return CompactRange()
    addresses = _addresses(0, tree_size)
    got = store.get_nodes(addresses)
    if len(got) != len(addresses):
        raise MerkleError(f"node store answered {len(got)} nodes for {len(addresses)} asked")
    hashes: list[bytes] = []
    for (level, index), h in zip(addresses, got, strict=True):
        if h is None:
            raise NodeMissing(level, index)
        hashes.append(h)
    return CompactRange(tree_size, hashes)


def inclusion_proof(store: NodeStore, leaf_index: int, tree_size: int) -> list[bytes]:
    """PATH(leaf_index, D[tree_size]): the audit path of one leaf, bottom-up."""
    _check_size(tree_size, "tree_size")
    if not 0 <= leaf_index < tree_size:
        raise OutOfRange(f"leaf_index {leaf_index} is not in a tree of size {tree_size}")
    siblings: list[tuple[int, int]] = []
    begin, end, m = 0, tree_size, leaf_index
    while end - begin > 1:
        k = _split(end - begin)
        if m < k:
            siblings.append((begin + k, end))
            end = begin + k
        else:
            siblings.append((begin, begin + k))
            begin += k
            m -= k
    return _subtree_hashes(store, siblings[::-1])


def consistency_proof(store: NodeStore, first_size: int, second_size: int) -> list[bytes]:
    """PROOF(first_size, D[second_size]); empty when the sizes are equal."""
    _check_size(second_size, "second_size")
    if first_size < 1:
        raise ProofRequestError("first_size", f"must be at least 1, got {first_size}")
    if first_size > second_size:
        raise ProofRequestError(
            "first_size", f"{first_size} is larger than second_size {second_size}"
        )
    if first_size == second_size:
        return []
    tail: list[tuple[int, int]] = []
    begin, end, m, whole = 0, second_size, first_size, True
    while m != end - begin:
        k = _split(end - begin)
        if m <= k:
            tail.append((begin + k, end))
            end = begin + k
        else:
            tail.append((begin, begin + k))
            begin += k
            m -= k
            whole = False
    ranges = tail[::-1] if whole else [(begin, end), *tail[::-1]]
    return _subtree_hashes(store, ranges)
