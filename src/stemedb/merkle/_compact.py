"""The compact range of a Merkle tree: O(log n) hashes that are enough to extend it and root it.

A tree of size n is, left to right, the perfect subtrees given by the set bits of n, from the
largest to the smallest (n = 6 = 4 + 2: the subtree of leaves 0..3 and that of leaves 4..5).
Appending a leaf pushes a subtree of one leaf, then merges the two rightmost subtrees while they
have the same size, exactly like a binary counter's carries; every merge is a new perfect node,
and :meth:`CompactRange.append` returns all of them so that a node store can be written
incrementally, in the same batch as the record (see :mod:`stemedb.merkle._store`).

Serialized form (:meth:`CompactRange.to_bytes`), so the writer can persist it and check it at
open instead of rehashing the log::

    "STMDBCR1"        8 bytes, magic and version
    u64(size)         big-endian
    u8(count)         number of subtree hashes, equal to popcount(size)
    count x 32 bytes  the subtree hashes, largest (leftmost) first
    32 bytes          SHA-256 of every byte before it
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from stemedb.merkle._errors import CompactRangeError
from stemedb.merkle._hashing import EMPTY_ROOT, HASH_BYTES, NODE_PREFIX, TREE_SIZE_MAX, node_hash

__all__ = ["COMPACT_RANGE_BYTES_MAX", "CompactRange", "Node"]

_MAGIC = b"STMDBCR1"
_HEAD = struct.Struct(">8sQB")
# 64 subtrees at most (a u64 size has at most 64 set bits), so the encoding is bounded.
COMPACT_RANGE_BYTES_MAX = _HEAD.size + 64 * HASH_BYTES + HASH_BYTES


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree: the 2**level leaves starting at leaf ``index * 2**level``."""

    level: int
    index: int
    hash: bytes


class CompactRange:
    """The perfect subtrees covering leaves [0, size), from the largest to the smallest."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: tuple[bytes, ...] | list[bytes] = ()) -> None:
        if not 0 <= size <= TREE_SIZE_MAX:
            raise ValueError(f"size must be in [0, 2**64 - 1], got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} subtrees, got {len(hashes)}"
            )
        for i, h in enumerate(hashes):
            if len(h) != HASH_BYTES:
                raise ValueError(f"hashes[{i}] must be {HASH_BYTES} bytes, got {len(h)}")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """The number of leaves covered."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The subtree hashes, largest (leftmost) first."""
        return tuple(self._hashes)

    def nodes(self) -> list[Node]:
        """The subtrees as addressed nodes (level, index), largest first."""
        out: list[Node] = []
        start = 0
        for level in range(self._size.bit_length() - 1, -1, -1):
            if self._size >> level & 1:
                out.append(Node(level, start >> level, self._hashes[len(out)]))
                start += 1 << level
        return out

    def append(self, leaf_hash: bytes) -> list[Node]:
        """Append one leaf hash; return the new perfect nodes, the leaf itself first."""
        return [Node(level, index, h) for level, index, h in self.append_all((leaf_hash,))]

    def append_all(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Append leaf hashes in order; return every new perfect node as (level, index, hash),
        in the order made (each leaf, then the nodes it completes, bottom-up).

        The batch form of :meth:`append` (the ingestor appends a whole apply batch at once):
        plain tuples and local variables, as this runs for every record applied.
        """
        hashes = self._hashes
        size = self._size
        created: list[tuple[int, int, bytes]] = []
        add = created.append
        sha256 = hashlib.sha256
        try:
            for leaf_hash in leaf_hashes:
                if len(leaf_hash) != HASH_BYTES:
                    raise ValueError(f"leaf hash must be {HASH_BYTES} bytes, got {len(leaf_hash)}")
                if size == TREE_SIZE_MAX:
                    raise ValueError("the tree is full (2**64 - 1 leaves)")
                add((0, size, leaf_hash))
                h = leaf_hash
                level = 0
                index = size
                # Each trailing 1 bit of the old size is a subtree of the same size as the new
                # one: merge them like a binary counter's carries.
                while index & 1:
                    h = sha256(NODE_PREFIX + hashes.pop() + h).digest()
                    level += 1
                    index >>= 1
                    add((level, index, h))
                hashes.append(h)
                size += 1
        finally:
            self._size = size  # the leaves appended before an error stay appended
        return created

    def root(self) -> bytes:
        """The RFC 6962 root hash of the tree of this size."""
        if not self._hashes:
            return EMPTY_ROOT
        h = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            h = node_hash(left, h)
        return h

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    def __hash__(self) -> int:
        return hash((self._size, tuple(self._hashes)))

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, root={self.root().hex()})"

    def to_bytes(self) -> bytes:
        """The serialized form, with its checksum (see the module docstring)."""
        body = _HEAD.pack(_MAGIC, self._size, len(self._hashes)) + b"".join(self._hashes)
        return body + hashlib.sha256(body).digest()

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "compact range") -> CompactRange:
        """Parse and check a serialized compact range; ``source`` (e.g. a file name) is named in
        the :class:`CompactRangeError` raised when anything is wrong."""
        if len(data) < _HEAD.size:
            raise CompactRangeError(source, len(data), f"truncated: {len(data)} bytes")
        magic, size, count = _HEAD.unpack_from(data, 0)
        if magic != _MAGIC:
            raise CompactRangeError(source, 0, f"bad magic {magic!r}")
        if count != size.bit_count():
            raise CompactRangeError(
                source, 16, f"{count} hashes for a tree of size {size} (needs {size.bit_count()})"
            )
        end = _HEAD.size + count * HASH_BYTES
        if len(data) != end + HASH_BYTES:
            raise CompactRangeError(
                source, min(len(data), end), f"length {len(data)}, expected {end + HASH_BYTES}"
            )
        if hashlib.sha256(data[:end]).digest() != data[end:]:
            raise CompactRangeError(source, end, "checksum mismatch")
        hashes = [data[i : i + HASH_BYTES] for i in range(_HEAD.size, end, HASH_BYTES)]
        return cls(size, hashes)
