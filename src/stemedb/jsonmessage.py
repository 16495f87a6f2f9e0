"""The JSON form of any v1 message: proto field names, hex bytes, numeric 64-bit integers.

Records (``Record`` and its assertion/vote/epoch bodies) use the canonical-JSON form of
:mod:`stemedb.jsonrecord` (also used by the test vectors). Every other message is walked field by
field: bytes become lowercase hex, 64-bit integers stay JSON numbers, enums become their names,
repeated fields lists, maps objects; an unset message field is left out, every scalar is present
(proto3 defaults included) so an answer always has the same keys. The gateway's responses and the
CLI's ``--json`` are this form (DESIGN section 10).
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from stemedb.jsonrecord import assertion_to_json, epoch_to_json, record_to_json, vote_to_json
from stemedb.v1 import records_pb2

__all__ = ["message_to_json"]

ToJson = Callable[[Any], dict[str, Any]]

# Per message type (full name), its converter: a function compiled once from the descriptor, one
# straight-line statement per field (see _compile), so a response is a walk of attribute reads
# and at most one call per field, with no per-field dispatch at run time.
_CONVERTERS: dict[str, ToJson] = {
    records_pb2.Record.DESCRIPTOR.full_name: record_to_json,
    records_pb2.Assertion.DESCRIPTOR.full_name: assertion_to_json,
    records_pb2.Vote.DESCRIPTOR.full_name: vote_to_json,
    records_pb2.Epoch.DESCRIPTOR.full_name: epoch_to_json,
}
_COMPILING: set[str] = set()


def _value(field: Any, read: str, env: dict[str, Any]) -> str:
    """The expression for one value of ``field`` read by ``read`` (evaluated once), with what it
    needs bound in ``env``: bytes as hex, enums by name, non-finite floats as null (JSON has no
    NaN; no stored figure is one, but never emit invalid JSON), messages by their converter."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        return f"{read}.hex()"
    if field.type == FieldDescriptor.TYPE_ENUM:
        name = f"enum_{len(env)}"
        env[name] = {v.number: v.name for v in field.enum_type.values}
        return f"{name}.get(n := {read}, n)"
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return f"(x if isfinite(x := {read}) else None)"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = f"convert_{len(env)}"
        env[name] = _converter(field.message_type)
        return f"{name}({read})"
    return read


def _converter(descriptor: Any) -> ToJson:
    """The converter of one message type, compiled on first use; while its own fields are being
    compiled (a recursive type), the dispatch of :func:`message_to_json` stands in."""
    convert = _CONVERTERS.get(descriptor.full_name)
    if convert is not None:
        return convert
    if descriptor.full_name in _COMPILING:
        return message_to_json
    _COMPILING.add(descriptor.full_name)
    try:
        convert = _CONVERTERS[descriptor.full_name] = _compile(descriptor)
    finally:
        _COMPILING.discard(descriptor.full_name)
    return convert


def _compile(descriptor: Any) -> ToJson:
    """The converter of one message type, as Python source compiled once: fields in descriptor
    order; scalars always present, a message or optional field only when set, repeated fields
    as lists, maps as objects with string keys."""
    env: dict[str, Any] = {"isfinite": math.isfinite}
    body = ["def convert(m):", "    out = {}"]
    field: Any
    for field in descriptor.fields:
        name = field.name
        read = f"getattr(m, {name!r})" if keyword.iskeyword(name) else f"m.{name}"
        key = repr(name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = _value(field.message_type.fields_by_name["value"], "v", env)
            body.append(f"    out[{key}] = {{str(k): {value} for k, v in {read}.items()}}")
        elif field.is_repeated:
            value = _value(field, "v", env)
            items = f"list({read})" if value == "v" else f"[{value} for v in {read}]"
            body.append(f"    out[{key}] = {items}")
        elif field.type == FieldDescriptor.TYPE_MESSAGE or field.has_presence:
            body.append(f"    if m.HasField({key}):")
            body.append(f"        out[{key}] = {_value(field, read, env)}")
        else:
            body.append(f"    out[{key}] = {_value(field, read, env)}")
    body.append("    return out")
    exec(compile("\n".join(body), f"<message_to_json {descriptor.full_name}>", "exec"), env)
    convert: ToJson = env["convert"]
    return convert


def message_to_json(msg: Message) -> dict[str, Any]:
    """The JSON object of ``msg`` (see the module docstring)."""
    convert = _CONVERTERS.get(msg.DESCRIPTOR.full_name)
    if convert is None:
        convert = _converter(msg.DESCRIPTOR)
    return convert(msg)
