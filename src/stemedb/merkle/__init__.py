"""The verifiable log: an RFC 6962 / RFC 9162 Merkle tree over the WAL (DESIGN section 13).

The record of LSN n is leaf n - 1; its leaf bytes (:func:`leaf_bytes`) commit to the record as
appended, signatures included. Hashing is SHA-256 with the RFC's 0x00 leaf and 0x01 node
prefixes. The writer keeps a :class:`CompactRange` (O(log n) hashes, persisted with a checksum);
the ingestor stores the perfect nodes each append creates (:func:`node_key`) and answers proofs
from them (:func:`inclusion_proof`, :func:`consistency_proof`, :func:`root_at`); clients verify
with :func:`verify_inclusion` / :func:`verify_consistency` (RFC 9162's algorithms), or against
signed checkpoints (:mod:`stemedb.note`) with :func:`check_record_inclusion` and
:func:`check_consistency`. :mod:`stemedb.merkle.oracle` is the plain recursive definition the
tests hold all of this against. The spec is docs/verifiable-log.md.
"""

from __future__ import annotations

from stemedb.merkle._client import check_consistency, check_leaf_inclusion, check_record_inclusion
from stemedb.merkle._compact import COMPACT_RANGE_BYTES_MAX, CompactRange, Node
from stemedb.merkle._errors import (
    CompactRangeError,
    MerkleError,
    NodeMissing,
    OutOfRange,
    ProofError,
    ProofRequestError,
)
from stemedb.merkle._hashing import EMPTY_ROOT, HASH_BYTES, TREE_SIZE_MAX, leaf_hash, node_hash
from stemedb.merkle._leaf import (
    LEAF_TAG,
    leaf_bytes,
    leaf_suffix,
    record_leaf_hash,
    suffix_leaf_hash,
    suffix_leaf_hashes,
)
from stemedb.merkle._prove import (
    compact_range_at,
    consistency_proof,
    inclusion_proof,
    root_at,
    subtree_hash,
)
from stemedb.merkle._store import (
    NODE_KEY_PREFIX,
    MemoryNodeStore,
    NodeStore,
    node_key,
    parse_node_key,
)
from stemedb.merkle._verify import PROOF_HASHES_MAX, verify_consistency, verify_inclusion

__all__ = [
    "COMPACT_RANGE_BYTES_MAX",
    "EMPTY_ROOT",
    "HASH_BYTES",
    "LEAF_TAG",
    "NODE_KEY_PREFIX",
    "PROOF_HASHES_MAX",
    "TREE_SIZE_MAX",
    "CompactRange",
    "CompactRangeError",
    "MemoryNodeStore",
    "MerkleError",
    "Node",
    "NodeMissing",
    "NodeStore",
    "OutOfRange",
    "ProofError",
    "ProofRequestError",
    "check_consistency",
    "check_leaf_inclusion",
    "check_record_inclusion",
    "compact_range_at",
    "consistency_proof",
    "inclusion_proof",
    "leaf_bytes",
    "leaf_hash",
    "leaf_suffix",
    "node_hash",
    "node_key",
    "parse_node_key",
    "record_leaf_hash",
    "root_at",
    "subtree_hash",
    "suffix_leaf_hash",
    "suffix_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]
