"""The admission pipeline's plain parts, without gRPC: the budget, the policy, CPU counting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stemedb import canonical, signing, validation
from stemedb.errors import InvalidSignature, UntrustedSigner
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import writer_pb2 as wpb
from stemedb.writer import AdmissionBounds, Overloaded, SignaturePolicy
from stemedb.writer._admission import BATCH, VOTE, AdmissionBudget, admit_request, decode
from stemedb.writer._verify import cgroup_cpu_limit, usable_cpus
from tests.writer.records import KEYS, assertion, epoch, vote


def test_budget_bounds_requests_records_and_bytes_each_by_name() -> None:
    budget = AdmissionBudget(AdmissionBounds(3, 100, 1000))
    first = budget.enter(600)
    first.add_records(60)
    with pytest.raises(Overloaded) as info:
        budget.enter(401)
    assert info.value.bound == "inflight_bytes_max"
    assert str(info.value).startswith("inflight_bytes_max: 600 bytes in flight")
    second = budget.enter(400)  # exactly at the bound: admitted
    with pytest.raises(Overloaded) as info:
        second.add_records(41)
    assert info.value.bound == "inflight_records_max"
    second.add_records(40)
    third = budget.enter(0)
    with pytest.raises(Overloaded) as info:
        budget.enter(0)
    assert info.value.bound == "inflight_requests_max"
    assert (budget.requests, budget.records, budget.bytes) == (3, 100, 1000)
    for lease in (first, second, third, first):  # releasing twice gives back nothing more
        lease.release()
    assert (budget.requests, budget.records, budget.bytes) == (0, 0, 0)


def test_budget_admits_a_lone_request_larger_than_the_bound() -> None:
    budget = AdmissionBudget(AdmissionBounds(10, 5, 100))
    big = budget.enter(10_000)
    big.add_records(50)
    with pytest.raises(Overloaded):
        budget.enter(1)
    big.release()
    budget.enter(1).release()


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="inflight_bytes_max"):
        AdmissionBounds(inflight_bytes_max=0)


def test_trusted_keys_imply_required_signatures_and_refuse_before_verifying() -> None:
    trusted = signing.public_key_of(KEYS[0])
    policy = SignaturePolicy.of(False, {trusted})
    assert policy.require_signatures
    assert not SignaturePolicy.of(False, None).require_signatures
    limits = validation.DEFAULT_LIMITS
    unsigned = wpb.AppendBatchRequest(records=[pb.Record(epoch=epoch(signers=0))])
    with pytest.raises(InvalidSignature) as info:
        admit_request(BATCH, unsigned, 0, limits, policy)
    assert info.value.field == "records[0].epoch.signatures"
    # An untrusted key with a signature that could never verify: refused as untrusted, since
    # trust is decided before anything is verified.
    v = vote(b"\x01" * 32, key_index=1)
    v.signature = b"\x00" * 64
    with pytest.raises(UntrustedSigner) as untrusted:
        admit_request(VOTE, wpb.AppendVoteRequest(vote=v), 0, limits, policy)
    assert untrusted.value.field == "vote.signature"


def test_admitted_records_carry_everything_once() -> None:
    a = assertion("Q1", signers=2)
    data = wpb.AppendBatchRequest(
        records=[pb.Record(assertion=a), pb.Record(vote=vote(b"\x02" * 32))]
    ).SerializeToString()
    request = decode(BATCH, data)
    first, second = admit_request(BATCH, request, len(data), validation.DEFAULT_LIMITS,
                                  SignaturePolicy())  # fmt: skip
    assert (first.kind, first.field, second.kind, second.field) == (
        "assertion", "records[0].assertion", "vote", "records[1].vote",
    )  # fmt: skip
    assert first.canonical == canonical.assertion_bytes(a)
    assert first.content_hash == canonical.content_hash(first.canonical)
    assert [c.field for c in first.checks] == [
        "records[0].assertion.signatures[0].signature",
        "records[0].assertion.signatures[1].signature",
    ]
    assert all(signing.verify(c.public_key, c.signature, c.content_hash) for c in first.checks)
    assert [c.field for c in second.checks] == ["records[1].vote.signature"]


CGROUP_LINES = "0::/kubepods/pod1/writer\n"


def _cpu_max(root: Path, relative: str, text: str) -> None:
    d = root / relative
    d.mkdir(parents=True, exist_ok=True)
    (d / "cpu.max").write_text(text)


@pytest.mark.parametrize(
    "files,expected",
    [
        ({}, None),  # no cpu.max anywhere (the root cgroup has none)
        ({"kubepods/pod1/writer": "max 100000\n"}, None),
        ({"kubepods/pod1/writer": "200000 100000\n"}, 2),
        ({"kubepods/pod1/writer": "150000 100000\n"}, 1),  # 1.5 CPUs: rounds down
        ({"kubepods/pod1/writer": "50000 100000\n"}, 1),  # half a CPU: still one worker
        ({"kubepods/pod1/writer": "max 100000", "kubepods/pod1": "300000 100000"}, 3),
        ({"kubepods/pod1/writer": "800000 100000", "kubepods": "400000 100000"}, 4),
        ({"kubepods/pod1/writer": "garbage\n"}, None),
    ],
)
def test_cgroup_cpu_limit(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    (tmp_path / "kubepods/pod1/writer").mkdir(parents=True)
    for relative, text in files.items():
        _cpu_max(tmp_path, relative, text)
    assert cgroup_cpu_limit(tmp_path, CGROUP_LINES) == expected


def test_cgroup_cpu_limit_in_a_cgroup_namespace_and_on_v1(tmp_path: Path) -> None:
    # In a container the process's cgroup is the namespace root, "/".
    _cpu_max(tmp_path, "", "300000 100000\n")
    assert cgroup_cpu_limit(tmp_path, "0::/\n") == 3
    # cgroup v1 only: no "0::" line, nothing to read.
    assert cgroup_cpu_limit(tmp_path, "4:cpu,cpuacct:/\n") is None


def test_usable_cpus_takes_the_smaller_of_affinity_and_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    proc = tmp_path / "cgroup"
    proc.write_text("0::/\n")
    root = tmp_path / "fs"
    root.mkdir()
    assert usable_cpus(root, proc) == affinity
    _cpu_max(root, "", "100000 100000\n")
    assert usable_cpus(root, proc) == 1
    _cpu_max(root, "", f"{(affinity + 8) * 100000} 100000\n")
    assert usable_cpus(root, proc) == affinity
    assert usable_cpus(root, tmp_path / "missing") == affinity
