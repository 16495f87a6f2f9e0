"""WAL payloads: v1 types and the meter's job envelope (types 0x11-0x13)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from stemedb.v1 import records_pb2 as pb
from stemedb.walrecord import (
    TYPE_OF_KIND,
    TYPE_WITH_JOB_OF_KIND,
    JobEnvelope,
    PayloadError,
    decode_payload,
    encode_payload,
    encode_payload_with_job,
)

_RECORD = pb.Record(vote=pb.Vote(assertion_hash=b"\x01" * 32, agent_id=b"\x02" * 32, weight=1.0))
_HASH = b"\xab" * 32


def test_v1_payload_has_no_job() -> None:
    d = decode_payload(TYPE_OF_KIND["vote"], encode_payload(_HASH, _RECORD.SerializeToString()))
    assert d.kind == "vote" and d.job is None and d.record == _RECORD and d.content_hash == _HASH


def test_job_envelope_round_trips() -> None:
    job = JobEnvelope("ab" * 32, records=3, units=7.5, tokens=1200, compute_seconds=2.25, value=9)
    payload = encode_payload_with_job(_HASH, _RECORD.SerializeToString(), job)
    d = decode_payload(TYPE_WITH_JOB_OF_KIND["vote"], payload)
    assert d.job == job and d.record == _RECORD and d.record_bytes == _RECORD.SerializeToString()
    # the same bytes under the v1 type do not decode as a vote: types are not interchangeable
    with pytest.raises(PayloadError):
        decode_payload(TYPE_OF_KIND["vote"], payload)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda env: env[:5], "too short"),
        (lambda env: bytes([2]) + env[1:], "version 2"),
        (lambda env: env + b"x", "does not fit"),
        (lambda env: env[:-4] + b"\xff\xfe\xfd\xfc", "not UTF-8"),
    ],
)
def test_damaged_job_envelope_is_named(mutate: Callable[[bytes], bytes], reason: str) -> None:
    env = JobEnvelope("agent-name", records=1, units=1.0).encode()
    bad = mutate(env)
    payload = _HASH + struct.pack("<H", len(bad)) + bad + _RECORD.SerializeToString()
    with pytest.raises(PayloadError, match=reason):
        decode_payload(TYPE_WITH_JOB_OF_KIND["vote"], payload)


def test_job_envelope_length_past_payload() -> None:
    payload = _HASH + struct.pack("<H", 500) + b"\x01"
    with pytest.raises(PayloadError, match="runs past"):
        decode_payload(TYPE_WITH_JOB_OF_KIND["assertion"], payload)


def test_job_envelope_refuses_negative_figures() -> None:
    with pytest.raises(PayloadError, match="negative"):
        JobEnvelope.decode(JobEnvelope("a", records=1, units=-1.0).encode())
