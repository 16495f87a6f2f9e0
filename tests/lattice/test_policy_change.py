"""A new trust policy: views re-derived from stored records, Query RPCs UNAVAILABLE meanwhile."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import grpc
from stemedb.ingestor._policy import load_policy

from stemedb.v1 import query_pb2
from stemedb.v1 import records_pb2 as pb
from tests.lattice.stack import (
    PUB,
    SOURCE,
    Lab,
    hash_of,
    running_lab,
    signed_vote,
    write_policy,
)
from tests.support import start_ingestor, wait_until

SLOTS = 2000
ASSERTIONS = 10_000


def _unsigned(i: int) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=f"s{i % SLOTS}", predicate="p", object=pb.Value(number=float(i)),
            confidence=0.5, source_hash=SOURCE,
        )
    )  # fmt: skip


def _metric(address: str, name: str) -> float:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_policy_change_rederives_from_stored_records(tmp_path: Path) -> None:
    with running_lab(tmp_path) as lab:
        x, y = _unsigned(0), _unsigned(SLOTS)  # both in slot s0
        lab.append(*(_unsigned(i) for i in range(ASSERTIONS)))
        lsns = lab.append(
            signed_vote(hash_of(x), "A", 1.0, 1),
            signed_vote(hash_of(x), "B", 1.0, 1),
            signed_vote(hash_of(y), "C", 1.0, 1),
        )
        before = lab.resolve("s0", "p", min_lsn=lsns[-1])
        assert before.winner.hash == hash_of(x) and before.score == 2.0
        lab.ingestor.terminate()
        # A and B lose all trust: y (C's) must win, from the stored records alone.
        new_policy = write_policy(
            tmp_path / "policy2.json", {"agents": {PUB["A"].hex(): 0, PUB["B"].hex(): 0}}
        )
        for segment in lab.wal_dir.glob("*.wal"):
            segment.rename(segment.with_suffix(".hidden"))  # the WAL is not read for this
        restarted = start_ingestor(
            lab.wal_dir, tmp_path / "db", "--trust-policy", str(new_policy), log_dir=tmp_path
        )
        lab.ingestor = restarted
        try:
            _check_rederived(lab, x, y, lsns, before, new_policy)
        finally:
            restarted.kill()


def _check_rederived(
    lab: Lab,
    x: pb.Record,
    y: pb.Record,
    lsns: list[int],
    before: query_pb2.Resolution,
    new_policy: Path,
) -> None:
    lab.ingestor.wait_ready()
    codes = set()

    def answered() -> bool:
        try:
            lab.resolve("s0", "p")
            return True
        except grpc.RpcError as exc:
            codes.add(exc.code())
            assert "re-derived" in (exc.details() or ""), exc.details()
            return False

    wait_until(answered, 120, "the views to be re-derived")
    assert codes == {grpc.StatusCode.UNAVAILABLE}
    after = lab.resolve("s0", "p")
    assert after.winner.hash == hash_of(y) and after.score == 1.0
    assert after.policy_hash == load_policy(new_policy).policy_hash
    assert lab.tally(hash_of(x)).tally.support == 0.0
    assert _metric(lab.ingestor.metrics, "stemedb_lattice_rederive_progress_ratio") == 1.0
    log = lab.ingestor.log_text()
    assert "re-deriving views" in log or "views re-derived" in log
    # The history before the checkpoint's LSN keeps what was answered then, under the old
    # policy; the entry at that LSN is the re-derived one (docs/lattice.md).
    at_checkpoint = lab.resolve("s0", "p", as_of_lsn=lsns[-1])
    at_checkpoint.as_of_lsn = after.as_of_lsn
    assert at_checkpoint == after
    old = lab.resolve("s0", "p", as_of_lsn=lsns[-2])
    assert old.winner.hash == hash_of(x) and old.policy_hash == before.policy_hash
