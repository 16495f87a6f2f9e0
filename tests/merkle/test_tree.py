"""The fast tree (compact range, stored nodes, proofs) held against the RFC 6962 oracle."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from stemedb import merkle
from stemedb.merkle import oracle


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [merkle.leaf_hash(f"{salt}:{i}".encode()) for i in range(n)]


def _build(leaves: list[bytes]) -> tuple[merkle.CompactRange, merkle.MemoryNodeStore]:
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for h in leaves:
        store.put_nodes(cr.append(h))
    return cr, store


def test_every_proof_up_to_size_40_equals_the_oracle() -> None:
    leaves = _leaves(40)
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for n in range(1, 41):
        store.put_nodes(cr.append(leaves[n - 1]))
        assert cr.root() == oracle.mth(leaves[:n]) == merkle.root_at(store, n)
        for i in range(n):
            assert merkle.inclusion_proof(store, i, n) == oracle.path(i, leaves[:n])
        for m in range(1, n + 1):
            assert merkle.consistency_proof(store, m, n) == oracle.proof(m, leaves[:n])
    # Proofs for an older size keep coming from the same store as it grows.
    assert merkle.inclusion_proof(store, 3, 7) == oracle.path(3, leaves[:7])
    # Fewer than 2n nodes are stored; each append writes 1 + (trailing ones of the old size).
    assert len(store) == 2 * 40 - (40).bit_count()


def test_append_returns_exactly_the_new_perfect_nodes() -> None:
    cr = merkle.CompactRange()
    leaves = _leaves(16)
    for i, h in enumerate(leaves):
        nodes = cr.append(h)
        assert nodes[0] == merkle.Node(0, i, h)
        trailing_ones = (~i & (i + 1)).bit_length() - 1
        assert [(n.level, n.index) for n in nodes] == [
            (lv, i >> lv) for lv in range(trailing_ones + 1)
        ]
        for n in nodes:
            span = leaves[n.index << n.level : (n.index + 1) << n.level]
            assert n.hash == oracle.mth(span)
    assert [(n.level, n.index) for n in cr.nodes()] == [(4, 0)]


def test_compact_range_rebuilt_from_stored_nodes() -> None:
    leaves = _leaves(45)
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for n, h in enumerate(leaves, start=1):
        store.put_nodes(cr.append(h))
        assert merkle.compact_range_at(store, n) == cr
    # Any older size too, and the rebuilt range appends exactly like the live one.
    old = merkle.compact_range_at(store, 13)
    assert old.root() == oracle.mth(leaves[:13])
    fresh = merkle.CompactRange()
    for h in leaves[:13]:
        fresh.append(h)
    assert old.append(leaves[13]) == fresh.append(leaves[13])
    assert old == merkle.compact_range_at(store, 14)
    assert merkle.compact_range_at(store, 0) == merkle.CompactRange()
    with pytest.raises(merkle.NodeMissing):
        merkle.compact_range_at(store, 46)


def test_compact_range_nodes_cover_the_size() -> None:
    leaves = _leaves(13)
    cr, store = _build(leaves)
    assert [(n.level, n.index) for n in cr.nodes()] == [(3, 0), (2, 2), (0, 12)]
    for n in cr.nodes():
        assert store.get_node(n.level, n.index) == n.hash


@pytest.mark.parametrize("size", [0, 1, 2, 3, 8, 13, 64, 1000])
def test_compact_range_round_trip(size: int) -> None:
    cr, _ = _build(_leaves(size))
    data = cr.to_bytes()
    assert len(data) <= merkle.COMPACT_RANGE_BYTES_MAX
    back = merkle.CompactRange.from_bytes(data)
    assert back == cr and back.root() == cr.root() and back.size == size
    # A restored range goes on exactly like the original.
    h = merkle.leaf_hash(b"next")
    assert back.append(h) == cr.append(h)
    assert back.root() == cr.root()


def test_compact_range_every_corruption_is_refused_with_its_offset() -> None:
    cr, _ = _build(_leaves(11))
    data = cr.to_bytes()
    for pos in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= bit
            with pytest.raises(merkle.CompactRangeError) as err:
                merkle.CompactRange.from_bytes(bytes(bad), source="/wal/TREE")
            assert "/wal/TREE" in str(err.value) and "offset" in str(err.value)
    for cut in range(len(data)):
        with pytest.raises(merkle.CompactRangeError):
            merkle.CompactRange.from_bytes(data[:cut])
    with pytest.raises(merkle.CompactRangeError, match="length"):
        merkle.CompactRange.from_bytes(data + b"\x00")


def test_compact_range_refuses_inconsistent_construction() -> None:
    with pytest.raises(ValueError, match="subtrees"):
        merkle.CompactRange(3, [b"\x00" * 32])
    with pytest.raises(ValueError, match="32 bytes"):
        merkle.CompactRange(1, [b"\x00" * 31])
    with pytest.raises(ValueError, match="size"):
        merkle.CompactRange(-1)
    with pytest.raises(ValueError, match="leaf hash"):
        merkle.CompactRange().append(b"short")
    # A well-formed encoding whose checksum was recomputed over a wrong count is still refused.
    body = b"STMDBCR1" + (3).to_bytes(8, "big") + b"\x01" + b"\x00" * 32
    forged = body + hashlib.sha256(body).digest()
    with pytest.raises(merkle.CompactRangeError, match="3"):
        merkle.CompactRange.from_bytes(forged)


def test_proof_requests_out_of_range_or_impossible() -> None:
    _, store = _build(_leaves(5))
    with pytest.raises(merkle.OutOfRange):
        merkle.inclusion_proof(store, 5, 5)
    with pytest.raises(merkle.OutOfRange):
        merkle.inclusion_proof(store, -1, 5)
    with pytest.raises(merkle.ProofRequestError) as err:
        merkle.consistency_proof(store, 0, 5)
    assert err.value.field == "first_size"
    with pytest.raises(merkle.ProofRequestError, match="larger"):
        merkle.consistency_proof(store, 4, 3)
    assert merkle.consistency_proof(store, 5, 5) == []
    # Beyond what is stored: the missing node is named.
    with pytest.raises(merkle.NodeMissing) as missing:
        merkle.inclusion_proof(store, 0, 6)
    assert (missing.value.level, missing.value.index) == (1, 2)  # leaves 4..5
    with pytest.raises(merkle.NodeMissing):
        merkle.root_at(store, 8)
    assert merkle.root_at(store, 0) == merkle.EMPTY_ROOT


def test_node_keys() -> None:
    assert merkle.node_key(0, 0) == b"merkle:" + b"\x00" + b"\x00" * 8
    assert merkle.node_key(2, 258) == b"merkle:\x02" + (258).to_bytes(8, "big")
    keys = [merkle.node_key(lv, ix) for lv in range(3) for ix in (0, 1, 255, 256)]
    assert keys == sorted(keys), "one level's keys sort by index"
    for bad in ((64, 0), (-1, 0), (0, -1), (0, 2**64)):
        with pytest.raises(ValueError):
            merkle.node_key(*bad)
    for key in (b"merkle:", b"other:\x00" + b"\x00" * 8, b"merkle:\x40" + b"\x00" * 8):
        with pytest.raises(ValueError, match="node key"):
            merkle.parse_node_key(key)


def test_random_trees_against_the_oracle(seed: int) -> None:
    @hypothesis_seed(seed)
    @settings(max_examples=60, deadline=None, database=None)
    @given(st.integers(1, 300), st.data())
    def run(n: int, data: st.DataObject) -> None:
        leaves = _leaves(n, salt=n)
        cr, store = _build(leaves)
        assert cr.root() == oracle.mth(leaves)
        i = data.draw(st.integers(0, n - 1))
        size = data.draw(st.integers(i + 1, n))
        path = merkle.inclusion_proof(store, i, size)
        assert path == oracle.path(i, leaves[:size])
        assert len(path) <= (size - 1).bit_length()
        merkle.verify_inclusion(leaves[i], i, size, path, oracle.mth(leaves[:size]))
        m = data.draw(st.integers(1, n))
        second = data.draw(st.integers(m, n))
        proof = merkle.consistency_proof(store, m, second)
        assert proof == oracle.proof(m, leaves[:second])
        merkle.verify_consistency(
            m, second, proof, oracle.mth(leaves[:m]), oracle.mth(leaves[:second])
        )

    run()


class _CountingStore:
    """A node store that counts the batched reads asked of it (a RocksDB multi-get each)."""

    def __init__(self, inner: merkle.MemoryNodeStore, drop_last: bool = False) -> None:
        self.inner, self.calls, self.asked, self.drop_last = inner, 0, 0, drop_last

    def get_nodes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes | None]:
        self.calls += 1
        self.asked += len(addresses)
        got = self.inner.get_nodes(addresses)
        return got[:-1] if self.drop_last else got


def test_a_proof_is_one_batched_read_of_o_log_n_nodes() -> None:
    n = 1000
    _, inner = _build(_leaves(n))
    for i, size in ((0, 1000), (511, 1000), (999, 1000), (600, 777)):
        store = _CountingStore(inner)
        proof = merkle.inclusion_proof(store, i, size)
        assert store.calls == 1
        # One node per proof hash, plus at most log2(n) for the one hash on the right edge.
        assert store.asked <= len(proof) + (size - 1).bit_length()
        store = _CountingStore(inner)
        merkle.consistency_proof(store, i + 1, size)
        assert store.calls == (1 if i + 1 < size else 0)  # equal sizes: empty, nothing read
        assert store.asked <= 3 * (size - 1).bit_length()
    with pytest.raises(merkle.MerkleError, match="answered"):
        merkle.inclusion_proof(_CountingStore(inner, drop_last=True), 3, 1000)


def test_append_all_equals_one_append_per_leaf_in_any_split(seed: int) -> None:
    """The batch append (the ingestor's, once per apply batch) makes the very nodes, in the
    same order, as appending leaf by leaf, however the leaves are split into batches."""
    rng = random.Random(seed)
    print(f"seed {seed}")
    leaves = _leaves(700, salt=seed)
    one_by_one, expected = merkle.CompactRange(), []
    for h in leaves:
        expected += [(n.level, n.index, n.hash) for n in one_by_one.append(h)]
    batched, got, pos = merkle.CompactRange(), [], 0
    while pos < len(leaves):
        step = rng.choice((1, 2, 3, 7, 64, 255))
        got += batched.append_all(leaves[pos : pos + step])
        pos += step
        assert batched.size == min(pos, len(leaves))
        assert batched.root() == oracle.mth(leaves[: batched.size])
    assert got == expected
    assert batched == one_by_one
    # A bad leaf in the middle of a batch: the leaves before it stay appended, nothing after.
    tree = merkle.CompactRange()
    with pytest.raises(ValueError, match="leaf hash must be 32 bytes"):
        tree.append_all([leaves[0], leaves[1], b"short", leaves[2]])
    assert tree.size == 2 and tree.root() == oracle.mth(leaves[:2])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 100, 1000, 1024, 1025, 65_537])
def test_proof_sizes_are_at_most_ceil_log2_n_hashes(n: int) -> None:
    """An inclusion proof in a tree of n leaves has at most ceil(log2 n) hashes, and leaf 0's
    has exactly that many (issue 16's proof size)."""
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for level, index, h in cr.append_all(_leaves(n)):
        store.put_nodes([merkle.Node(level, index, h)])
    ceil_log2 = math.ceil(math.log2(n)) if n > 1 else 0
    assert len(merkle.inclusion_proof(store, 0, n)) == ceil_log2
    for i in {0, n // 3, n // 2, n - 2, n - 1} - {-1}:
        assert len(merkle.inclusion_proof(store, i, n)) <= ceil_log2
    if n > 1:
        assert len(merkle.consistency_proof(store, 1, n)) == ceil_log2
