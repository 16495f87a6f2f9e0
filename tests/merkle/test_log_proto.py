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
