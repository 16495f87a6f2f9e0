"""DESIGN 9.7, points 1 to 7 and the bad inputs: real writer and ingestor processes.

One stack serves the module; each test works in slots of its own (its own subject), so the
tests do not see each other's records. The policy (tests/lattice/stack.py): agent Z has trust
0, agent L has 0.5 (below epoch_authority_min), everyone else 1.0.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from stemedb.ingestor._policy import parse_policy

from stemedb.v1 import query_pb2
from stemedb.v1 import records_pb2 as pb
from tests.lattice.stack import (
    POLICY,
    Lab,
    hash_of,
    running_lab,
    signed_assertion,
    signed_epoch,
    signed_vote,
)

RESOLVED = query_pb2.STATUS_RESOLVED
UNCERTAIN = query_pb2.STATUS_UNCERTAIN


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lattice")) as running:
        yield running


def test_1_one_signed_assertion_alone(lab: Lab) -> None:
    a = signed_assertion("check1", "name", "Douglas Adams", signers=["A"], confidence=0.9)
    (lsn,) = lab.append(a)
    consensus = lab.resolve("check1", "name", min_lsn=lsn)
    assert consensus.status == RESOLVED
    assert consensus.lens == "consensus"
    assert consensus.winner.hash == hash_of(a)
    assert consensus.winner.assertion == a.assertion
    assert consensus.score == 0.9
    assert consensus.as_of_lsn >= lsn
    assert consensus.policy_hash == parse_policy(__import__("json").dumps(POLICY)).policy_hash
    recent = lab.resolve("check1", "name", "recent")
    assert recent.status == RESOLVED and recent.winner.hash == hash_of(a)
    assert recent.score == float(lsn)
    skeptic = lab.resolve("check1", "name", "skeptic")
    assert skeptic.status == UNCERTAIN  # one supporter, min_supporters is 2
    assert not skeptic.HasField("winner")
    [candidate] = skeptic.candidates
    assert (candidate.supporters, candidate.qualified) == (1, False)


def test_2_three_against_one_and_exact_tally(lab: Lab) -> None:
    x = signed_assertion("check2", "capital", "Canberra", signers=[], confidence=0.5)
    y = signed_assertion("check2", "capital", "Sydney", signers=[], confidence=0.5)
    votes = [signed_vote(hash_of(x), agent, 1.0, 1) for agent in "ABC"]
    votes.append(signed_vote(hash_of(y), "D", 1.0, 1))
    lsns = lab.append(x, y, *votes)
    res = lab.resolve("check2", "capital", min_lsn=lsns[-1])
    assert res.status == RESOLVED
    assert res.winner.hash == hash_of(x)
    assert [c.assertion_hash for c in res.candidates] == [hash_of(x), hash_of(y)]
    assert (res.candidates[0].score, res.candidates[1].score) == (3.0, 1.0)
    tx = lab.tally(hash_of(x)).tally
    assert (tx.support, tx.dispute, tx.supporters, tx.disputers, tx.votes) == (3.0, 0.0, 3, 0, 3)
    ty = lab.tally(hash_of(y)).tally
    assert (ty.support, ty.dispute, ty.supporters, ty.disputers, ty.votes) == (1.0, 0.0, 1, 0, 1)
    assert lab.tally(bytes(32)).found is False


def test_3_replay_changes_nothing_higher_sequence_does(lab: Lab) -> None:
    x = signed_assertion("check3", "p", "x", signers=[])
    vote = signed_vote(hash_of(x), "A", 1.0, sequence=5)
    lsns = lab.append(x, vote)
    before = lab.resolve("check3", "p", min_lsn=lsns[-1])
    assert before.status == RESOLVED and before.score == 1.0
    (replay_lsn,) = lab.append(vote)  # the same bytes again: a new LSN, the same hash
    after_replay = lab.resolve("check3", "p", min_lsn=replay_lsn)
    assert after_replay.as_of_lsn >= replay_lsn
    after_replay.as_of_lsn = before.as_of_lsn
    assert after_replay == before
    assert lab.tally(hash_of(x)).tally.votes == 1
    # An older sequence does not count either, a higher one does.
    (older,) = lab.append(signed_vote(hash_of(x), "A", -1.0, sequence=4))
    assert lab.resolve("check3", "p", min_lsn=older).score == 1.0
    (newer,) = lab.append(signed_vote(hash_of(x), "A", -1.0, sequence=6))
    changed = lab.resolve("check3", "p", min_lsn=newer)
    assert changed.status == UNCERTAIN and changed.score == -1.0
    t = lab.tally(hash_of(x)).tally
    assert (t.support, t.dispute, t.supporters, t.disputers, t.votes) == (0.0, 1.0, 0, 1, 1)


def test_4_hundred_votes_count_once(lab: Lab) -> None:
    x = signed_assertion("check4", "p", "x", signers=[])
    votes = [signed_vote(hash_of(x), "B", 1.0 if i % 2 else 0.5, sequence=i) for i in range(100)]
    lsns = lab.append(x, *votes)
    t = lab.tally(hash_of(x), min_lsn=lsns[-1]).tally
    assert (t.votes, t.supporters, t.support) == (1, 1, 1.0)  # sequence 99 (odd): weight 1.0
    assert lab.resolve("check4", "p").score == 1.0


def test_5_trust_zero_moves_no_score(lab: Lab) -> None:
    x = signed_assertion("check5", "p", "x", signers=["Z"], confidence=1.0)
    lsns = lab.append(x, signed_vote(hash_of(x), "Z", 1.0, 1))
    res = lab.resolve("check5", "p", min_lsn=lsns[-1])
    assert res.status == UNCERTAIN and res.score == 0.0
    t = lab.tally(hash_of(x)).tally
    assert (t.support, t.supporters, t.votes) == (0.0, 0, 1)


def test_6_revolution_retires_only_when_in_force(lab: Lab) -> None:
    old = signed_epoch("Ptolemy", signers=["A"])
    old_hash = hash_of(old)
    geocentric = signed_assertion("check6", "centre", "Earth", signers=["A", "B"], epoch=old_hash)
    heliocentric = signed_assertion("check6", "centre", "Sun", signers=["C"])
    lsns = lab.append(old, geocentric, heliocentric)
    assert lab.resolve("check6", "centre", min_lsn=lsns[-1]).winner.hash == hash_of(geocentric)
    rev = pb.SUPERSESSION_TYPE_REVOLUTION
    unsigned = signed_epoch("Copernicus (unsigned)", old_hash, rev)
    untrusted = signed_epoch("Copernicus (by L)", old_hash, rev, signers=["L"])
    lsns = lab.append(unsigned, untrusted)
    for lens in ("consensus", "skeptic", "recent"):
        res = lab.resolve("check6", "centre", lens, min_lsn=lsns[-1])
        assert not any(c.retired for c in res.candidates), lens
    assert lab.resolve("check6", "centre").winner.hash == hash_of(geocentric)
    (lsn,) = lab.append(signed_epoch("Copernicus", old_hash, rev, signers=["D"]))
    for lens in ("consensus", "skeptic", "recent"):
        res = lab.resolve("check6", "centre", lens, min_lsn=lsn)
        retired = {c.assertion_hash: c.retired for c in res.candidates}
        assert retired == {hash_of(geocentric): True, hash_of(heliocentric): False}, lens
        assert res.candidates[-1].assertion_hash == hash_of(geocentric)  # retired ones last
        assert res.winner.hash != hash_of(geocentric)
    assert lab.resolve("check6", "centre").winner.hash == hash_of(heliocentric)


def test_7_min_lsn_reflects_the_vote(lab: Lab) -> None:
    x = signed_assertion("check7", "p", "x", signers=[])
    (first,) = lab.append(x)
    for i in range(1, 6):
        (lsn,) = lab.append(signed_vote(hash_of(x), "E", 1.0 if i % 2 else -1.0, sequence=i))
        res = lab.resolve("check7", "p", min_lsn=lsn)
        assert res.as_of_lsn >= lsn > first
        assert res.score == (1.0 if i % 2 else -1.0)


def test_history_and_as_of(lab: Lab) -> None:
    x = signed_assertion("hist", "p", "x", signers=[])
    y = signed_assertion("hist", "p", "y", signers=[])
    (lx, ly) = lab.append(x, y)
    (v1,) = lab.append(signed_vote(hash_of(x), "A", 1.0, 1))
    (v2,) = lab.append(signed_vote(hash_of(y), "B", 1.0, 1), signed_vote(hash_of(y), "C", 1.0, 1))[
        1:
    ]
    now = lab.resolve("hist", "p", min_lsn=v2)
    assert now.winner.hash == hash_of(y)
    at_v1 = lab.resolve("hist", "p", as_of_lsn=v1)
    assert (at_v1.as_of_lsn, at_v1.winner.hash, at_v1.score) == (v1, hash_of(x), 1.0)
    assert lab.resolve("hist", "p", as_of_lsn=lx).status == UNCERTAIN
    assert lab.resolve("hist", "p", as_of_lsn=lx - 1).status == query_pb2.STATUS_EMPTY
    reply = lab.query().ListHistory(
        query_pb2.ListHistoryRequest(subject="hist", predicate="p", page_size=1), timeout=30
    )
    entries = list(reply.entries)
    while reply.next_page_token:
        reply = lab.query().ListHistory(
            query_pb2.ListHistoryRequest(
                subject="hist", predicate="p", page_size=1, page_token=reply.next_page_token
            ),
            timeout=30,
        )
        entries.extend(reply.entries)
    assert [(e.lsn, e.status, e.winner_hash) for e in entries] == [
        (lx, UNCERTAIN, b""),
        (v1, RESOLVED, hash_of(x)),
        (v2 - 1, query_pb2.STATUS_CONTESTED, hash_of(x)),
        (v2, RESOLVED, hash_of(y)),
    ]
    del ly


def test_resolve_subject_lists_every_predicate(lab: Lab) -> None:
    records = [signed_assertion("multi", f"p{i}", f"v{i}") for i in range(5)]
    lsns = lab.append(*records)
    got = []
    token = ""
    while True:
        reply = lab.query().ResolveSubject(
            query_pb2.ResolveSubjectRequest(
                subject="multi", lens="recent", page_size=2, page_token=token, min_lsn=lsns[-1]
            ),
            timeout=30,
        )
        got.extend((r.predicate, r.lens, r.status) for r in reply.resolutions)
        token = reply.next_page_token
        if not token:
            break
    assert got == [(f"p{i}", "recent", RESOLVED) for i in range(5)]


def test_list_lenses(lab: Lab) -> None:
    reply = lab.query().ListLenses(query_pb2.ListLensesRequest(), timeout=30)
    assert [lens.name for lens in reply.lenses] == ["consensus", "skeptic", "recent"]
    assert dict(reply.lenses[1].parameters) == {"min_supporters": 2.0, "threshold": 0.6}
    assert reply.candidates_max == 10 and len(reply.policy_hash) == 32


def test_unknown_lens_and_as_of_beyond_applied(lab: Lab) -> None:
    with pytest.raises(grpc.RpcError) as err:
        lab.resolve("check1", "name", lens="optimist")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "consensus, skeptic, recent" in (err.value.details() or "")
    applied = lab.query().ListLenses(query_pb2.ListLensesRequest(), timeout=30).applied_lsn
    with pytest.raises(grpc.RpcError) as err:
        lab.resolve("check1", "name", as_of_lsn=applied + 1000)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "as_of_lsn" in (err.value.details() or "")
    with pytest.raises(grpc.RpcError) as err:
        lab.resolve("", "name")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subject" in (err.value.details() or "")


def test_bad_sequence_and_bad_signature_are_refused(lab: Lab) -> None:
    x = signed_assertion("bad", "p", "x")
    too_big = signed_vote(hash_of(x), "A", 1.0, sequence=2**53)
    with pytest.raises(grpc.RpcError) as err:
        lab.append(too_big)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sequence" in (err.value.details() or "")
    forged = signed_vote(hash_of(x), "A", 1.0, sequence=7)
    forged.vote.sequence = 8  # the signature covers sequence 7
    with pytest.raises(grpc.RpcError) as err:
        lab.append(forged)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "signature" in (err.value.details() or "")


def test_health_name_of_the_query_service(lab: Lab) -> None:
    from tests.support import SERVING, health_status

    assert health_status(lab.ingestor.listen, "stemedb.v1.QueryService") == SERVING


def test_malformed_policy_is_refused_at_start(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text('{"agents": {"abc": 1}}')
    proc = subprocess.run(
        [sys.executable, "-m", "stemedb.ingestor", "--wal-dir", str(tmp_path / "wal"),
         "--db-dir", str(tmp_path / "db"), "--trust-policy", str(policy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "agents.abc" in proc.stderr
    assert not (tmp_path / "db").exists()
