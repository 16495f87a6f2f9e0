"""The errors of stemedb.merkle.

Hierarchy::

    StemeError                  (stemedb.errors)
    └── MerkleError             base of every error raised by stemedb.merkle
        ├── ProofError          a proof, a root or a tree size does not verify: refused
        ├── ProofRequestError   a proof asked for with impossible sizes (INVALID_ARGUMENT)
        ├── OutOfRange          a size or an index beyond the tree that is served (OUT_OF_RANGE)
        ├── NodeMissing         a node a proof needs is not in the node store
        └── CompactRangeError   a persisted compact range is unreadable; names the offset

The services map them to gRPC status codes in their one error table.
"""

from __future__ import annotations

from stemedb.errors import StemeError

__all__ = [
    "CompactRangeError",
    "MerkleError",
    "NodeMissing",
    "OutOfRange",
    "ProofError",
    "ProofRequestError",
]


class MerkleError(StemeError):
    """Base class of stemedb.merkle's errors."""


class ProofError(MerkleError):
    """A proof does not verify, or is malformed: the claim it supports is refused."""


class ProofRequestError(MerkleError):
    """Sizes no proof can exist for (``first_size`` 0, ``first_size > second_size``, ...);
    ``field`` names the offending argument."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class OutOfRange(MerkleError):
    """An index or a tree size beyond the tree the caller has."""


class NodeMissing(MerkleError):
    """The node store lacks a node that the tree of the asked size must have."""

    def __init__(self, level: int, index: int) -> None:
        super().__init__(f"Merkle node (level {level}, index {index}) is missing from the store")
        self.level = level
        self.index = index


class CompactRangeError(MerkleError):
    """A serialized compact range that cannot be trusted; ``offset`` is where reading failed."""

    def __init__(self, source: str, offset: int, reason: str) -> None:
        super().__init__(f"{source}: compact range at offset {offset}: {reason}")
        self.source = source
        self.offset = offset
        self.reason = reason
