"""The verifiable log over HTTP (DESIGN 10 via 13): /v1/checkpoint, /v1/proofs/inclusion,
/v1/proofs/consistency and /v1/records/{hash}/lsns against a real writer, ingestor and gateway.

The answers are not trusted: each proof is checked with the Python verifier (stemedb.merkle)
against the signed checkpoint and its verifier key, and a tampered answer must be refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from stemedb import note
from stemedb.client import AgentKey
from stemedb.errors import StemeError
from stemedb.jsonrecord import record_from_json
from stemedb.merkle import check_consistency, check_record_inclusion, leaf_bytes
from tests.gateway.gwstack import GatewayStack, running_gateway, signed_assertion_json
from tests.support import wait_until

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayStack]:
    with running_gateway(tmp_path_factory.mktemp("proofs")) as g:
        yield g


def get(gw: GatewayStack, path: str, **params: Any) -> httpx.Response:
    return httpx.get(gw.url + path, params=params, timeout=30)


def post(gw: GatewayStack, body: Any) -> dict[str, Any]:
    r = httpx.post(gw.url + "/v1/assertions", json=body, timeout=30)
    assert r.status_code == 201, r.text
    receipt: dict[str, Any] = r.json()["receipt"]
    return receipt


def checkpoint_covering(gw: GatewayStack, lsn: int) -> dict[str, Any]:
    """The served checkpoint, once its tree includes ``lsn``."""
    seen: dict[str, Any] = {}

    def covers() -> bool:
        r = get(gw, "/v1/checkpoint")
        if r.status_code != 200:
            return False
        body = r.json()
        size = int(body["checkpoint"].split("\n")[1])
        seen.update(body, size=size)
        return size >= lsn

    wait_until(covers, 30, f"a checkpoint of a tree with LSN {lsn}")
    return seen


def problem(resp: httpx.Response, field: str, grpc_status: str | None = None) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = resp.json()
    assert body["field"] == field, body
    if grpc_status is not None:
        assert body["grpc_status"] == grpc_status, body
    return body


def flipped(hex_hash: str) -> str:
    raw = bytearray(bytes.fromhex(hex_hash))
    raw[0] ^= 0x01
    return raw.hex()


def test_inclusion_proofs_verify_and_tampering_is_refused(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    body = signed_assertion_json(key, "P1", "name", "first")
    receipts = [post(gw, body)] + [
        post(gw, signed_assertion_json(key, "P1", f"p{i}", str(i))) for i in range(4)
    ]
    again = post(gw, body)  # the same record appended again: a new LSN, the same hash
    assert again["hash"] == receipts[0]["hash"] and again["lsn"] > receipts[0]["lsn"]
    cp = checkpoint_covering(gw, again["lsn"])
    opened = note.open_checkpoint(cp["checkpoint"], note.Verifier.parse(cp["verifier_key"]))
    assert opened.tree_size == cp["size"] and cp["applied_lsn"] >= opened.tree_size

    lsns = get(gw, f"/v1/records/{receipts[0]['hash']}/lsns", min_lsn=again["lsn"]).json()
    assert lsns["lsns"] == [receipts[0]["lsn"], again["lsn"]]
    assert lsns["next_page_token"] == "" and lsns["applied_lsn"] >= again["lsn"]
    page = get(gw, f"/v1/records/{receipts[0]['hash']}/lsns", page_size=1).json()
    assert page["lsns"] == [receipts[0]["lsn"]] and page["next_page_token"]
    rest = get(
        gw, f"/v1/records/{receipts[0]['hash']}/lsns", page_size=1,
        page_token=page["next_page_token"],
    ).json()  # fmt: skip
    assert rest["lsns"] == [again["lsn"]]
    unknown = get(gw, f"/v1/records/{'ab' * 32}/lsns").json()
    assert unknown["lsns"] == []

    for receipt in [*receipts, again]:
        lsn = receipt["lsn"]
        r = get(gw, "/v1/proofs/inclusion", lsn=lsn)
        assert r.status_code == 200, r.text
        proof = r.json()
        assert proof["leaf_index"] == lsn - 1 and proof["tree_size"] == opened.tree_size
        # With tree_size 0 (absent) the served checkpoint comes with the proof.
        assert proof["checkpoint"] == cp["checkpoint"]
        record = record_from_json(proof["record"])
        assert bytes.fromhex(proof["leaf"]) == leaf_bytes(lsn, record)
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        assert len(hashes) <= max(1, (opened.tree_size - 1).bit_length())
        checked = check_record_inclusion(
            cp["checkpoint"], cp["verifier_key"], lsn, record, hashes, proof["tree_size"]
        )
        assert checked.root_hash == opened.root_hash

        # A flipped hash of the path, the record at another LSN, or another size: refused.
        for i in range(len(hashes)):
            bad = [*hashes]
            bad[i] = bytes.fromhex(flipped(proof["hashes"][i]))
            with pytest.raises(StemeError):
                check_record_inclusion(cp["checkpoint"], cp["verifier_key"], lsn, record, bad)
        with pytest.raises(StemeError):
            check_record_inclusion(cp["checkpoint"], cp["verifier_key"], lsn + 1, record, hashes)
        with pytest.raises(StemeError):
            check_record_inclusion(
                cp["checkpoint"], cp["verifier_key"], lsn, record, hashes, proof["tree_size"] + 1
            )
    # A record that was changed (another object) is not the leaf the path proves.
    proof = get(gw, "/v1/proofs/inclusion", lsn=receipts[1]["lsn"]).json()
    tampered = record_from_json(proof["record"])
    tampered.assertion.object.text = "rewritten"
    with pytest.raises(StemeError):
        check_record_inclusion(
            cp["checkpoint"], cp["verifier_key"], receipts[1]["lsn"], tampered,
            [bytes.fromhex(h) for h in proof["hashes"]],
        )  # fmt: skip

    # An older tree size: a proof for it, without the checkpoint (which is of another size).
    older = get(gw, "/v1/proofs/inclusion", lsn=receipts[0]["lsn"], tree_size=receipts[2]["lsn"])
    assert older.status_code == 200, older.text
    assert older.json()["tree_size"] == receipts[2]["lsn"] and older.json()["checkpoint"] == ""


def test_consistency_proofs_verify_and_tampering_is_refused(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    first = checkpoint_covering(gw, post(gw, signed_assertion_json(key, "P2", "a", "1"))["lsn"])
    lsn = 0
    for i in range(5):
        lsn = post(gw, signed_assertion_json(key, "P2", f"b{i}", str(i)))["lsn"]
    second = checkpoint_covering(gw, lsn)
    assert second["size"] > first["size"]
    r = get(gw, "/v1/proofs/consistency", first_size=first["size"], second_size=second["size"])
    assert r.status_code == 200, r.text
    hashes = [bytes.fromhex(h) for h in r.json()["hashes"]]
    assert hashes and r.json()["applied_lsn"] >= second["size"]
    vk = second["verifier_key"]
    check_consistency(first["checkpoint"], second["checkpoint"], vk, hashes)
    for i in range(len(hashes)):
        bad = [*hashes]
        bad[i] = bytes([hashes[i][0] ^ 1]) + hashes[i][1:]
        with pytest.raises(StemeError):
            check_consistency(first["checkpoint"], second["checkpoint"], vk, bad)
    with pytest.raises(StemeError):  # a proof of two other sizes does not connect these
        other = get(gw, "/v1/proofs/consistency", first_size=1, second_size=second["size"])
        check_consistency(
            first["checkpoint"], second["checkpoint"], vk,
            [bytes.fromhex(h) for h in other.json()["hashes"]],
        )  # fmt: skip
    same = get(gw, "/v1/proofs/consistency", first_size=3, second_size=3)
    assert same.status_code == 200 and same.json()["hashes"] == []


def test_proof_routes_refuse_bad_sizes_naming_the_field(gw: GatewayStack) -> None:
    key = AgentKey.generate()
    cp = checkpoint_covering(gw, post(gw, signed_assertion_json(key, "P3", "a", "1"))["lsn"])
    size = cp["size"]
    problem(get(gw, "/v1/proofs/inclusion"), "lsn")
    problem(get(gw, "/v1/proofs/inclusion", lsn=0), "lsn")
    problem(get(gw, "/v1/proofs/inclusion", lsn="x"), "lsn")
    problem(get(gw, "/v1/proofs/inclusion", lsn="²"), "lsn")  # a digit, but not an ASCII one
    # Beyond the served checkpoint: OUT_OF_RANGE, which maps to 400 (Google's guide).
    problem(get(gw, "/v1/proofs/inclusion", lsn=1, tree_size=size + 10**6), "tree_size",
            "OUT_OF_RANGE")  # fmt: skip
    problem(get(gw, "/v1/proofs/inclusion", lsn=size + 10**6), "lsn", "OUT_OF_RANGE")
    problem(get(gw, "/v1/proofs/inclusion", lsn=3, tree_size=2), "lsn", "OUT_OF_RANGE")
    problem(get(gw, "/v1/proofs/consistency", second_size=2), "first_size")
    problem(get(gw, "/v1/proofs/consistency", first_size=1), "second_size")
    problem(get(gw, "/v1/proofs/consistency", first_size=0, second_size=2), "first_size")
    problem(get(gw, "/v1/proofs/consistency", first_size=3, second_size=2), "first_size")
    problem(get(gw, "/v1/proofs/consistency", first_size=1, second_size=size + 10**6),
            "second_size", "OUT_OF_RANGE")  # fmt: skip
    problem(get(gw, "/v1/records/abc/lsns"), "hash")
    problem(get(gw, f"/v1/records/{'ab' * 32}/lsns", page_token="garbage"), "page_token",
            "INVALID_ARGUMENT")  # fmt: skip
    problem(get(gw, f"/v1/records/{'ab' * 32}/lsns", page_size=-1), "page_size")
