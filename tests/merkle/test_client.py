"""Client-side checks against signed checkpoints: what a client accepts, and the adversarial
cases of issue 16 that it must refuse."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from stemedb import jsonrecord, merkle, note
from stemedb.v1 import records_pb2 as pb

from .test_vectors import DATA

LOG = note.Signer.parse(DATA["notes"]["log"]["signer_key"])
VKEY = DATA["notes"]["log"]["verifier_key"]
OTHER = note.Signer(LOG.name, bytes([8]) * 32)
RECORDS = [jsonrecord.record_from_json(c["record"]) for c in DATA["leaves"][:-1]]


def _log(n: int) -> tuple[merkle.MemoryNodeStore, list[str]]:
    """A store for the first n records (LSN i+1 is leaf i) and its signed checkpoint per size."""
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    signed = [""]
    for lsn, record in enumerate(RECORDS[:n], start=1):
        store.put_nodes(cr.append(merkle.record_leaf_hash(lsn, record)))
        signed.append(note.Checkpoint(LOG.name, cr.size, cr.root()).sign(LOG))
    return store, signed


STORE, SIGNED = _log(len(RECORDS))
N = len(RECORDS)


def test_every_record_verifies_against_every_later_checkpoint() -> None:
    for size in (1, 2, 7, N):
        for lsn in range(1, size + 1):
            proof = merkle.inclusion_proof(STORE, lsn - 1, size)
            cp = merkle.check_record_inclusion(
                SIGNED[size], VKEY, lsn, RECORDS[lsn - 1], proof, tree_size=size
            )
            assert cp.tree_size == size


def test_every_pair_of_checkpoints_is_consistent() -> None:
    for m in range(1, N + 1, 3):
        for n in range(m, N + 1, 4):
            proof = merkle.consistency_proof(STORE, m, n)
            first, second = merkle.check_consistency(SIGNED[m], SIGNED[n], VKEY, proof)
            assert (first.tree_size, second.tree_size) == (m, n)


def test_refused_flipped_proof_node() -> None:
    proof = merkle.inclusion_proof(STORE, 4, N)
    for j in range(len(proof)):
        bad = [*proof[:j], bytes([proof[j][0] ^ 1]) + proof[j][1:], *proof[j + 1 :]]
        with pytest.raises(merkle.ProofError):
            merkle.check_record_inclusion(SIGNED[N], VKEY, 5, RECORDS[4], bad)


def test_refused_wrong_tree_size() -> None:
    proof = merkle.inclusion_proof(STORE, 4, 16)
    # The path for size 16 has the shape of every size 9..16: only the checkpoint's size binds.
    with pytest.raises(merkle.ProofError, match="checkpoint is of size"):
        merkle.check_record_inclusion(SIGNED[13], VKEY, 5, RECORDS[4], proof, tree_size=16)
    with pytest.raises(merkle.ProofError):
        merkle.check_record_inclusion(SIGNED[13], VKEY, 5, RECORDS[4], proof, tree_size=13)


def test_refused_index_past_the_size() -> None:
    proof = merkle.inclusion_proof(STORE, 9, 10)
    with pytest.raises(merkle.ProofError, match="not in a tree of size 9"):
        merkle.check_record_inclusion(SIGNED[9], VKEY, 10, RECORDS[9], proof)
    with pytest.raises(merkle.ProofError, match="lsn"):
        merkle.check_record_inclusion(SIGNED[9], VKEY, 0, RECORDS[0], proof)


def test_refused_checkpoint_signed_by_another_key() -> None:
    cp = note.open_checkpoint(SIGNED[N], LOG.verifier)
    forged = cp.sign(OTHER)
    proof = merkle.inclusion_proof(STORE, 0, N)
    with pytest.raises(note.NoteNotVerified):
        merkle.check_record_inclusion(forged, VKEY, 1, RECORDS[0], proof)
    # The forger's own key is not the log's, even under the log's name.
    with pytest.raises(note.NoteNotVerified):
        merkle.check_record_inclusion(SIGNED[N], OTHER.verifier, 1, RECORDS[0], proof)


def test_refused_valid_signature_different_root() -> None:
    # The log's key signs a checkpoint whose root is not the tree's (a rewritten history).
    rewritten = note.Checkpoint(LOG.name, N, b"\x42" * 32).sign(LOG)
    proof = merkle.inclusion_proof(STORE, 0, N)
    with pytest.raises(merkle.ProofError, match="root"):
        merkle.check_record_inclusion(rewritten, VKEY, 1, RECORDS[0], proof)
    with pytest.raises(merkle.ProofError):
        merkle.check_consistency(SIGNED[3], rewritten, VKEY, merkle.consistency_proof(STORE, 3, N))


def test_refused_record_not_as_appended() -> None:
    proof = merkle.inclusion_proof(STORE, 0, N)
    record = pb.Record()
    record.CopyFrom(RECORDS[0])
    del record.assertion.signatures[:]  # the same record hash, without its co-signature
    with pytest.raises(merkle.ProofError):
        merkle.check_record_inclusion(SIGNED[N], VKEY, 1, record, proof)
    with pytest.raises(merkle.ProofError):
        merkle.check_record_inclusion(SIGNED[N], VKEY, 2, RECORDS[0], proof)  # another LSN


def test_refused_consistency_between_non_prefix_trees() -> None:
    # A fork: the same log key signs a tree that replaced record 3.
    fork_records = [*RECORDS[:2], RECORDS[5], *RECORDS[3:N]]
    cr, fork_store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for lsn, record in enumerate(fork_records, start=1):
        fork_store.put_nodes(cr.append(merkle.record_leaf_hash(lsn, record)))
    fork = note.Checkpoint(LOG.name, N, cr.root()).sign(LOG)
    with pytest.raises(merkle.ProofError):
        merkle.check_consistency(SIGNED[4], fork, VKEY, merkle.consistency_proof(fork_store, 4, N))
    with pytest.raises(merkle.ProofError):
        merkle.check_consistency(SIGNED[4], fork, VKEY, merkle.consistency_proof(STORE, 4, N))
    # A shrink is refused too.
    with pytest.raises(merkle.ProofError, match="larger"):
        merkle.check_consistency(SIGNED[9], SIGNED[4], VKEY, merkle.consistency_proof(STORE, 4, 9))


def test_fuzz_client_checks_raise_only_named_errors(seed: int) -> None:
    pool = [*merkle.inclusion_proof(STORE, 4, N), b"\x00" * 32, b"short"]

    @hypothesis_seed(seed)
    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(
        st.integers(0, N + 2),
        st.integers(-1, N + 3),
        st.lists(st.sampled_from(pool), max_size=8),
        st.one_of(st.none(), st.integers(0, 40)),
        st.integers(0, len(SIGNED[N]) - 1),
        st.characters(),
    )
    def run(size: int, lsn: int, proof: list[bytes], claimed: int | None, at: int, ch: str) -> None:
        signed = SIGNED[max(size, 1)] if size <= N else SIGNED[N][:at] + ch + SIGNED[N][at + 1 :]
        record = RECORDS[(lsn - 1) % N]
        try:
            merkle.check_record_inclusion(signed, VKEY, lsn, record, proof, tree_size=claimed)
        except (merkle.ProofError, note.NoteError):
            return
        assert proof == merkle.inclusion_proof(STORE, lsn - 1, max(size, 1) if size <= N else N)

    run()
