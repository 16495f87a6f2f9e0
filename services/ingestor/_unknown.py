"""Defence in depth: a stored record holds only fields the schema knows.

The writer refuses unknown protobuf fields at every level (issue 10.1). The ingestor checks
again, because bytes that no hash or signature covers must never land in RocksDB, whatever
wrote the WAL: a record with an unknown field at any level (Record, Assertion, Value,
SignatureEntry, Vote, Epoch) is undecodable and halts the apply loop like corruption does.

The check costs a ``DiscardUnknownFields`` and a ``ByteSize`` on the hot path (a few
microseconds); only a record whose size changed is walked field by field, to name where the
unknown field sits (or to find none: a non-canonical but valid encoding).
"""

from __future__ import annotations

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

__all__ = ["unknown_field_path"]


def unknown_field_path(record: Message, serialized: bytes) -> str | None:
    """``None`` when ``record`` holds no unknown field, else e.g. ``assertion.object: field 9``.

    ``record`` is the message parsed from ``serialized``; it may lose its unknown fields here.
    """
    record.DiscardUnknownFields()
    if record.ByteSize() == len(serialized):
        return None  # nothing was discarded (the usual, canonically encoded case)
    # Either unknown fields were dropped, or the bytes are a valid non-canonical encoding (say,
    # a field repeated): only the walk tells which.
    return _find(type(record).FromString(serialized), type(record).DESCRIPTOR.name.lower())


def _find(message: Message, path: str) -> str | None:
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = ", ".join(str(unknown[i].field_number) for i in range(len(unknown)))
        return f"{path}: unknown field {numbers}"
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.is_repeated:
            for i, item in enumerate(value):
                found = _find(item, f"{path}.{descriptor.name}[{i}]")
                if found is not None:
                    return found
        else:
            found = _find(value, f"{path}.{descriptor.name}")
            if found is not None:
                return found
    return None
