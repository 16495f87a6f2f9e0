"""The implementation agrees with tests/vectors/, and the vectors are what the script makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gen_vectors
import pytest

from stemedb import canonical, jsonrecord, signing, validation
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb

VECTORS = Path(__file__).parent / "vectors" / "canonical.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))


def test_vectors_file_is_fresh() -> None:
    assert VECTORS.read_text(encoding="utf-8") == gen_vectors.render(), (
        "tests/vectors/canonical.json is stale: run `python tools/gen_vectors.py`"
    )


def test_vectors_cover_the_space() -> None:
    assert len(CASES) >= 20
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"assertion", "vote", "epoch"}
    objects = {
        next(iter(c["record"]["assertion"]["object"])) for c in CASES if c["kind"] == "assertion"
    }
    assert objects == {"text", "number", "flag", "blob", "ref"}
    assert any(len(c["signatures"]) >= 3 for c in CASES)
    assert any(len(c["signatures"]) == 0 for c in CASES)
    by_name = {c["name"]: c for c in CASES}
    # The same assertion co-signed by three keys is the same record: signatures are not hashed.
    same = by_name["assertion-three-cosigners"], by_name["assertion-text-minimal"]
    assert same[0]["hash_hex"] == same[1]["hash_hex"]
    assert same[0]["signatures"] != same[1]["signatures"]
    assert len({c["hash_hex"] for c in CASES}) == len(CASES) - 1


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    record = jsonrecord.record_from_json(case["record"])
    if "refused_field" in case:
        with pytest.raises(InvalidRecord) as refused:
            validation.validate_record(record)
        assert case["refused_field"] in refused.value.field
    else:
        validation.validate_record(record)
    assert canonical.record_bytes(record).hex() == case["canonical_hex"]
    h = canonical.record_hash(record)
    assert h.hex() == case["hash_hex"]
    for sig in case["signatures"]:
        key = signing.SigningKey(bytes.fromhex(sig["seed_hex"]))
        assert signing.public_key_of(key).hex() == sig["public_key_hex"]
        assert signing.sign_hash(key, h).hex() == sig["signature_hex"]
        pub = bytes.fromhex(sig["public_key_hex"])
        assert signing.verify(pub, bytes.fromhex(sig["signature_hex"]), h)
    assert signing.check_record_signatures(record, h) == len(case["signatures"])
    assert jsonrecord.record_to_json(record) == case["record"]


NFC_CASES = [c for c in CASES if "input" in c]


def test_vectors_cover_nfc_normalization() -> None:
    assert {c["kind"] for c in NFC_CASES} == {"assertion", "epoch"}


@pytest.mark.parametrize("case", NFC_CASES, ids=[c["name"] for c in NFC_CASES])
def test_client_normalizes_nfd_input_to_the_vector(case: dict[str, Any]) -> None:
    from stemedb.client import AgentKey
    from stemedb.client import _core as core

    given = jsonrecord.record_from_json(case["input"])
    # the input really is another text: hashed as given, it would be another record
    assert canonical.record_bytes(given).hex() != case["canonical_hex"]
    kind = case["kind"]
    # appending: the request carries NFC text, and the hash checked against the receipt is the
    # vector's
    build = core.append_assertion if kind == "assertion" else core.append_epoch
    rpc = build(getattr(given, kind))
    assert [d.hex() for d in rpc.digests] == [case["hash_hex"]]
    sent = pb.Record(**{kind: getattr(rpc.request, kind)})
    assert canonical.record_bytes(sent).hex() == case["canonical_hex"]
    assert canonical.record_bytes(given).hex() != case["canonical_hex"]  # caller's copy untouched
    # in a batch too
    batch = core.append_batch([given])
    assert [d.hex() for d in batch.digests] == [case["hash_hex"]]
    assert canonical.record_bytes(batch.request.records[0]).hex() == case["canonical_hex"]
    # signing normalizes first, so the signatures are the vector's
    for sig in case["signatures"]:
        signer = AgentKey.from_seed(bytes.fromhex(sig["seed_hex"]))
        signed = signer.sign_assertion if kind == "assertion" else signer.sign_epoch
        signed(getattr(given, kind))
    assert jsonrecord.record_to_json(given) == case["record"]
    # a record signed over NFD text cannot be normalized without breaking its signatures
    tampered = jsonrecord.record_from_json(case["input"])
    getattr(tampered, kind).signatures.add(public_key=b"\x01" * 32, signature=b"\x02" * 64)
    with pytest.raises(InvalidRecord, match="not Unicode NFC"):
        build(getattr(tampered, kind))
