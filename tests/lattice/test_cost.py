"""DESIGN 9.7 point 9: Resolve costs the same with 1 and with 10,000 candidates in the slot."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from stemedb.v1 import query_pb2
from stemedb.v1 import records_pb2 as pb
from tests.lattice.stack import SOURCE, running_lab

CANDIDATES = 10_000
CALLS = 300


def _unsigned(subject: str, i: int) -> pb.Record:
    return pb.Record(
        assertion=pb.Assertion(
            subject=subject, predicate="p", object=pb.Value(number=float(i)),
            confidence=0.5, source_hash=SOURCE,
        )
    )  # fmt: skip


def test_resolve_cost_does_not_grow_with_candidates(tmp_path: Path) -> None:
    with running_lab(tmp_path) as lab:
        lab.append(_unsigned("small", 0))
        lsns = lab.append(*(_unsigned("big", i) for i in range(CANDIDATES)))
        stub = lab.query()
        requests = {
            name: query_pb2.ResolveRequest(subject=name, predicate="p", min_lsn=lsns[-1])
            for name in ("small", "big")
        }
        big = stub.Resolve(requests["big"], timeout=120).resolution
        assert big.candidates_total == CANDIDATES and len(big.candidates) == 10
        small = stub.Resolve(requests["small"], timeout=30).resolution
        assert small.candidates_total == 1
        seconds: dict[str, list[float]] = {"small": [], "big": []}
        for _ in range(CALLS):
            for name, request in requests.items():  # interleaved: the same machine load
                started = time.perf_counter()
                stub.Resolve(request, timeout=30)
                seconds[name].append(time.perf_counter() - started)
        p50 = {name: statistics.median(values) for name, values in seconds.items()}
        print(f"Resolve p50: 1 candidate {p50['small'] * 1e6:.0f} us, "
              f"{CANDIDATES} candidates {p50['big'] * 1e6:.0f} us")  # fmt: skip
        assert p50["big"] < 1.5 * p50["small"]
