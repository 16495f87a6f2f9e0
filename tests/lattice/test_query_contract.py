"""query.proto has exactly the names DESIGN section 9.6 fixes (the independent checks use them)."""

from __future__ import annotations

from stemedb.v1 import query_pb2


def _fields(message: type) -> list[str]:
    return [f.name for f in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]


def test_query_service_methods() -> None:
    service = query_pb2.DESCRIPTOR.services_by_name["QueryService"]
    assert service.full_name == "stemedb.v1.QueryService"
    assert [m.name for m in service.methods] == [
        "Resolve", "ResolveSubject", "GetTally", "ListHistory", "ListLenses",
    ]  # fmt: skip


def test_contract_field_names() -> None:
    assert _fields(query_pb2.ResolveRequest)[:5] == [
        "subject", "predicate", "lens", "min_lsn", "as_of_lsn",
    ]  # fmt: skip
    assert _fields(query_pb2.ResolveResponse) == ["resolution", "applied_lsn"]
    assert _fields(query_pb2.Resolution)[:9] == [
        "subject", "predicate", "lens", "status", "winner", "score", "candidates",
        "policy_hash", "as_of_lsn",
    ]  # fmt: skip
    assert query_pb2.Resolution.DESCRIPTOR.fields_by_name["winner"].message_type.full_name == (
        "stemedb.v1.HashedAssertion"
    )
    assert _fields(query_pb2.Candidate)[:7] == [
        "assertion_hash", "score", "support", "dispute", "supporters", "disputers", "retired",
    ]  # fmt: skip
    assert _fields(query_pb2.ResolveSubjectRequest) == [
        "subject", "lens", "page_size", "page_token", "min_lsn",
    ]  # fmt: skip
    assert _fields(query_pb2.GetTallyRequest) == ["assertion_hash", "min_lsn"]
    assert _fields(query_pb2.ListHistoryRequest)[:5] == [
        "subject", "predicate", "lens", "page_size", "page_token",
    ]  # fmt: skip
    assert _fields(query_pb2.HistoryEntry) == ["lsn", "status", "winner_hash", "score"]
    for response in (
        query_pb2.ResolveResponse,
        query_pb2.ResolveSubjectResponse,
        query_pb2.GetTallyResponse,
        query_pb2.ListHistoryResponse,
        query_pb2.ListLensesResponse,
    ):
        assert "applied_lsn" in _fields(response)


def test_status_names() -> None:
    names = [v.name for v in query_pb2.Status.DESCRIPTOR.values]
    assert names == [
        "STATUS_UNSPECIFIED", "STATUS_RESOLVED", "STATUS_CONTESTED", "STATUS_UNCERTAIN",
        "STATUS_EMPTY",
    ]  # fmt: skip
