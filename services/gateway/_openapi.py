"""The OpenAPI 3.1 document of the gateway (served at /openapi.json, rendered at /docs).

Written out by hand from the v1 messages, so that it says exactly what the handlers accept and
answer; tests validate it with an OpenAPI validator and check every response against it.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["openapi_document", "render_docs"]

_HEX32 = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes, lowercase hex"}
_HEX = {"type": "string", "pattern": "^([0-9a-fA-F]{2})*$", "description": "bytes, hex"}
_UINT64 = {"type": "integer", "minimum": 0, "maximum": 18446744073709551615}
_UINT32 = {"type": "integer", "minimum": 0, "maximum": 4294967295}
_NUM = {"type": ["number", "null"]}
_STATUS = {
    "type": "string",
    "enum": [
        "STATUS_UNSPECIFIED",
        "STATUS_RESOLVED",
        "STATUS_CONTESTED",
        "STATUS_UNCERTAIN",
        "STATUS_EMPTY",
    ],
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        doc["required"] = required
    return doc


def _one_key(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": False,
    }


_SCHEMAS: dict[str, Any] = {
    "Value": {
        "description": "The object of an assertion: exactly one typed value.",
        "oneOf": [
            _one_key("text", {"type": "string"}),
            _one_key("number", {"type": "number"}),
            _one_key("flag", {"type": "boolean"}),
            _one_key("blob", _HEX),
            _one_key("ref", _HEX),
        ],
    },
    "SignatureEntry": _obj({"public_key": _HEX, "signature": _HEX}, ["public_key", "signature"]),
    "Assertion": _obj(
        {
            "subject": {"type": "string", "description": "at most 1,024 bytes of UTF-8, no NUL"},
            "predicate": {"type": "string", "description": "at most 256 bytes of UTF-8"},
            "object": {"anyOf": [_ref("Value"), {"type": "object", "maxProperties": 0}]},
            "confidence": {"type": "number", "description": "in [0, 1]"},
            "source_hash": _HEX,
            "visual_hash": {
                "type": "string",
                "pattern": "^[0-9a-fA-F]{16}$",
                "description": "64-bit perceptual hash, 16 hex digits",
            },
            "epoch": _HEX,
            "signatures": {"type": "array", "items": _ref("SignatureEntry")},
        },
        ["subject", "predicate", "object", "confidence", "source_hash"],
    ),
    "Vote": _obj(
        {
            "assertion_hash": _HEX,
            "agent_id": {
                **_HEX,
                "description": "the voter's ed25519 public key (filled in by a wallet)",
            },
            "weight": {"type": "number", "description": "in [-1, 1]; negative disputes"},
            "signature": _HEX,
            "sequence": {"type": "integer", "minimum": 0, "maximum": 9007199254740991},
        },
        ["assertion_hash", "weight"],
    ),
    "Epoch": _obj(
        {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "supersedes": _HEX,
            "supersession_type": {
                "type": "string",
                "enum": [
                    "SUPERSESSION_TYPE_UNSPECIFIED",
                    "SUPERSESSION_TYPE_EXTENSION",
                    "SUPERSESSION_TYPE_REFINEMENT",
                    "SUPERSESSION_TYPE_REVOLUTION",
                ],
            },
            "signatures": {"type": "array", "items": _ref("SignatureEntry")},
        },
        ["name"],
    ),
    "Record": {
        "description": "Any record: an object with one key, its kind.",
        "oneOf": [
            _one_key("assertion", _ref("Assertion")),
            _one_key("vote", _ref("Vote")),
            _one_key("epoch", _ref("Epoch")),
        ],
    },
    "Receipt": _obj({"hash": _HEX32, "lsn": _UINT64, "tree_size": _UINT64}, ["hash", "lsn"]),
    "AppendResponse": _obj({"receipt": _ref("Receipt")}, ["receipt"]),
    "BatchRequest": {
        "type": "object",
        "required": ["records"],
        "additionalProperties": False,
        "properties": {
            "records": {"type": "array", "minItems": 1, "maxItems": 10000, "items": _ref("Record")}
        },
    },
    "BatchResponse": _obj({"receipts": {"type": "array", "items": _ref("Receipt")}}, ["receipts"]),
    "HashedAssertion": _obj({"hash": _HEX32, "assertion": _ref("Assertion")}, ["hash"]),
    "Candidate": _obj(
        {
            "assertion_hash": _HEX32,
            "score": _NUM,
            "support": _NUM,
            "dispute": _NUM,
            "supporters": _UINT32,
            "disputers": _UINT32,
            "retired": {"type": "boolean"},
            "votes": _UINT32,
            "first_lsn": _UINT64,
            "last_lsn": _UINT64,
            "qualified": {"type": "boolean"},
        },
        ["assertion_hash", "score", "support", "dispute", "retired"],
    ),
    "Resolution": _obj(
        {
            "subject": {"type": "string"},
            "predicate": {"type": "string"},
            "lens": {"type": "string"},
            "status": _STATUS,
            "winner": _ref("HashedAssertion"),
            "score": _NUM,
            "candidates": {"type": "array", "items": _ref("Candidate")},
            "policy_hash": _HEX,
            "as_of_lsn": _UINT64,
            "candidates_total": _UINT32,
        },
        ["subject", "predicate", "lens", "status", "score", "candidates"],
    ),
    "ResolveResponse": _obj(
        {"resolution": _ref("Resolution"), "applied_lsn": _UINT64}, ["resolution", "applied_lsn"]
    ),
    "ResolveSubjectResponse": _obj(
        {
            "resolutions": {"type": "array", "items": _ref("Resolution")},
            "next_page_token": {"type": "string"},
            "applied_lsn": _UINT64,
        },
        ["resolutions", "next_page_token", "applied_lsn"],
    ),
    "Tally": _obj(
        {
            "assertion_hash": _HEX32,
            "support": _NUM,
            "dispute": _NUM,
            "supporters": _UINT32,
            "disputers": _UINT32,
            "votes": _UINT32,
            "score": _NUM,
        },
        ["assertion_hash", "support", "dispute"],
    ),
    "TallyResponse": _obj(
        {
            "found": {"type": "boolean"},
            "tally": _ref("Tally"),
            "policy_hash": _HEX,
            "applied_lsn": _UINT64,
        },
        ["found", "tally", "applied_lsn"],
    ),
    "HistoryEntry": _obj(
        {"lsn": _UINT64, "status": _STATUS, "winner_hash": _HEX, "score": _NUM},
        ["lsn", "status", "winner_hash", "score"],
    ),
    "HistoryResponse": _obj(
        {
            "entries": {"type": "array", "items": _ref("HistoryEntry")},
            "next_page_token": {"type": "string"},
            "applied_lsn": _UINT64,
        },
        ["entries", "next_page_token", "applied_lsn"],
    ),
    "HashedVote": _obj({"hash": _HEX32, "vote": _ref("Vote")}, ["hash", "vote"]),
    "VotesResponse": _obj(
        {
            "votes": {"type": "array", "items": _ref("HashedVote")},
            "next_page_token": {"type": "string"},
            "applied_lsn": _UINT64,
        },
        ["votes", "next_page_token", "applied_lsn"],
    ),
    "RecordResponse": _obj(
        {"hash": _HEX32, "record": _ref("Record"), "applied_lsn": _UINT64},
        ["hash", "record", "applied_lsn"],
    ),
    "CheckpointResponse": _obj(
        {
            "checkpoint": {
                "type": "string",
                "description": "the C2SP signed note: origin, tree size, base64 root hash, a "
                "blank line, the log's ed25519 signature line",
            },
            "verifier_key": {
                "type": "string",
                "description": "the log's C2SP note verifier key "
                "(<name>+<8 hex key id>+<base64 of 0x01 || public key>); pin it out of band",
            },
            "applied_lsn": _UINT64,
        },
        ["checkpoint", "verifier_key", "applied_lsn"],
    ),
    "InclusionProofResponse": _obj(
        {
            "leaf_index": {**_UINT64, "description": "lsn - 1"},
            "tree_size": _UINT64,
            "hashes": {
                "type": "array",
                "items": _HEX32,
                "description": "the audit path, from the leaf's sibling up",
            },
            "record": _ref("Record"),
            "checkpoint": {
                "type": "string",
                "description": "the served checkpoint when tree_size is its size, else empty",
            },
            "applied_lsn": _UINT64,
            "leaf": {
                **_HEX,
                "description": "the leaf bytes of the record as appended, computed by the gateway "
                "for browsers; clients that can should recompute them from record",
            },
        },
        ["leaf_index", "tree_size", "hashes", "checkpoint", "applied_lsn", "leaf"],
    ),
    "ConsistencyProofResponse": _obj(
        {"hashes": {"type": "array", "items": _HEX32}, "applied_lsn": _UINT64},
        ["hashes", "applied_lsn"],
    ),
    "RecordLsnsResponse": _obj(
        {
            "lsns": {"type": "array", "items": _UINT64},
            "next_page_token": {"type": "string"},
            "applied_lsn": _UINT64,
        },
        ["lsns", "next_page_token", "applied_lsn"],
    ),
    "Lens": _obj(
        {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "parameters": {"type": "object", "additionalProperties": _NUM},
        },
        ["name"],
    ),
    "LensesResponse": _obj(
        {
            "lenses": {"type": "array", "items": _ref("Lens")},
            "policy_hash": _HEX,
            "candidates_max": _UINT32,
            "applied_lsn": _UINT64,
        },
        ["lenses"],
    ),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "backends": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        ["status", "backends"],
    ),
    "Problem": _obj(
        {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "field": {"type": "string", "description": "the path of the offending field"},
            "grpc_status": {"type": "string", "description": "the backend's gRPC code name"},
            "backend": {"type": "string", "enum": ["writer", "wallet", "store"]},
        },
        ["type", "title", "status", "detail"],
    ),
}

_PROBLEM = {"application/problem+json": {"schema": _ref("Problem")}}
_ERRORS = {
    "400": "invalid input, naming the field (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE)",
    "500": "the backend reports an internal error or lost data (INTERNAL, DATA_LOSS)",
    "403": "a signer outside the trusted keys (PERMISSION_DENIED)",
    "404": "not found",
    "408": "the body did not arrive in time",
    "413": "the body is larger than the limit",
    "429": "over the agent's budget; Retry-After says when to retry",
    "501": "the backend does not implement the call (an ingestor without QueryService)",
    "503": "a backend is unavailable, or out of space or queue room",
    "504": "the backend did not answer within the deadline",
}
_TIMEOUT_PARAM = {
    "name": "X-Stemedb-Timeout",
    "in": "header",
    "required": False,
    "description": "seconds; lowers the request's deadline below the gateway's --request-timeout",
    "schema": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"},
}
_KEY_PARAM = {
    "name": "X-Stemedb-Key",
    "in": "header",
    "required": False,
    "description": "with --wallet: the name of the wallet key that signs the record",
    "schema": {"type": "string"},
}


def _q(name: str, schema: dict[str, Any], required: bool = False, doc: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": doc}


_LSN_Q = _q("min_lsn", _UINT64, doc="wait until this LSN is applied (read-your-writes)")
_PAGE = [
    _q("page_size", {"type": "integer", "minimum": 0, "maximum": 2147483647}, doc="0 means 100"),
    _q("page_token", {"type": "string"}, doc="next_page_token of the previous page"),
]
_LENS_Q = _q("lens", {"type": "string"}, doc="consensus (default), skeptic or recent")
_HASH_PATH = {"name": "hash", "in": "path", "required": True, "schema": _HEX32}


def _op(
    summary: str,
    ok: str,
    ok_schema: str,
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    ok_code: str = "200",
    op_id: str,
    errors: tuple[str, ...],
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        ok_code: {"description": ok, "content": {"application/json": {"schema": _ref(ok_schema)}}}
    }
    for code in errors:
        responses[code] = {"description": _ERRORS[code], "content": _PROBLEM}
    if "429" in errors:
        responses["429"]["headers"] = {
            "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
        }
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": op_id,
        "parameters": [*(params or []), _TIMEOUT_PARAM],
        "responses": responses,
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


_WRITE_ERR = ("400", "403", "408", "413", "429", "503", "504")
_READ_ERR = ("400", "501", "503", "504")


def _append(kind: str, schema: str, op_id: str) -> dict[str, Any]:
    return {
        "post": _op(
            f"Append one {kind}: the body is the {kind} itself, signed (or unsigned with --wallet)",
            "the durable receipt",
            "AppendResponse",
            params=[_KEY_PARAM],
            body=schema,
            ok_code="201",
            op_id=op_id,
            errors=_WRITE_ERR,
        )
    }


def _paths() -> dict[str, Any]:
    query_params = [
        _q("subject", {"type": "string", "minLength": 1}, True),
        _q("predicate", {"type": "string", "minLength": 1}, True),
        _LENS_Q,
        _LSN_Q,
        _q("as_of_lsn", _UINT64, doc="answer as at this LSN (0 = now)"),
    ]
    query = {
        "get": _op(
            "Resolve one slot (subject, predicate) through a lens",
            "the resolution",
            "ResolveResponse",
            params=query_params,
            op_id="resolve",
            errors=_READ_ERR,
        )
    }
    alias_query = {
        "get": {**query["get"], "operationId": "resolve_alias", "summary": "Alias of GET /v1/query"}
    }
    return {
        "/v1/assertions": _append("assertion", "Assertion", "append_assertion"),
        "/v1/votes": _append("vote", "Vote", "append_vote"),
        "/v1/epochs": _append("epoch", "Epoch", "append_epoch"),
        "/v1/batch": {
            "post": _op(
                "Append up to 10,000 records all-or-nothing in one durable commit",
                "receipts[i] answers records[i]",
                "BatchResponse",
                params=[_KEY_PARAM],
                body="BatchRequest",
                ok_code="201",
                op_id="append_batch",
                errors=_WRITE_ERR,
            )
        },
        "/v1/query": query,
        "/v1/subjects/{subject}": {
            "get": _op(
                "Every predicate of a subject resolved through a lens (paged)",
                "the resolutions",
                "ResolveSubjectResponse",
                params=[
                    {
                        "name": "subject",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    _LENS_Q,
                    *_PAGE,
                    _LSN_Q,
                ],
                op_id="resolve_subject",
                errors=_READ_ERR,
            )
        },
        "/v1/records/{hash}": {
            "get": _op(
                "A record by its content hash (assertion, vote or epoch)",
                "the record",
                "RecordResponse",
                params=[_HASH_PATH, _LSN_Q],
                op_id="get_record",
                errors=("400", "404", "503", "504"),
            )
        },
        "/v1/assertions/{hash}/tally": {
            "get": _op(
                "The tally of an assertion (support, dispute, supporters, disputers, votes)",
                "the tally",
                "TallyResponse",
                params=[_HASH_PATH, _LSN_Q],
                op_id="get_tally",
                errors=("400", "404", "501", "503", "504"),
            )
        },
        "/v1/assertions/{hash}/votes": {
            "get": _op(
                "The votes on an assertion (paged, in vote-hash order)",
                "the votes",
                "VotesResponse",
                params=[_HASH_PATH, *_PAGE, _LSN_Q],
                op_id="list_votes",
                errors=("400", "503", "504"),
            )
        },
        "/v1/history": {
            "get": _op(
                "The changes of a slot's winner or status under a lens, oldest first (paged)",
                "the history",
                "HistoryResponse",
                params=[
                    _q("subject", {"type": "string", "minLength": 1}, True),
                    _q("predicate", {"type": "string", "minLength": 1}, True),
                    _LENS_Q,
                    *_PAGE,
                    _LSN_Q,
                ],
                op_id="list_history",
                errors=_READ_ERR,
            )
        },
        "/v1/lenses": {
            "get": _op(
                "The built-in lenses with their parameters in force",
                "the lenses",
                "LensesResponse",
                op_id="list_lenses",
                errors=("501", "503", "504"),
            )
        },
        "/v1/records/{hash}/lsns": {
            "get": _op(
                "The LSNs at which a record (by its content hash) was appended, oldest first "
                "(paged; empty when unknown)",
                "the LSNs",
                "RecordLsnsResponse",
                params=[_HASH_PATH, *_PAGE, _LSN_Q],
                op_id="list_record_lsns",
                errors=("400", "501", "503", "504"),
            )
        },
        "/v1/checkpoint": {
            "get": _op(
                "The newest writer-signed checkpoint (signed tree head) the ingestor has applied",
                "the checkpoint and the log's verifier key",
                "CheckpointResponse",
                op_id="get_checkpoint",
                errors=("400", "500", "501", "503", "504"),
            )
        },
        "/v1/proofs/inclusion": {
            "get": _op(
                "The inclusion proof of the record appended at an LSN",
                "the audit path, the record as appended and its leaf bytes",
                "InclusionProofResponse",
                params=[
                    _q("lsn", {**_UINT64, "minimum": 1}, True, "the record's LSN (leaf lsn - 1)"),
                    _q(
                        "tree_size",
                        _UINT64,
                        doc="the tree to prove inclusion in, at least lsn; 0 or absent means the "
                        "served checkpoint's size; above it is 400 (OUT_OF_RANGE)",
                    ),
                ],
                op_id="get_inclusion_proof",
                errors=("400", "500", "501", "503", "504"),
            )
        },
        "/v1/proofs/consistency": {
            "get": _op(
                "The consistency proof between two tree sizes",
                "the proof (empty when the sizes are equal)",
                "ConsistencyProofResponse",
                params=[
                    _q("first_size", {**_UINT64, "minimum": 1}, True, "the older tree size"),
                    _q(
                        "second_size",
                        {**_UINT64, "minimum": 1},
                        True,
                        "the newer tree size, at least first_size, at most the served "
                        "checkpoint's (400, OUT_OF_RANGE, above it)",
                    ),
                ],
                op_id="get_consistency_proof",
                errors=("400", "500", "501", "503", "504"),
            )
        },
        "/assert": {
            "post": {
                **_append("assertion", "Assertion", "x")["post"],
                "operationId": "assert_alias",
                "summary": "Alias of POST /v1/assertions",
            }
        },
        "/vote": {
            "post": {
                **_append("vote", "Vote", "x")["post"],
                "operationId": "vote_alias",
                "summary": "Alias of POST /v1/votes",
            }
        },
        "/query": alias_query,
        "/healthz": {
            "get": {
                "summary": "Both backends' grpc.health.v1 status",
                "operationId": "healthz",
                "responses": {
                    "200": {
                        "description": "both serve",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                    "503": {
                        "description": "a backend does not serve",
                        "content": {"application/json": {"schema": _ref("Health")}},
                    },
                },
            }
        },
    }


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "StemeDB gateway",
            "version": version,
            "description": "HTTP/JSON over StemeDB's writer and ingestor (DESIGN section 10). "
            "Field names are the proto names; hashes, keys and signatures are lowercase hex; "
            "64-bit integers are JSON numbers; errors are RFC 9457 problem+json.",
        },
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS},
    }


def render_docs(doc: dict[str, Any]) -> str:
    """A plain HTML rendering of the document (no script, no CDN)."""
    rows = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = ", ".join(
                f"{p['name']} ({p['in']}{', required' if p.get('required') else ''})"
                for p in op.get("parameters", [])
            )
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body_ref = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
            codes = ", ".join(op["responses"])
            rows.append(
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td>"
                "<td>{}</td><td>{}</td></tr>".format(
                    method.upper(),
                    html.escape(path),
                    html.escape(op["summary"]),
                    html.escape(params),
                    html.escape(body_ref),
                    codes,
                )
            )
    schemas = "".join(
        f"<h3 id='{name}'>{name}</h3><pre>{html.escape(_pretty(schema))}</pre>"
        for name, schema in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>StemeDB gateway API"
        "</title><link rel='stylesheet' href='/static/explorer.css'></head><body class='docs'>"
        "<header><h1>StemeDB gateway API</h1><p>The machine-readable document is "
        "<a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1). The explorer is at "
        "<a href='/'>/</a>.</p></header><main><table class='routes'><thead><tr><th>method</th>"
        "<th>path</th><th>what</th><th>parameters</th><th>body</th><th>responses</th></tr>"
        "</thead><tbody>"
        + "".join(rows)
        + "</tbody></table><h2>Schemas</h2>"
        + schemas
        + "</main></body></html>"
    )


def _pretty(schema: Any) -> str:
    import json

    return json.dumps(schema, indent=2)
