"""Protobuf wire encoding by hand: of the views, for the apply path, and of the point-read
responses (GetResponse, GetAssertionResponse, BatchGetResponse), assembled from the stored bytes
without parsing them and serializing them again.

Building a SlotView as protobuf objects costs a few hundred microseconds per change in Python;
the engine instead keeps each candidate's encoded Candidate message and joins bytes. The output
is exactly protobuf's deterministic serialization of the same message (fields in number order,
proto3 defaults left out: 0, empty, false, and +0.0 but not -0.0), which the engine's tests check
against the oracle's messages built the ordinary way.
"""

from __future__ import annotations

import struct

from stemedb.v1 import query_pb2

__all__ = [
    "Encoded",
    "candidate_bytes",
    "candidate_figures_bytes",
    "candidate_lens_bytes",
    "field_bool",
    "field_bytes",
    "field_double",
    "field_message",
    "field_varint",
    "framed_candidate",
    "get_response_bytes",
    "read_varint",
    "resolution_bytes",
    "sole_field",
    "varint",
]

_DOUBLE = struct.Struct("<d")
_ZERO_DOUBLE = bytes(8)


_SMALL = [bytes((i,)) for i in range(128)]


def varint(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL[value]
    if value < 0:
        raise ValueError(f"varint of a negative value {value}")
    if value < 1 << 14:  # LSNs and lengths: the common sizes without a loop
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    if value < 1 << 21:
        return bytes(((value & 0x7F) | 0x80, ((value >> 7) & 0x7F) | 0x80, value >> 14))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos:]`` and the position after it; ValueError if it is cut short
    or longer than 10 bytes."""
    value = shift = 0
    end = min(len(data), pos + 10)
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated or overlong varint")


def sole_field(data: bytes, number: int) -> bytes | None:
    """The payload of length-delimited field ``number`` when ``data`` encodes exactly that one
    field (how a stored Record holds its assertion, vote or epoch); otherwise None."""
    try:
        tag, pos = read_varint(data, 0)
        if tag != (number << 3) | 2:
            return None
        length, pos = read_varint(data, pos)
    except ValueError:
        return None
    return data[pos:] if pos + length == len(data) else None


class Encoded:
    """A response message already encoded: served as is by a handler that serializes what a
    method returns (``SerializeToString`` gives the bytes back)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # the protobuf method's name
        return self.data


# Tags of field numbers 1..31 by wire type (0 varint, 1 fixed64, 2 length-delimited).
_TAGS = {(n, t): varint((n << 3) | t) for n in range(1, 32) for t in (0, 1, 2)}


def field_varint(number: int, value: int) -> bytes:
    return _TAGS[number, 0] + varint(value) if value else b""


def field_bool(number: int, value: bool) -> bytes:
    return _TAGS[number, 0] + b"\x01" if value else b""


def field_double(number: int, value: float) -> bytes:
    data = _DOUBLE.pack(value)
    return _TAGS[number, 1] + data if data != _ZERO_DOUBLE else b""


def field_bytes(number: int, data: bytes) -> bytes:
    return _TAGS[number, 2] + varint(len(data)) + data if data else b""


def field_message(number: int, data: bytes) -> bytes:
    """A present sub-message (or a repeated element): written even when it encodes empty."""
    return _TAGS[number, 2] + varint(len(data)) + data


def _numbers(message: type) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


_C = _numbers(query_pb2.Candidate)
_R = _numbers(query_pb2.Resolution)


def candidate_bytes(
    assertion_hash: bytes,
    score: float,
    support: float,
    dispute: float,
    supporters: int,
    disputers: int,
    retired: bool,
    votes: int,
    first_lsn: int,
    last_lsn: int,
    qualified: bool,
) -> bytes:
    """The deterministic encoding of a Candidate message."""
    figures = candidate_figures_bytes(
        support, dispute, supporters, disputers, retired, votes, first_lsn, last_lsn
    )
    return b"".join(
        (
            field_bytes(_C["assertion_hash"], assertion_hash),
            field_double(_C["score"], score),
            figures,
            field_bool(_C["qualified"], qualified),
        )
    )


def _tag(name: str, wire_type: int) -> bytes:
    return _TAGS[_C[name], wire_type]


# Candidate tags, looked up once: the apply path encodes one candidate per lens per change.
_T_HASH, _T_SCORE, _T_SUPPORT, _T_DISPUTE = (
    _tag("assertion_hash", 2), _tag("score", 1), _tag("support", 1), _tag("dispute", 1),
)  # fmt: skip
_T_SUPPORTERS, _T_DISPUTERS, _T_VOTES, _T_FIRST, _T_LAST = (
    _tag(n, 0) for n in ("supporters", "disputers", "votes", "first_lsn", "last_lsn")
)
_RETIRED = field_bool(_C["retired"], True)
_T_CANDIDATES = _TAGS[_R["candidates"], 2]


def candidate_figures_bytes(
    support: float,
    dispute: float,
    supporters: int,
    disputers: int,
    retired: bool,
    votes: int,
    first_lsn: int,
    last_lsn: int,
) -> bytes:
    """Fields 3 to 10 of a Candidate: the same under every lens."""
    pack = _DOUBLE.pack
    s, d = pack(support), pack(dispute)
    return b"".join(
        (
            _T_SUPPORT + s if s != _ZERO_DOUBLE else b"",
            _T_DISPUTE + d if d != _ZERO_DOUBLE else b"",
            _T_SUPPORTERS + varint(supporters) if supporters else b"",
            _T_DISPUTERS + varint(disputers) if disputers else b"",
            _RETIRED if retired else b"",
            _T_VOTES + varint(votes) if votes else b"",
            _T_FIRST + varint(first_lsn) if first_lsn else b"",
            _T_LAST + varint(last_lsn) if last_lsn else b"",
        )
    )


_QUALIFIED = field_bool(_C["qualified"], True)


def candidate_lens_bytes(
    assertion_hash: bytes, score: float, figures: bytes, qualified: bool
) -> bytes:
    """A Candidate framed as Resolution field 7, from its lens' score and qualification and
    its ``candidate_figures_bytes`` (equal to ``framed_candidate(candidate_bytes(...))``)."""
    packed = _DOUBLE.pack(score)
    data = b"".join(
        (
            _T_HASH + varint(len(assertion_hash)) + assertion_hash if assertion_hash else b"",
            _T_SCORE + packed if packed != _ZERO_DOUBLE else b"",
            figures,
            _QUALIFIED if qualified else b"",
        )
    )
    return _T_CANDIDATES + varint(len(data)) + data


def framed_candidate(candidate: bytes) -> bytes:
    """An encoded Candidate framed as one element of Resolution.candidates."""
    return field_message(_R["candidates"], candidate)


_T_STATUS = _TAGS[_R["status"], 0]
_T_WINNER = _TAGS[_R["winner"], 2]
_T_RES_SCORE = _TAGS[_R["score"], 1]
_T_POLICY = _TAGS[_R["policy_hash"], 2]


def resolution_bytes(
    head: bytes,
    status: int,
    winner: bytes,
    score: float,
    candidates: list[bytes],
    policy_hash: bytes,
) -> bytes:
    """The deterministic encoding of a Resolution; ``head`` holds its subject, predicate and
    lens fields, ``winner`` the encoded HashedAssertion (empty when there is none), and
    ``candidates`` the candidates already framed as field 7 (``framed_candidate``). Stored
    resolutions leave candidates_total at 0 (the view holds it once)."""
    packed = _DOUBLE.pack(score)
    return b"".join(
        (
            head,
            _T_STATUS + varint(status) if status else b"",
            _T_WINNER + varint(len(winner)) + winner if winner else b"",
            _T_RES_SCORE + packed if packed != _ZERO_DOUBLE else b"",
            *candidates,
            _T_POLICY + varint(len(policy_hash)) + policy_hash if policy_hash else b"",
        )
    )


_FOUND = _TAGS[1, 0] + b"\x01"
_VALUE_TAG = _TAGS[2, 2]
_RECORD_TAG = _TAGS[3, 2]
_APPLIED_TAG = _TAGS[4, 0]


def get_response_bytes(value: bytes | None, is_record: bool, applied_lsn: int) -> bytes:
    """A GetResponse: found, the stored value, the same bytes as ``record`` for a record key
    (a stored Record is its own encoding), and applied_lsn."""
    lsn = _APPLIED_TAG + varint(applied_lsn) if applied_lsn else b""
    if value is None:
        return lsn
    size = varint(len(value))
    if not value:
        return _FOUND + (_RECORD_TAG + size if is_record else b"") + lsn
    if is_record:
        return b"".join((_FOUND, _VALUE_TAG, size, value, _RECORD_TAG, size, value, lsn))
    return b"".join((_FOUND, _VALUE_TAG, size, value, lsn))
