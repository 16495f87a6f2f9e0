"""The worked example of docs/lattice.md, figure by figure, on the engine and the oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from stemedb.ingestor import ApplyEngine, ApplyState, StoreDb
from stemedb.ingestor._oracle import Oracle
from stemedb.ingestor._policy import parse_policy
from stemedb.ingestor._query import Query, ViewsState

from stemedb.canonical import record_hash
from stemedb.v1 import query_pb2
from stemedb.v1 import records_pb2 as pb
from tests.lattice.lattice_testlib import (
    AGENTS,
    make_assertion,
    make_epoch,
    make_vote,
    wal_records,
)

A, B, C, D, E = AGENTS
POLICY = parse_policy(json.dumps({"agents": {E.hex(): 0.5}}))
F = make_epoch("1930 canon", signers=[A])
X = make_assertion("Pluto", "classification", "planet", 0.9, [A], epoch=record_hash(F))
Y = make_assertion("Pluto", "classification", "dwarf planet", 0.8, [B])
HX, HY = record_hash(X), record_hash(Y)
LOG = [
    F,
    X,
    Y,
    make_vote(HX, C, 1.0, 1),
    make_vote(HX, D, 1.0, 1),
    make_vote(HY, E, 1.0, 1),
    make_vote(HY, A, -0.5, 1),
]
REVOLUTION = make_epoch("IAU 2006", record_hash(F), pb.SUPERSESSION_TYPE_REVOLUTION, [B])


@pytest.fixture
def query(tmp_path: Path) -> Iterator[Query]:
    db = StoreDb(tmp_path / "db")
    ApplyEngine(db, POLICY).apply(wal_records([*LOG, REVOLUTION]))
    yield Query(db, ApplyState(8, b""), POLICY, ViewsState())
    db.close()


def _figures(t: query_pb2.Tally) -> tuple[float, float, float, int, int, int]:
    return (t.support, t.dispute, t.score, t.supporters, t.disputers, t.votes)


def test_tallies(query: Query) -> None:
    assert _figures(query.get_tally(HX).tally) == (2.9, 0.0, 2.9, 3, 0, 2)
    assert _figures(query.get_tally(HY).tally) == (1.3, 0.5, 0.8, 2, 1, 2)


def test_lenses_before_the_revolution(query: Query) -> None:
    consensus = query.resolve("Pluto", "classification", "consensus", 7).resolution
    assert (consensus.status, consensus.winner.hash) == (query_pb2.STATUS_RESOLVED, HX)
    skeptic = query.resolve("Pluto", "classification", "skeptic", 7).resolution
    assert skeptic.status == query_pb2.STATUS_UNCERTAIN and not skeptic.HasField("winner")
    assert round(skeptic.score, 4) == 0.5230
    assert [round(c.score, 4) for c in skeptic.candidates] == [0.5230, 0.2383]
    recent = query.resolve("Pluto", "classification", "recent", 7).resolution
    assert (recent.status, recent.winner.hash, recent.score) == (query_pb2.STATUS_RESOLVED, HY, 3)


def test_lenses_after_the_revolution(query: Query) -> None:
    consensus = query.resolve("Pluto", "classification", "consensus", 0).resolution
    assert (consensus.status, consensus.winner.hash, consensus.score) == (
        query_pb2.STATUS_RESOLVED, HY, 0.8,
    )  # fmt: skip
    assert [(c.assertion_hash, c.retired) for c in consensus.candidates] == [
        (HY, False), (HX, True),
    ]  # fmt: skip
    assert query.resolve("Pluto", "classification", "skeptic", 0).resolution.status == (
        query_pb2.STATUS_UNCERTAIN
    )
    assert query.resolve("Pluto", "classification", "recent", 0).resolution.winner.hash == HY
    history = query.list_history("Pluto", "classification", "consensus", 0, "").entries
    assert [(e.lsn, e.status, e.winner_hash) for e in history] == [
        (2, query_pb2.STATUS_RESOLVED, HX),
        (8, query_pb2.STATUS_RESOLVED, HY),
    ]


def test_the_oracle_agrees() -> None:
    oracle = Oracle.of(list(enumerate([*LOG, REVOLUTION], 1)), POLICY)
    tally = oracle.tally(HY)
    assert tally is not None and (tally.support, tally.dispute, tally.score) == (1.3, 0.5, 0.8)
    assert oracle.retired(HX) and not oracle.retired(HY)
    assert oracle.resolve("Pluto", "classification", "consensus").winner.hash == HY
