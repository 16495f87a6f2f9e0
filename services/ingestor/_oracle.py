"""The plain oracle of the Lattice: every answer computed straight from a list of records.

No RocksDB, no incremental state: ``Oracle(records, policy)`` reads the whole log (pairs of LSN
and Record, in LSN order) and computes, directly from DESIGN sections 9.1 to 9.4, the counted
votes, the endorsements, every tally, the epochs in force, the retired assertions and every
slot's resolution under every lens. It is slow on purpose (sums are recomputed from scratch, in
agents' key order, with exact rational arithmetic); the tests hold the incremental engine of
``_lattice.py`` against it byte for byte. Ranking the figures through a lens is the pure function
of ``_lenses.py``, which both use: what the oracle checks is the incremental state (counted
votes, tallies, signers, LSNs, retirement, slot membership). docs/lattice.md has the formulas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction

from stemedb.ingestor._lenses import CandidateFigures, empty_resolution, resolve
from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy

from stemedb import canonical
from stemedb.v1 import query_pb2, records_pb2

__all__ = ["Oracle", "OracleRun", "OracleTally", "replay"]

_REVOLUTION = records_pb2.SUPERSESSION_TYPE_REVOLUTION
_REFINEMENT = records_pb2.SUPERSESSION_TYPE_REFINEMENT


@dataclass
class _Assertion:
    record: records_pb2.Assertion  # with the union of co-signers, in log order
    first_lsn: int
    last_lsn: int


@dataclass
class _Vote:
    sequence: int
    lsn: int
    weight: float


@dataclass(frozen=True)
class OracleTally:
    support: float
    dispute: float
    score: float
    supporters: int
    disputers: int
    votes: int

    def message(self, assertion_hash: bytes) -> query_pb2.Tally:
        return query_pb2.Tally(
            assertion_hash=assertion_hash,
            support=self.support,
            dispute=self.dispute,
            supporters=self.supporters,
            disputers=self.disputers,
            votes=self.votes,
            score=self.score,
        )


@dataclass
class Oracle:
    policy: TrustPolicy
    assertions: dict[bytes, _Assertion] = field(default_factory=dict)
    epochs: dict[bytes, records_pb2.Epoch] = field(default_factory=dict)
    # (assertion hash, agent) -> the counted vote: highest sequence, first in the log among equals
    counted: dict[tuple[bytes, bytes], _Vote] = field(default_factory=dict)
    applied_lsn: int = 0

    @classmethod
    def of(cls, records: Iterable[tuple[int, records_pb2.Record]], policy: TrustPolicy) -> Oracle:
        oracle = cls(policy)
        for lsn, record in records:
            oracle._add(lsn, record)
        return oracle

    def _add(self, lsn: int, record: records_pb2.Record) -> None:
        if lsn <= self.applied_lsn:
            raise ValueError(f"records must come in LSN order: {lsn} after {self.applied_lsn}")
        self.applied_lsn = lsn
        h = canonical.record_hash(record)
        kind = record.WhichOneof("kind")
        if kind == "assertion":
            known = self.assertions.get(h)
            if known is None:
                copy = records_pb2.Assertion()
                copy.CopyFrom(record.assertion)
                self.assertions[h] = _Assertion(copy, lsn, lsn)
                return
            known.last_lsn = lsn
            keys = {s.public_key for s in known.record.signatures}
            for entry in record.assertion.signatures:
                if entry.public_key not in keys:
                    keys.add(entry.public_key)
                    known.record.signatures.append(entry)
        elif kind == "vote":
            v = record.vote
            slot = (v.assertion_hash, v.agent_id)
            current = self.counted.get(slot)
            if current is None or v.sequence > current.sequence:
                self.counted[slot] = _Vote(v.sequence, lsn, v.weight)
        elif kind == "epoch":
            self.epochs.setdefault(h, record.epoch)

    # -- 9.1 the ballot box ----------------------------------------------------------------------

    def endorsements(self, assertion_hash: bytes) -> dict[bytes, float]:
        """e_A(X) for every agent A with one: its counted vote, else the confidence if it signed."""
        out: dict[bytes, float] = {}
        a = self.assertions.get(assertion_hash)
        if a is not None:
            for entry in a.record.signatures:
                out[entry.public_key] = a.record.confidence
        for (x, agent), vote in self.counted.items():
            if x == assertion_hash:
                out[agent] = vote.weight
        return out

    def tally(self, assertion_hash: bytes) -> OracleTally | None:
        if assertion_hash not in self.assertions:
            return None
        support = Fraction(0)
        dispute = Fraction(0)
        supporters = disputers = 0
        endorsed = self.endorsements(assertion_hash)
        for agent in sorted(endorsed):
            e = endorsed[agent]
            w = self.policy.weight(agent)
            if e > 0:
                support += Fraction(w * e)
                supporters += 1 if w > 0 else 0
            elif e < 0:
                dispute += Fraction(w * -e)
                disputers += 1 if w > 0 else 0
        votes = sum(1 for (x, _agent) in self.counted if x == assertion_hash)
        return OracleTally(
            support=float(support),
            dispute=float(dispute),
            score=float(support - dispute),
            supporters=supporters,
            disputers=disputers,
            votes=votes,
        )

    # -- 9.3 epochs ------------------------------------------------------------------------------

    def in_force(self, epoch_hash: bytes) -> bool:
        epoch = self.epochs.get(epoch_hash)
        if epoch is None:
            return False
        return any(
            self.policy.weight(s.public_key) >= self.policy.epoch_authority_min
            for s in epoch.signatures
        )

    def retired(self, assertion_hash: bytes) -> bool:
        a = self.assertions[assertion_hash].record
        if not a.epoch:
            return False
        slot_epochs = {
            other.record.epoch
            for other in self.assertions.values()
            if (other.record.subject, other.record.predicate) == (a.subject, a.predicate)
        }
        for e_hash, epoch in self.epochs.items():
            if epoch.supersedes != a.epoch or not self.in_force(e_hash):
                continue
            if epoch.supersession_type == _REVOLUTION:
                return True
            if epoch.supersession_type == _REFINEMENT and e_hash in slot_epochs:
                return True
        return False

    # -- 9.4 lenses ------------------------------------------------------------------------------

    def slots(self) -> list[tuple[str, str]]:
        return sorted(
            {(a.record.subject, a.record.predicate) for a in self.assertions.values()},
            key=lambda sp: (sp[0].encode(), sp[1].encode()),
        )

    def figures(self, subject: str, predicate: str) -> list[CandidateFigures]:
        out = []
        for h, a in self.assertions.items():
            if (a.record.subject, a.record.predicate) != (subject, predicate):
                continue
            t = self.tally(h)
            if t is None:
                raise ValueError("unreachable: a stored assertion has a tally")
            out.append(
                CandidateFigures(
                    hash=h,
                    support=t.support,
                    dispute=t.dispute,
                    score=t.score,
                    supporters=t.supporters,
                    disputers=t.disputers,
                    votes=t.votes,
                    first_lsn=a.first_lsn,
                    last_lsn=a.last_lsn,
                    retired=self.retired(h),
                )
            )
        return out

    def _assertion_of(self, assertion_hash: bytes) -> records_pb2.Assertion:
        return self.assertions[assertion_hash].record

    def resolve(self, subject: str, predicate: str, lens: str) -> query_pb2.Resolution:
        """What Resolve answers (as_of_lsn left 0), EMPTY for a slot without candidates."""
        figures = self.figures(subject, predicate)
        if not figures:
            return empty_resolution(subject, predicate, lens, self.policy)
        return resolve(subject, predicate, lens, figures, self.policy, self._assertion_of)

    # -- 9.5 materialized views and history -------------------------------------------------

    def view(self, subject: str, predicate: str) -> query_pb2.SlotView:
        """The slot under every lens (``lsn`` left 0: only a replay knows when it changed)."""
        return query_pb2.SlotView(
            subject=subject,
            predicate=predicate,
            resolutions=[self.resolve(subject, predicate, lens) for lens in LENS_NAMES],
        )


@dataclass
class OracleRun:
    """A whole log replayed record by record: the final oracle, every view and its history."""

    oracle: Oracle
    views: dict[bytes, bytes]  # MV: key -> SlotView bytes
    history: dict[bytes, bytes]  # MH: key -> SlotHistoryEntry bytes


def _verdicts(view: query_pb2.SlotView) -> dict[str, tuple[int, bytes]]:
    return {r.lens: (r.status, r.winner.hash) for r in view.resolutions}


def replay(records: Iterable[tuple[int, records_pb2.Record]], policy: TrustPolicy) -> OracleRun:
    """After every record, every slot is recomputed from scratch; a view whose content differs
    from the one before gets that record's LSN and a history entry (slow: for tests)."""
    oracle = Oracle(policy)
    current: dict[tuple[str, str], query_pb2.SlotView] = {}
    history: dict[bytes, bytes] = {}
    for lsn, record in records:
        oracle._add(lsn, record)
        for subject, predicate in oracle.slots():
            view = oracle.view(subject, predicate)
            old = current.get((subject, predicate))
            if old is not None:
                view.lsn = old.lsn
                if view == old:
                    continue
            view.lsn = lsn
            before = {} if old is None else _verdicts(old)
            after = _verdicts(view)
            changed = [lens for lens in LENS_NAMES if before.get(lens) != after[lens]]
            slot = subject.encode() + b"\x00" + predicate.encode()
            entry = query_pb2.SlotHistoryEntry(lsn=lsn, view=view, changed_lenses=changed)
            history[b"MH:" + slot + b"\x00" + b"%020d" % lsn] = entry.SerializeToString(
                deterministic=True
            )
            current[(subject, predicate)] = view
    views = {
        b"MV:" + s.encode() + b"\x00" + p.encode(): v.SerializeToString(deterministic=True)
        for (s, p), v in current.items()
    }
    return OracleRun(oracle, views, history)
