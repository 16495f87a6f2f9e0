"""LogService matches DESIGN section 13: service, method and field names are a contract."""

from __future__ import annotations

from stemedb.v1 import log_pb2, log_pb2_grpc


def _fields(message: type) -> list[str]:
    return [f.name for f in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]


def test_log_service_contract() -> None:
    service = log_pb2.DESCRIPTOR.services_by_name["LogService"]
    assert service.full_name == "stemedb.v1.LogService"
    assert [m.name for m in service.methods] == [
        "GetCheckpoint", "GetInclusionProof", "GetConsistencyProof", "ListRecordLsns",
    ]  # fmt: skip
    assert _fields(log_pb2.GetCheckpointRequest) == []
    assert _fields(log_pb2.GetCheckpointResponse)[:2] == ["checkpoint", "verifier_key"]
    assert _fields(log_pb2.GetInclusionProofRequest) == ["lsn", "tree_size"]
    assert _fields(log_pb2.GetInclusionProofResponse)[:3] == ["leaf_index", "tree_size", "hashes"]
    assert _fields(log_pb2.GetConsistencyProofRequest) == ["first_size", "second_size"]
    assert _fields(log_pb2.GetConsistencyProofResponse)[:1] == ["hashes"]
    assert _fields(log_pb2.ListRecordLsnsRequest) == ["hash", "page_size", "page_token", "min_lsn"]
    assert _fields(log_pb2.ListRecordLsnsResponse) == ["lsns", "next_page_token", "applied_lsn"]
    assert hasattr(log_pb2_grpc, "LogServiceStub") and hasattr(log_pb2_grpc, "LogServiceServicer")


def test_proof_hashes_round_trip_through_protobuf() -> None:
    resp = log_pb2.GetInclusionProofResponse(leaf_index=4, tree_size=9, hashes=[b"\x01" * 32] * 4)
    back = log_pb2.GetInclusionProofResponse.FromString(resp.SerializeToString())
    assert list(back.hashes) == [b"\x01" * 32] * 4 and back.tree_size == 9


def test_public_surfaces_are_pinned() -> None:
    from stemedb import merkle, note

    assert sorted(merkle.__all__) == sorted([
        "COMPACT_RANGE_BYTES_MAX", "EMPTY_ROOT", "HASH_BYTES", "LEAF_TAG", "NODE_KEY_PREFIX",
        "PROOF_HASHES_MAX", "TREE_SIZE_MAX", "CompactRange", "CompactRangeError",
        "MemoryNodeStore", "MerkleError", "Node", "NodeMissing", "NodeStore", "OutOfRange",
        "ProofError", "ProofRequestError", "check_consistency", "check_leaf_inclusion",
        "check_record_inclusion", "compact_range_at", "consistency_proof", "inclusion_proof",
        "leaf_bytes", "leaf_hash", "leaf_suffix", "node_hash", "node_key", "parse_node_key",
        "record_leaf_hash", "root_at", "subtree_hash", "suffix_leaf_hash", "suffix_leaf_hashes",
        "verify_consistency", "verify_inclusion",
    ])  # fmt: skip
    assert sorted(note.__all__) == sorted([
        "ALG_ED25519", "NOTE_BYTES_MAX", "NOTE_SIGNATURES_MAX", "Checkpoint",
        "MalformedCheckpoint", "MalformedKey", "MalformedNote", "Note", "NoteError",
        "NoteNotVerified", "NoteSignature", "Signer", "Verifier", "generate_signer", "key_id",
        "load_or_create_signer",
        "open_checkpoint", "open_note", "parse_checkpoint", "sign_note",
    ])  # fmt: skip
    for module in (merkle, note):
        for name in module.__all__:
            assert hasattr(module, name), name
