"""stemedb.jsonmessage (the gateway's and the CLI's JSON of every v1 message) against an oracle:
protobuf's own ``MessageToDict`` (which decides presence independently: every field without
presence, a field with presence only when set), with its bytes turned from base64 to hex, its
64-bit integers from strings to numbers, non-finite floats to null, and the record kinds in
jsonrecord's canonical form. Random messages of every type, the seed printed."""

from __future__ import annotations

import base64
import json
import math
import os
import random
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor as F
from google.protobuf.message import Message

from stemedb.jsonmessage import message_to_json
from stemedb.jsonrecord import record_to_json
from stemedb.v1 import (
    log_pb2,
    meter_pb2,
    query_pb2,
    records_pb2,
    store_pb2,
    wallet_pb2,
    writer_pb2,
)

MODULES = (log_pb2, meter_pb2, query_pb2, records_pb2, store_pb2, wallet_pb2, writer_pb2)
RECORD_KINDS = {"stemedb.v1.Assertion": "assertion", "stemedb.v1.Vote": "vote",
                "stemedb.v1.Epoch": "epoch"}  # fmt: skip
INT64 = {F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_SINT64, F.TYPE_FIXED64, F.TYPE_SFIXED64}
EXAMPLES_PER_TYPE = 40


def _scalar(field: Any, rng: random.Random, admitted: bool) -> Any:
    """A random value of ``field``; ``admitted``: only what the writer admits into a record
    (known enum values, finite numbers), which jsonrecord's form assumes."""
    t = field.type
    if t == F.TYPE_BOOL:
        return rng.random() < 0.5
    if t == F.TYPE_STRING:
        return "".join(rng.choice('aé✓\n"\\ \U0001d518') for _ in range(rng.randint(0, 6)))
    if t == F.TYPE_BYTES:
        return rng.randbytes(rng.choice((0, 1, 8, 32)))
    if t == F.TYPE_DOUBLE:
        finite = [0.0, -0.0, 0.1, 1e-7, 2.5e300, -3.75]
        return rng.choice(finite if admitted else [*finite, math.nan, math.inf, -math.inf])
    if t == F.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return rng.choice(numbers if admitted else [*numbers, max(numbers) + 7])  # open enums
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return rng.choice((0, 1, 2**53 + 1, 2**64 - 1))
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return rng.choice((0, 1, 2**32 - 1))
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return rng.choice((0, -1, -(2**63), 2**63 - 1))
    return rng.choice((0, -1, 2**31 - 1, -(2**31)))


def _fill(msg: Message, rng: random.Random, depth: int, admitted: bool = False) -> None:
    name = msg.DESCRIPTOR.full_name
    admitted = admitted or name in RECORD_KINDS or name == "stemedb.v1.Record"
    field: Any
    for field in msg.DESCRIPTOR.fields:
        if rng.random() < 0.3:
            continue  # left unset: presence and defaults are half of what is tested
        target = getattr(msg, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_f, value_f = entry.fields_by_name["key"], entry.fields_by_name["value"]
            for _ in range(rng.randint(0, 3)):
                key = _scalar(key_f, rng, admitted)
                if value_f.type == F.TYPE_MESSAGE:
                    _fill(target[key], rng, depth + 1, admitted)
                else:
                    target[key] = _scalar(value_f, rng, admitted)
        elif field.is_repeated:
            for _ in range(rng.randint(0, 3)):
                if field.type == F.TYPE_MESSAGE:
                    if depth < 3:
                        _fill(target.add(), rng, depth + 1, admitted)
                else:
                    target.append(_scalar(field, rng, admitted))
        elif field.type == F.TYPE_MESSAGE:
            if depth < 3:
                target.SetInParent()
                _fill(target, rng, depth + 1, admitted)
        else:
            setattr(msg, field.name, _scalar(field, rng, admitted))


def _fix(field: Any, value: Any, original: Any) -> Any:
    """One MessageToDict value of ``field`` in jsonmessage's form; ``original`` is the field's
    value in the message (for nested messages)."""
    if field.type == F.TYPE_MESSAGE:
        return _oracle(original)
    if field.type == F.TYPE_BYTES:
        return base64.b64decode(value).hex()
    if field.type in INT64:
        return int(value)
    if field.type == F.TYPE_DOUBLE:
        return None if isinstance(value, str) else value  # "NaN", "Infinity", "-Infinity"
    return value


def _oracle(msg: Message) -> Any:
    name = msg.DESCRIPTOR.full_name
    if name == "stemedb.v1.Record":
        return record_to_json(msg)  # type: ignore[arg-type]
    if name in RECORD_KINDS:
        kind = RECORD_KINDS[name]
        record = records_pb2.Record()
        getattr(record, kind).CopyFrom(msg)
        return record_to_json(record)[kind]
    d = json_format.MessageToDict(
        msg, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    out: dict[str, Any] = {}
    field: Any
    for field in msg.DESCRIPTOR.fields:
        if field.name not in d:
            continue
        value, original = d[field.name], getattr(msg, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_f = entry.fields_by_name["value"]
            out[field.name] = {str(k): _fix(value_f, value[str(k)], original[k]) for k in original}
        elif field.is_repeated:
            out[field.name] = [_fix(field, v, o) for v, o in zip(value, original, strict=True)]
        else:
            out[field.name] = _fix(field, value, original)
    return out


def test_message_to_json_equals_the_message_to_dict_oracle_for_every_v1_type() -> None:
    seed = int(os.environ.get("STEMEDB_TEST_SEED", random.randrange(2**32)))
    print(f"seed {seed} (replay with STEMEDB_TEST_SEED={seed})")
    rng = random.Random(seed)
    types = [cls for m in MODULES for cls in vars(m).values()
             if isinstance(cls, type) and issubclass(cls, Message)]  # fmt: skip
    assert len(types) > 40, types
    compared = 0
    for cls in types:
        for _ in range(EXAMPLES_PER_TYPE):
            msg = cls()
            _fill(msg, rng, 0)
            # Compared as JSON text, so that the key order is compared too.
            ours, expected = json.dumps(message_to_json(msg)), json.dumps(_oracle(msg))
            assert ours == expected, (cls.DESCRIPTOR.full_name, seed)
            compared += 1
    assert compared == len(types) * EXAMPLES_PER_TYPE


def test_an_unset_message_is_its_scalars_and_empty_lists() -> None:
    resolution = message_to_json(query_pb2.Resolution())
    assert resolution["status"] == "STATUS_UNSPECIFIED" and resolution["candidates"] == []
    assert "winner" not in resolution and resolution["policy_hash"] == ""
    assert message_to_json(query_pb2.ResolveResponse()) == {"applied_lsn": 0}
