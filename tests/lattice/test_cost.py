"""DESIGN 9.7 point 9: Resolve costs the same with 1 and with 10,000 candidates in the slot.

Structurally: Resolve makes the same single RocksDB read (the view and the settle queue, in one
multi_get) and no scan, whatever the number of candidates. The timed comparison is a benchmark
(tests/bench/test_lattice_bench.py), never a timed assertion here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stemedb.ingestor import ApplyEngine, ApplyState, StoreDb
from stemedb.ingestor._policy import DEFAULT_POLICY
from stemedb.ingestor._query import Query, ViewsState
from stemedb.v1 import records_pb2 as pb
from tests.lattice.lattice_testlib import SOURCE, wal_records

CANDIDATES = 10_000


def _unsigned(subject: str, i: int) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject, predicate="p", object=pb.Value(number=float(i)),
            confidence=0.5, source_hash=SOURCE,
        )
    )  # fmt: skip


class _ReadLog(StoreDb):
    """A StoreDb that logs every read call: (method, keys or prefix)."""

    reads: list[tuple[str, object]]

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(("get", key))
        return super().get(key)

    def multi_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self.reads.append(("multi_get", tuple(keys)))
        return super().multi_get(keys)

    def scan(self, prefix: bytes, start: bytes, limit: int, bytes_max: int | None = None):  # type: ignore[no-untyped-def]
        self.reads.append(("scan", prefix))
        return super().scan(prefix, start, limit, bytes_max)

    def last_before(self, prefix: bytes, key: bytes) -> tuple[bytes, bytes] | None:
        self.reads.append(("last_before", prefix))
        return super().last_before(prefix, key)


def test_resolve_reads_one_key_whatever_the_candidates(tmp_path: Path) -> None:
    db = _ReadLog(tmp_path / "db")
    db.reads = []
    try:
        records = [_unsigned("small", 0), *(_unsigned("big", i) for i in range(CANDIDATES))]
        ApplyEngine(db, DEFAULT_POLICY).apply(wal_records(records))
        query = Query(db, ApplyState(len(records), b""), DEFAULT_POLICY, ViewsState())
        reads: dict[str, list[tuple[str, object]]] = {}
        for name, total in (("small", 1), ("big", CANDIDATES)):
            db.reads = []
            res = query.resolve(name, "p", "consensus", 0).resolution
            assert res.candidates_total == total and len(res.candidates) == min(total, 10)
            reads[name] = db.reads
        assert [method for method, _keys in reads["small"]] == ["multi_get"]
        assert [method for method, _keys in reads["big"]] == ["multi_get"]
        assert len(reads["big"][0][1]) == len(reads["small"][0][1]) == 2  # type: ignore[arg-type]
    finally:
        db.close()
