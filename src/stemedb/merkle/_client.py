"""Client-side checks: a record's inclusion in a signed checkpoint, and the consistency of two
signed checkpoints, verified with the log's verifier key. The server is not trusted: the leaf
is recomputed from the record, the checkpoint's signature and origin are checked, and the tree
size a proof claims must be the checkpoint's. Every refusal is a NoteError (the checkpoint) or
a ProofError (the proof), both StemeError.
"""

from __future__ import annotations

from collections.abc import Sequence

from stemedb import note
from stemedb.merkle._errors import ProofError
from stemedb.merkle._leaf import record_leaf_hash
from stemedb.merkle._verify import verify_consistency, verify_inclusion
from stemedb.v1 import records_pb2 as pb

__all__ = ["check_consistency", "check_leaf_inclusion", "check_record_inclusion"]


def _verifier(key: note.Verifier | str) -> note.Verifier:
    return key if isinstance(key, note.Verifier) else note.Verifier.parse(key)


def check_leaf_inclusion(
    signed_checkpoint: str | bytes,
    verifier_key: note.Verifier | str,
    leaf_index: int,
    leaf_hash: bytes,
    proof: Sequence[bytes],
    tree_size: int | None = None,
) -> note.Checkpoint:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree the signed checkpoint
    commits to. ``tree_size``, when given, is the size the proof was made for (a proof
    response's ``tree_size``) and must equal the checkpoint's. Returns the checkpoint."""
    checkpoint = note.open_checkpoint(signed_checkpoint, _verifier(verifier_key))
    if tree_size is not None and tree_size != checkpoint.tree_size:
        raise ProofError(
            f"proof is for tree size {tree_size}, the checkpoint is of size {checkpoint.tree_size}"
        )
    verify_inclusion(leaf_hash, leaf_index, checkpoint.tree_size, proof, checkpoint.root_hash)
    return checkpoint


def check_record_inclusion(
    signed_checkpoint: str | bytes,
    verifier_key: note.Verifier | str,
    lsn: int,
    record: pb.Record,
    proof: Sequence[bytes],
    tree_size: int | None = None,
) -> note.Checkpoint:
    """Check that ``record``, exactly as appended at ``lsn`` (signatures included), is in the
    log the signed checkpoint commits to (leaf ``lsn - 1``). Returns the checkpoint."""
    if not isinstance(lsn, int) or isinstance(lsn, bool) or not 1 <= lsn < 2**64:
        raise ProofError(f"lsn must be in [1, 2**64 - 1], got {lsn!r}")
    try:
        leaf = record_leaf_hash(lsn, record)
    except ValueError as exc:
        raise ProofError(f"record cannot be a leaf: {exc}") from None
    return check_leaf_inclusion(signed_checkpoint, verifier_key, lsn - 1, leaf, proof, tree_size)


def check_consistency(
    first_signed: str | bytes,
    second_signed: str | bytes,
    verifier_key: note.Verifier | str,
    proof: Sequence[bytes],
) -> tuple[note.Checkpoint, note.Checkpoint]:
    """Check that the log of the second signed checkpoint extends that of the first (both
    signed by the log's key, same origin). Returns both checkpoints."""
    verifier = _verifier(verifier_key)
    first = note.open_checkpoint(first_signed, verifier)
    second = note.open_checkpoint(second_signed, verifier)
    verify_consistency(first.tree_size, second.tree_size, proof, first.root_hash, second.root_hash)
    return first, second
