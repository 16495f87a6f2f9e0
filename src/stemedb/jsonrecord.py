"""A language-neutral JSON form of records, used by the test vectors, the CLI and `import`.

A record is an object with exactly one key, its kind: ``{"assertion": {...}}``, ``{"vote": {...}}``
or ``{"epoch": {...}}``. Field names are the proto field names. Bytes (hashes, keys, signatures,
blobs) are lowercase hex strings; ``visual_hash`` is 16 hex digits (a JSON number cannot hold
every 64-bit value); ``object`` is ``{"text": s}``, ``{"number": x}``, ``{"flag": b}``,
``{"blob": hex}`` or ``{"ref": hex}``; ``supersession_type`` is the enum name (e.g.
``"SUPERSESSION_TYPE_EXTENSION"``); a vote's ``sequence`` is a JSON integer, left out when 0.
Malformed input raises InvalidRecord naming the field.
"""

from __future__ import annotations

from typing import Any

from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb

__all__ = [
    "assertion_to_json",
    "epoch_to_json",
    "record_from_json",
    "record_to_json",
    "vote_to_json",
]


def _hex(obj: dict[str, Any], key: str, field: str) -> bytes:
    raw = obj.get(key, "")
    if not isinstance(raw, str):
        raise InvalidRecord(f"{field}.{key}", "must be a hex string")
    try:
        return bytes.fromhex(raw)
    except ValueError as exc:
        raise InvalidRecord(f"{field}.{key}", f"is not valid hex: {exc}") from exc


def _str(obj: dict[str, Any], key: str, field: str) -> str:
    raw = obj.get(key, "")
    if not isinstance(raw, str):
        raise InvalidRecord(f"{field}.{key}", "must be a string")
    return raw


def _num(obj: dict[str, Any], key: str, field: str) -> float:
    raw = obj.get(key, 0.0)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidRecord(f"{field}.{key}", "must be a number")
    return float(raw)


def _uint(obj: dict[str, Any], key: str, field: str) -> int:
    raw = obj.get(key, 0)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0 or raw >= 2**64:
        raise InvalidRecord(f"{field}.{key}", "must be an integer in [0, 2^64)")
    return raw


def _signatures(obj: dict[str, Any], field: str) -> list[pb.SignatureEntry]:
    raw = obj.get("signatures", [])
    if not isinstance(raw, list):
        raise InvalidRecord(f"{field}.signatures", "must be a list")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InvalidRecord(f"{field}.signatures[{i}]", "must be an object")
        out.append(
            pb.SignatureEntry(
                public_key=_hex(entry, "public_key", f"{field}.signatures[{i}]"),
                signature=_hex(entry, "signature", f"{field}.signatures[{i}]"),
            )
        )
    return out


def _value(raw: Any, field: str) -> pb.Value:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise InvalidRecord(
            field, "must be an object with exactly one of text/number/flag/blob/ref"
        )
    ((kind, val),) = raw.items()
    if kind == "text" and isinstance(val, str):
        return pb.Value(text=val)
    if kind == "number" and isinstance(val, int | float) and not isinstance(val, bool):
        return pb.Value(number=float(val))
    if kind == "flag" and isinstance(val, bool):
        return pb.Value(flag=val)
    if kind in ("blob", "ref"):
        data = _hex(raw, kind, field)
        return pb.Value(blob=data) if kind == "blob" else pb.Value(ref=data)
    raise InvalidRecord(f"{field}.{kind}", "has an unknown kind or a value of the wrong type")


def record_from_json(obj: Any, field: str = "record") -> pb.Record:
    """Build a Record from its JSON form (see the module docstring)."""
    if not isinstance(obj, dict) or len(obj) != 1:
        raise InvalidRecord(field, 'must be an object with one key: "assertion", "vote" or "epoch"')
    ((kind, body),) = obj.items()
    f = f"{field}.{kind}"
    if not isinstance(body, dict):
        raise InvalidRecord(f, "must be an object")
    if kind == "assertion":
        a = pb.Assertion(
            subject=_str(body, "subject", f),
            predicate=_str(body, "predicate", f),
            confidence=_num(body, "confidence", f),
            source_hash=_hex(body, "source_hash", f),
            epoch=_hex(body, "epoch", f),
            signatures=_signatures(body, f),
        )
        if "object" in body:
            a.object.CopyFrom(_value(body["object"], f"{f}.object"))
        if body.get("visual_hash") is not None:
            vh = _hex(body, "visual_hash", f)
            if len(vh) != 8:
                raise InvalidRecord(f"{f}.visual_hash", "must be 16 hex digits (64 bits)")
            a.visual_hash = int.from_bytes(vh, "big")
        return pb.Record(assertion=a)
    if kind == "vote":
        return pb.Record(
            vote=pb.Vote(
                assertion_hash=_hex(body, "assertion_hash", f),
                agent_id=_hex(body, "agent_id", f),
                weight=_num(body, "weight", f),
                signature=_hex(body, "signature", f),
                sequence=_uint(body, "sequence", f),
            )
        )
    if kind == "epoch":
        st = body.get("supersession_type", "SUPERSESSION_TYPE_UNSPECIFIED")
        try:
            st_value = pb.SupersessionType.Value(st) if isinstance(st, str) else int(st)
        except (ValueError, TypeError) as exc:
            raise InvalidRecord(f"{f}.supersession_type", f"unknown value {st!r}") from exc
        return pb.Record(
            epoch=pb.Epoch(
                name=_str(body, "name", f),
                description=_str(body, "description", f),
                supersedes=_hex(body, "supersedes", f),
                supersession_type=st_value,  # type: ignore[arg-type]
                signatures=_signatures(body, f),
            )
        )
    raise InvalidRecord(field, f"unknown kind {kind!r}: use assertion, vote or epoch")


def _sigs_json(entries: Any) -> list[dict[str, str]]:
    return [{"public_key": e.public_key.hex(), "signature": e.signature.hex()} for e in entries]


def _value_json(v: pb.Value) -> dict[str, Any]:
    kind = v.WhichOneof("kind")
    if kind == "text":
        return {"text": v.text}
    if kind == "number":
        return {"number": v.number}
    if kind == "flag":
        return {"flag": v.flag}
    if kind == "blob":
        return {"blob": v.blob.hex()}
    if kind == "ref":
        return {"ref": v.ref.hex()}
    return {}


def assertion_to_json(a: pb.Assertion) -> dict[str, Any]:
    """The JSON form of an Assertion: a Record's ``assertion`` body."""
    body: dict[str, Any] = {
        "subject": a.subject,
        "predicate": a.predicate,
        "object": _value_json(a.object),
        "confidence": a.confidence,
        "source_hash": a.source_hash.hex(),
    }
    if a.HasField("visual_hash"):
        body["visual_hash"] = a.visual_hash.to_bytes(8, "big").hex()
    if a.epoch:
        body["epoch"] = a.epoch.hex()
    body["signatures"] = _sigs_json(a.signatures)
    return body


def vote_to_json(v: pb.Vote) -> dict[str, Any]:
    """The JSON form of a Vote: a Record's ``vote`` body."""
    vote: dict[str, Any] = {
        "assertion_hash": v.assertion_hash.hex(),
        "agent_id": v.agent_id.hex(),
        "weight": v.weight,
        "signature": v.signature.hex(),
    }
    if v.sequence:
        vote["sequence"] = v.sequence
    return vote


def epoch_to_json(e: pb.Epoch) -> dict[str, Any]:
    """The JSON form of an Epoch: a Record's ``epoch`` body."""
    body: dict[str, Any] = {"name": e.name, "description": e.description}
    if e.supersedes:
        body["supersedes"] = e.supersedes.hex()
    body["supersession_type"] = pb.SupersessionType.Name(e.supersession_type)
    body["signatures"] = _sigs_json(e.signatures)
    return body


def record_to_json(r: pb.Record) -> dict[str, Any]:
    """The JSON form of a Record (inverse of record_from_json)."""
    kind = r.WhichOneof("kind")
    if kind == "assertion":
        return {"assertion": assertion_to_json(r.assertion)}
    if kind == "vote":
        return {"vote": vote_to_json(r.vote)}
    if kind == "epoch":
        return {"epoch": epoch_to_json(r.epoch)}
    return {}
