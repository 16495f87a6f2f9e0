"""Where the tree's nodes live, and how they are addressed.

Only **perfect** subtrees are stored: node (level, index) is the hash of the 2**level leaves
starting at leaf ``index * 2**level`` (level 0 holds the leaf hashes). A perfect node never
changes once its last leaf is appended, so nodes are written once, in the same batch as the
record that completes them (:meth:`stemedb.merkle.CompactRange.append` returns them), and a tree
of n leaves holds fewer than 2n of them. Every other hash a proof needs (a subtree on the tree's
right edge, which grows with the tree) is computed from at most log2(n) perfect nodes, so any
proof for any size up to n is served from stored nodes alone, after the WAL segments are gone.

Key of a node in a key-value store (:func:`node_key`)::

    "merkle:"     7 bytes, ASCII
    u8(level)     0..63
    u64(index)    big-endian, so one level's nodes sort by index

The ingestor keeps these keys in its internal column family, out of user prefix scans.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Protocol

from stemedb.merkle._compact import Node

__all__ = ["NODE_KEY_PREFIX", "MemoryNodeStore", "NodeStore", "node_key", "parse_node_key"]

NODE_KEY_PREFIX = b"merkle:"
_ADDR = struct.Struct(">BQ")
_KEY = struct.Struct(f">{len(NODE_KEY_PREFIX)}sBQ")
_LEVEL_MAX = 63


class NodeStore(Protocol):
    """Read access to stored perfect nodes; the ingestor implements it over RocksDB.

    A proof asks for all its nodes in one call (at most about 2 * 64 addresses), so a store can
    answer with one multi-get instead of a read per node.
    """

    def get_nodes(self, addresses: Sequence[tuple[int, int]]) -> Sequence[bytes | None]:
        """The 32-byte hash of each node (level, index), in order; None where not stored."""
        ...


def node_key(level: int, index: int) -> bytes:
    """The key of node (level, index)."""
    if not 0 <= level <= _LEVEL_MAX:
        raise ValueError(f"level must be in [0, {_LEVEL_MAX}], got {level}")
    if not 0 <= index < 2**64:
        raise ValueError(f"index must be a u64, got {index}")
    return _KEY.pack(NODE_KEY_PREFIX, level, index)


def parse_node_key(key: bytes) -> tuple[int, int]:
    """(level, index) of a key made by :func:`node_key`; ValueError for anything else."""
    if len(key) != len(NODE_KEY_PREFIX) + _ADDR.size or not key.startswith(NODE_KEY_PREFIX):
        raise ValueError(f"not a Merkle node key: {key!r}")
    level, index = _ADDR.unpack_from(key, len(NODE_KEY_PREFIX))
    if level > _LEVEL_MAX:
        raise ValueError(f"Merkle node key with level {level}: {key!r}")
    return level, index


class MemoryNodeStore:
    """A node store in a dict, for clients, tools and tests."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}

    def get_nodes(self, addresses: Sequence[tuple[int, int]]) -> list[bytes | None]:
        return [self._nodes.get(a) for a in addresses]

    def get_node(self, level: int, index: int) -> bytes | None:
        return self._nodes.get((level, index))

    def put_nodes(self, nodes: Iterable[Node]) -> None:
        for n in nodes:
            self._nodes[(n.level, n.index)] = n.hash

    def __len__(self) -> int:
        return len(self._nodes)
