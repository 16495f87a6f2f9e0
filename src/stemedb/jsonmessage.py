"""The JSON form of any v1 message: proto field names, hex bytes, numeric 64-bit integers.

Records (``Record`` and its assertion/vote/epoch bodies) use the canonical-JSON form of
:mod:`stemedb.jsonrecord` (also used by the test vectors). Every other message is walked field by
field: bytes become lowercase hex, 64-bit integers stay JSON numbers, enums become their names,
repeated fields lists, maps objects; an unset message field is left out, every scalar is present
(proto3 defaults included) so an answer always has the same keys. The gateway's responses and the
CLI's ``--json`` are this form (DESIGN section 10).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from stemedb.jsonrecord import record_to_json
from stemedb.v1 import records_pb2

__all__ = ["message_to_json"]

_RECORD_KINDS = {
    records_pb2.Assertion.DESCRIPTOR.full_name: "assertion",
    records_pb2.Vote.DESCRIPTOR.full_name: "vote",
    records_pb2.Epoch.DESCRIPTOR.full_name: "epoch",
}


_SCALAR, _REPEATED, _MAP, _MESSAGE, _OPTIONAL = range(5)
Converter = Callable[[Any], Any] | None  # None: the value is its own JSON
# Per message type, its fields as (name, mode, converter), worked out once from the descriptor:
# the per-request walk is then a getattr and at most one call per field.
_PLANS: dict[str, list[tuple[str, int, Converter]]] = {}


def _hex(value: bytes) -> str:
    return value.hex()


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity; no stored figure is non-finite, but never emit invalid JSON.
    return value if math.isfinite(value) else None


def _converter(field: Any) -> Converter:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _hex
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = {v.number: v.name for v in field.enum_type.values}
        return lambda number: names.get(number, number)
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return _finite
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_json
    return None


def _plan(descriptor: Any) -> list[tuple[str, int, Converter]]:
    plan = []
    field: Any
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            plan.append((field.name, _MAP, _converter(field.message_type.fields_by_name["value"])))
        elif field.is_repeated:
            plan.append((field.name, _REPEATED, _converter(field)))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            plan.append((field.name, _MESSAGE, _converter(field)))
        elif field.has_presence:
            plan.append((field.name, _OPTIONAL, _converter(field)))
        else:
            plan.append((field.name, _SCALAR, _converter(field)))
    return plan


def message_to_json(msg: Message) -> dict[str, Any]:
    """The JSON object of ``msg`` (see the module docstring)."""
    name = msg.DESCRIPTOR.full_name
    plan = _PLANS.get(name)
    if plan is None:
        if name == records_pb2.Record.DESCRIPTOR.full_name:
            return record_to_json(msg)  # type: ignore[arg-type]
        if name in _RECORD_KINDS:
            kind = _RECORD_KINDS[name]
            record = records_pb2.Record()
            getattr(record, kind).CopyFrom(msg)
            body: dict[str, Any] = record_to_json(record)[kind]
            return body
        plan = _PLANS[name] = _plan(msg.DESCRIPTOR)
    out: dict[str, Any] = {}
    for field_name, mode, convert in plan:
        value = getattr(msg, field_name)
        if mode == _SCALAR:
            out[field_name] = value if convert is None else convert(value)
        elif mode == _REPEATED:
            out[field_name] = list(value) if convert is None else [convert(v) for v in value]
        elif mode == _MAP:
            out[field_name] = {
                str(k): (v if convert is None else convert(v)) for k, v in value.items()
            }
        elif msg.HasField(field_name):  # _MESSAGE or _OPTIONAL: left out when unset
            out[field_name] = value if convert is None else convert(value)
    return out
