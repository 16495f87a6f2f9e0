"""The committed generated code equals a fresh generation, and the API matches DESIGN section 3."""

from __future__ import annotations

from pathlib import Path

import gen_protos

from stemedb.v1 import meter_pb2, records_pb2, store_pb2, writer_pb2


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    fresh = gen_protos.generate(tmp_path)
    committed_dir = gen_protos.ROOT / "src" / "stemedb" / "v1"
    names = sorted(p.name for p in fresh)
    committed = sorted(
        p.name for p in committed_dir.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"}
    )
    assert names == committed, "run `make protos`: the set of generated files differs"
    for f in fresh:
        assert f.read_bytes() == (committed_dir / f.name).read_bytes(), (
            f"src/stemedb/v1/{f.name} is stale: run `make protos` and commit the result"
        )
    assert any(n.endswith(".pyi") for n in names), "type stubs must be generated"


def _fields(message: type) -> list[str]:
    return [f.name for f in message.DESCRIPTOR.fields]  # type: ignore[attr-defined]


def test_contract_field_names() -> None:
    assert _fields(records_pb2.Assertion) == [
        "subject", "predicate", "object", "confidence", "source_hash",
        "visual_hash", "epoch", "signatures",
    ]  # fmt: skip
    assert [f.name for f in records_pb2.Value.DESCRIPTOR.oneofs_by_name["kind"].fields] == [
        "text", "number", "flag", "blob", "ref",
    ]  # fmt: skip
    assert _fields(records_pb2.SignatureEntry) == ["public_key", "signature"]
    assert _fields(records_pb2.Vote) == [
        "assertion_hash", "agent_id", "weight", "signature", "sequence",
    ]  # fmt: skip
    assert _fields(records_pb2.Epoch) == [
        "name", "description", "supersedes", "supersession_type", "signatures",
    ]  # fmt: skip
    assert _fields(records_pb2.Receipt) == ["hash", "lsn", "tree_size"]  # DESIGN 13
    assert _fields(writer_pb2.AppendAssertionRequest) == ["assertion", "job"]
    assert _fields(writer_pb2.AppendVoteRequest) == ["vote", "job"]
    assert _fields(writer_pb2.AppendEpochRequest) == ["epoch", "job"]
    assert _fields(writer_pb2.AppendAssertionResponse) == ["receipt"]
    assert _fields(writer_pb2.AppendBatchRequest) == ["records", "job"]
    assert _fields(writer_pb2.AppendBatchResponse) == ["receipts"]
    assert _fields(store_pb2.GetRequest) == ["key", "min_lsn"]
    assert _fields(store_pb2.GetResponse) == ["found", "value", "record", "applied_lsn"]
    assert _fields(store_pb2.ScanPrefixRequest) == ["prefix", "page_size", "page_token", "min_lsn"]
    assert _fields(store_pb2.ScanPrefixResponse) == ["entries", "next_page_token", "applied_lsn"]
    assert _fields(store_pb2.Entry) == ["key", "value"]
    # DESIGN section 12: JobInfo on every append request, with exactly these fields.
    assert _fields(meter_pb2.JobInfo) == ["tokens", "compute_seconds", "value"]


def test_contract_services() -> None:
    writer = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]
    assert writer.full_name == "stemedb.v1.WriterService"
    assert [m.name for m in writer.methods] == [
        "AppendAssertion", "AppendVote", "AppendEpoch", "AppendBatch",
    ]  # fmt: skip
    store = store_pb2.DESCRIPTOR.services_by_name["StoreService"]
    assert store.full_name == "stemedb.v1.StoreService"
    assert [m.name for m in store.methods][:2] == ["Get", "ScanPrefix"]
