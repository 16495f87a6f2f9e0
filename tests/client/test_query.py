"""The clients' QueryService and LogService methods, and the CLI's resolve, beliefs, tally,
history and lenses, against a real writer and ingestor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from stemedb import canonical, merkle
from stemedb.client import (
    AgentKey,
    AsyncClient,
    Client,
    InvalidRecord,
    ReadMismatch,
    RpcFailed,
    make_assertion,
)
from stemedb.client import _query as query
from stemedb.v1 import query_pb2 as qpb
from stemedb.v1 import records_pb2 as pb
from tests.client.stack import Stack, cli_env, run_cli, running_stack

SRC = b"\x31" * 32
VOTERS = [AgentKey.from_seed(bytes([0x40 + i]) * 32) for i in range(4)]


@dataclass(frozen=True)
class Slot:
    """Q42/name with two candidates: ``adams`` gets three votes, ``other`` one."""

    adams: bytes
    other: bytes
    before_votes_lsn: int  # the LSN of the second assertion: no vote counted yet
    last_lsn: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("query")) as s:
        yield s


@pytest.fixture(scope="module")
def slot(stack: Stack) -> Slot:
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        ra = db.append_assertion(
            VOTERS[0].sign_assertion(
                make_assertion("Q42", "name", "Douglas Adams", source_hash=SRC)
            )
        )
        rb = db.append_assertion(
            VOTERS[3].sign_assertion(make_assertion("Q42", "name", "D. Adams", source_hash=SRC))
        )
        for key in VOTERS[:3]:
            db.append_vote(key.vote(ra.hash, 1.0))
        last = db.append_vote(VOTERS[3].vote(rb.hash, 1.0))
        for predicate, text in (("born", "1952"), ("died", "2001")):
            # Unsigned and unvoted: two more predicates for the listings (UNCERTAIN, score 0).
            last = db.append_assertion(make_assertion("Q42", predicate, text, source_hash=SRC))
    return Slot(ra.hash, rb.hash, rb.lsn, last.lsn)


def _figures(c: qpb.Candidate) -> tuple[bytes, float, float, int, int, bool]:
    return (c.assertion_hash, c.support, c.dispute, c.supporters, c.disputers, c.retired)


def test_sync_client_resolves_tallies_pages_and_lists_lenses(stack: Stack, slot: Slot) -> None:
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        resp = db.resolve("Q42", "name", min_lsn=slot.last_lsn)
        r = resp.resolution
        assert resp.applied_lsn >= slot.last_lsn and r.as_of_lsn == resp.applied_lsn
        assert r.status == qpb.STATUS_RESOLVED and r.lens in ("", "consensus")
        assert r.winner.hash == slot.adams and r.winner.assertion.object.text == "Douglas Adams"
        # 3 voters + the signer's endorsement are one agent each; VOTERS[0] both signed and voted.
        assert [_figures(c) for c in r.candidates] == [
            (slot.adams, 3.0, 0.0, 3, 0, False),
            (slot.other, 1.0, 0.0, 1, 0, False),
        ]
        t = db.get_tally(slot.adams.hex(), slot.last_lsn)  # a hash as hex works too
        assert t.found and (t.tally.supporters, t.tally.support, t.tally.votes) == (3, 3.0, 3)
        assert t.policy_hash == r.policy_hash and len(t.policy_hash) == 32
        assert not db.get_tally(b"\x07" * 32).found
        # Before the votes the first assertion won by LSN order; as_of answers from history.
        then = db.resolve("Q42", "name", as_of_lsn=slot.before_votes_lsn).resolution
        assert then.as_of_lsn == slot.before_votes_lsn
        assert [c.support for c in then.candidates] == [1.0, 1.0]
        recent = db.resolve("Q42", "name", "recent").resolution
        assert recent.lens == "recent" and recent.winner.hash == slot.other
        # Paging: one predicate per page, every page followed, predicate byte order.
        page = db.resolve_subject("Q42", page_size=1)
        assert len(page.items) == 1 and page.next_page_token
        predicates = [x.predicate for x in db.iter_resolve_subject("Q42", page_size=1)]
        assert predicates == ["born", "died", "name"]
        history = list(db.iter_history("Q42", "name", page_size=1))
        assert history[0].lsn == 1 and history[-1].winner_hash == slot.adams
        assert [h.lsn for h in history] == sorted(h.lsn for h in history)
        lenses = db.list_lenses()
        assert [x.name for x in lenses.lenses] == ["consensus", "skeptic", "recent"]
        assert lenses.lenses[0].parameters["contested_margin"] == pytest.approx(0.1)


def test_query_errors_are_the_servers(stack: Stack, slot: Slot) -> None:
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        with pytest.raises(RpcFailed) as unknown:
            db.resolve("Q42", "name", "wisdom")
        assert unknown.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "consensus" in unknown.value.details and "skeptic" in unknown.value.details
        with pytest.raises(RpcFailed) as later:
            db.resolve("Q42", "name", as_of_lsn=10**9)
        assert later.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "above applied_lsn" in later.value.details
        with pytest.raises(InvalidRecord, match="assertion_hash"):
            db.get_tally("abc")  # refused before any call


def test_a_winner_that_does_not_hash_to_its_hash_is_refused() -> None:
    a = make_assertion("Q1", "p", "o", source_hash=SRC)
    good = canonical.record_hash(pb.Record(assertion=a))
    resp = qpb.ResolveResponse(applied_lsn=1)
    resp.resolution.winner.hash = good
    resp.resolution.winner.assertion.CopyFrom(a)
    rpc = query.resolve("Q1", "p")
    assert rpc.parse(resp) is resp
    resp.resolution.winner.assertion.object.text = "tampered"
    with pytest.raises(ReadMismatch, match=good.hex()):
        rpc.parse(resp)
    page = qpb.ResolveSubjectResponse(resolutions=[resp.resolution])
    with pytest.raises(ReadMismatch):
        query.resolve_subject("Q1").parse(page)


def test_log_methods_prove_inclusion_and_consistency(stack: Stack, slot: Slot) -> None:
    with Client(stack.writer.listen, stack.ingestor.listen) as db:
        assert list(db.iter_record_lsns(slot.adams, min_lsn=slot.last_lsn)) == [1]
        cp = db.get_checkpoint()
        assert cp.checkpoint and cp.verifier_key
        size = int(cp.checkpoint.splitlines()[1])
        proof = db.get_inclusion_proof(1)
        assert proof.leaf_index == 0 and proof.tree_size == size
        consistency = db.get_consistency_proof(1, size)
        assert size == 1 or consistency.hashes
        assert all(len(h) == merkle.HASH_BYTES for h in [*proof.hashes, *consistency.hashes])


def test_async_client_has_the_same_queries(stack: Stack, slot: Slot) -> None:
    async def run() -> None:
        async with AsyncClient(stack.writer.listen, stack.ingestor.listen) as db:
            r = (await db.resolve("Q42", "name", min_lsn=slot.last_lsn)).resolution
            assert r.winner.hash == slot.adams
            t = await db.get_tally(slot.other)
            assert t.found and t.tally.supporters == 1
            got = [x.predicate async for x in db.iter_resolve_subject("Q42", page_size=2)]
            assert got == ["born", "died", "name"]
            history = [h async for h in db.iter_history("Q42", "name")]
            assert history[-1].winner_hash == slot.adams
            assert (await db.list_lenses()).lenses[0].name == "consensus"
            assert (await db.get_inclusion_proof(1)).leaf_index == 0
            assert [x async for x in db.iter_record_lsns(slot.other)] == [slot.before_votes_lsn]

    asyncio.run(run())


# --- the CLI -----------------------------------------------------------------------------------


def _cli(stack: Stack, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    done = run_cli(*args, env=cli_env(tmp_path, stack.env))
    return done.returncode, done.stdout, done.stderr


def test_cli_resolve_human_and_json(stack: Stack, slot: Slot, tmp_path: Path) -> None:
    code, text, err = _cli(
        stack, tmp_path, "resolve", "Q42", "name", "--min-lsn", str(slot.last_lsn)
    )
    assert code == 0, err
    assert "status     RESOLVED" in text
    assert f'winner     {slot.adams.hex()}  "Douglas Adams"' in text
    assert "score      3" in text and "candidates 2 of 2:" in text
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(slot.adams.hex())]
    assert rows == [[slot.adams.hex(), "3", "3", "0", "3", "0", "no"]]
    code, text, err = _cli(stack, tmp_path, "resolve", "Q42", "name", "--json", "--lens", "recent")
    assert code == 0, err
    body = json.loads(text)
    res = body["resolution"]
    assert res["lens"] == "recent" and res["status"] == "STATUS_RESOLVED"
    assert res["winner"]["hash"] == slot.other.hex()
    assert res["winner"]["assertion"]["object"] == {"text": "D. Adams"}
    assert body["applied_lsn"] >= slot.last_lsn and res["candidates"][0]["supporters"] == 1
    code, text, err = _cli(stack, tmp_path, "resolve", "Q42", "name", "--json",
                           "--as-of", str(slot.before_votes_lsn))  # fmt: skip
    assert code == 0, err
    assert json.loads(text)["resolution"]["as_of_lsn"] == slot.before_votes_lsn


def test_cli_resolve_errors(stack: Stack, slot: Slot, tmp_path: Path) -> None:
    code, text, err = _cli(stack, tmp_path, "resolve", "Q42", "name", "--lens", "wisdom")
    assert code == 2 and not text
    assert "INVALID_ARGUMENT" in err and "consensus, skeptic, recent" in err, err
    code, _, err = _cli(stack, tmp_path, "resolve", "Q42", "name", "--as-of", str(10**9))
    assert code == 2 and "above applied_lsn" in err, err
    code, _, err = _cli(stack, tmp_path, "resolve", "Q42", "name", "--as-of", "-1")
    assert code == 2 and "--as-of" in err, err


def test_cli_beliefs_tally_history_lenses(stack: Stack, slot: Slot, tmp_path: Path) -> None:
    code, text, err = _cli(stack, tmp_path, "beliefs", "Q42", "--page-size", "1",
                           "--min-lsn", str(slot.last_lsn))  # fmt: skip
    assert code == 0, err
    lines = [line.split("\t") for line in text.splitlines()]
    assert [x[0] for x in lines] == ["born", "died", "name"]
    assert lines[2][1] == "RESOLVED" and lines[2][3].startswith(slot.adams.hex())
    code, text, err = _cli(stack, tmp_path, "beliefs", "Q42", "--json")
    assert code == 0, err
    assert [json.loads(x)["predicate"] for x in text.splitlines()] == ["born", "died", "name"]

    code, text, err = _cli(stack, tmp_path, "tally", slot.adams.hex())
    assert code == 0, err
    assert "support    3  (3 supporters)" in text and "votes      3" in text
    code, text, err = _cli(stack, tmp_path, "tally", slot.adams.hex(), "--json")
    body = json.loads(text)
    assert body["found"] and body["tally"]["assertion_hash"] == slot.adams.hex()
    assert body["tally"]["supporters"] == 3 and len(body["policy_hash"]) == 64
    code, text, err = _cli(stack, tmp_path, "tally", "07" * 32)
    assert code == 1 and "not found" in err
    code, _, err = _cli(stack, tmp_path, "tally", "xyz")
    assert code == 2 and "64-hex" in err

    code, text, err = _cli(stack, tmp_path, "history", "Q42", "name")
    assert code == 0, err
    entries = [line.split("\t") for line in text.splitlines()]
    assert entries[0][0] == "lsn=1" and entries[-1][3] == slot.adams.hex()
    code, text, err = _cli(stack, tmp_path, "history", "Q42", "name", "--json", "--limit", "1")
    assert [json.loads(x)["lsn"] for x in text.splitlines()] == [1]

    code, text, err = _cli(stack, tmp_path, "lenses")
    assert code == 0, err
    assert [x.split("\t")[0] for x in text.splitlines()[:3]] == ["consensus", "skeptic", "recent"]
    assert "contested_margin=0.1" in text and "candidates_max=" in text
    body = json.loads(_cli(stack, tmp_path, "lenses", "--json")[1])
    assert [x["name"] for x in body["lenses"]] == ["consensus", "skeptic", "recent"]
