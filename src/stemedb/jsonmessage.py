"""The JSON form of any v1 message: proto field names, hex bytes, numeric 64-bit integers.

Records (Assertion, Vote, Epoch, Record) use the project's one JSON form of records,
:mod:`stemedb.jsonrecord`. Every other message is walked field by field: bytes become lowercase
hex, 64-bit integers stay JSON numbers, enums become their names, repeated fields lists, maps
objects; an unset message field is left out, every scalar is present (proto3 defaults included)
so an answer always has the same keys. The CLI's ``--json`` and the gateway's responses are this
form (DESIGN section 10).
"""

from __future__ import annotations

import math
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


def _scalar(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value).hex()
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else value
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        # JSON has no NaN or infinity; no stored figure is non-finite, but never emit invalid JSON.
        return value if math.isfinite(value) else None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return message_to_json(value)
    return value


def message_to_json(msg: Message) -> dict[str, Any]:
    """The JSON object of ``msg`` (see the module docstring)."""
    name = msg.DESCRIPTOR.full_name
    if name == records_pb2.Record.DESCRIPTOR.full_name:
        return record_to_json(msg)  # type: ignore[arg-type]
    if name in _RECORD_KINDS:
        kind = _RECORD_KINDS[name]
        record = records_pb2.Record()
        getattr(record, kind).CopyFrom(msg)
        body: dict[str, Any] = record_to_json(record)[kind]
        return body
    out: dict[str, Any] = {}
    field: Any
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            out[field.name] = {str(k): _scalar(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_scalar(field, v) for v in value]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if msg.HasField(field.name):
                out[field.name] = message_to_json(value)
        elif field.has_presence and not msg.HasField(field.name):
            continue
        else:
            out[field.name] = _scalar(field, value)
    return out
