"""The built-in lenses (DESIGN section 9.4): rank a slot's candidates, give a status.

A pure function of the candidates' figures and the policy, shared by the incremental engine and
the oracle (what they must agree on is the figures: tallies, LSNs, retirement). The formulas are
evaluated exactly as written here, in binary64, so every ingestor gets the same bits:

- consensus: score = the tally's score (sum of w_A * e_A). Order: score descending, first LSN,
  hash. UNCERTAIN when s1 <= 0; CONTESTED when s2 > 0 and s1 - s2 < contested_margin * s1.
- skeptic: alpha = 1 + support, beta = 1 + dispute, n = alpha + beta,
  score = alpha / n - 1.645 * sqrt(alpha * beta / (n * n * (n + 1))). Qualified: supporters >=
  min_supporters. Order: qualified first, then the others, each by score descending, first LSN,
  hash. RESOLVED when the best qualified score >= threshold, else UNCERTAIN.
- recent: score = the last LSN at which the assertion was appended; highest first; RESOLVED.

Retired candidates never rank; they follow, by first LSN, with their lens score. At most
``candidates_max`` candidates are listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy

from stemedb.v1 import query_pb2, records_pb2, store_pb2

__all__ = [
    "LENS_DESCRIPTIONS",
    "CandidateFigures",
    "build",
    "candidate_message",
    "empty_resolution",
    "qualifies",
    "rank_key",
    "resolve",
    "retired_key",
    "skeptic_score",
    "slot_view",
]

SKEPTIC_Z = 1.645  # one-sided 95% quantile of the normal distribution

LENS_DESCRIPTIONS = {
    "consensus": "sum over agents of trust x endorsement; CONTESTED when the runner-up is within "
    "contested_margin of the winner, UNCERTAIN when the best score <= 0",
    "skeptic": "lower bound (mean - 1.645 sd) of Beta(1 + support, 1 + dispute) over candidates "
    "with at least min_supporters supporters; RESOLVED at or above threshold",
    "recent": "last writer wins: the candidate appended at the highest LSN",
}


@dataclass(frozen=True)
class CandidateFigures:
    """What a lens knows about one candidate."""

    hash: bytes
    support: float
    dispute: float
    score: float  # the consensus score: sum of w_A * e_A
    supporters: int
    disputers: int
    votes: int
    first_lsn: int
    last_lsn: int
    retired: bool


def skeptic_score(support: float, dispute: float) -> float:
    alpha = 1.0 + support
    beta = 1.0 + dispute
    n = alpha + beta
    return alpha / n - SKEPTIC_Z * math.sqrt(alpha * beta / (n * n * (n + 1.0)))


def _score(lens: str, c: CandidateFigures) -> float:
    if lens == "consensus":
        return c.score
    if lens == "skeptic":
        return skeptic_score(c.support, c.dispute)
    return float(c.last_lsn)


def empty_resolution(
    subject: str, predicate: str, lens: str, policy: TrustPolicy
) -> query_pb2.Resolution:
    return query_pb2.Resolution(
        subject=subject,
        predicate=predicate,
        lens=lens,
        status=query_pb2.STATUS_EMPTY,
        policy_hash=policy.policy_hash,
    )


def rank_key(lens: str, c: CandidateFigures, policy: TrustPolicy) -> tuple[object, ...]:
    """The sort key of a non-retired candidate under ``lens`` (smallest ranks first)."""
    if lens == "consensus":
        return (-c.score, c.first_lsn, c.hash)
    if lens == "skeptic":
        return (0 if qualifies(c, policy) else 1, -_score(lens, c), c.first_lsn, c.hash)
    return (-c.last_lsn, c.hash)


def retired_key(c: CandidateFigures) -> tuple[int, bytes]:
    return (c.first_lsn, c.hash)


def qualifies(c: CandidateFigures, policy: TrustPolicy) -> bool:
    """Whether a non-retired candidate qualifies for the skeptic lens."""
    return c.supporters >= policy.min_supporters


def candidate_message(lens: str, c: CandidateFigures, policy: TrustPolicy) -> query_pb2.Candidate:
    """The Candidate message of ``c`` under ``lens``."""
    return query_pb2.Candidate(
        assertion_hash=c.hash,
        score=_score(lens, c),
        support=c.support,
        dispute=c.dispute,
        supporters=c.supporters,
        disputers=c.disputers,
        retired=c.retired,
        votes=c.votes,
        first_lsn=c.first_lsn,
        last_lsn=c.last_lsn,
        qualified=not c.retired and (lens != "skeptic" or qualifies(c, policy)),
    )


def resolve(
    subject: str,
    predicate: str,
    lens: str,
    candidates: Sequence[CandidateFigures],
    policy: TrustPolicy,
    assertion_of: Callable[[bytes], records_pb2.Assertion],
) -> query_pb2.Resolution:
    """The slot's resolution under ``lens``, from all of its candidates (sorted here)."""
    ranked = sorted(
        (c for c in candidates if not c.retired), key=lambda c: rank_key(lens, c, policy)
    )
    retired = sorted((c for c in candidates if c.retired), key=retired_key)
    return build(subject, predicate, lens, ranked, retired, len(candidates), policy, assertion_of)


def build(
    subject: str,
    predicate: str,
    lens: str,
    ranked: Sequence[CandidateFigures],
    retired: Sequence[CandidateFigures],
    total: int,
    policy: TrustPolicy,
    assertion_of: Callable[[bytes], records_pb2.Assertion],
    message_of: Callable[[str, CandidateFigures], query_pb2.Candidate] | None = None,
) -> query_pb2.Resolution:
    """The resolution from the best non-retired candidates in rank order and the first retired
    ones: at least ``max(candidates_max, 2)`` of the former (when there are that many) and
    ``candidates_max`` of the latter are enough. ``message_of`` may serve cached Candidate
    messages (it must return what ``candidate_message`` would)."""
    if message_of is None:

        def message_of(lens: str, c: CandidateFigures) -> query_pb2.Candidate:
            return candidate_message(lens, c, policy)

    res = empty_resolution(subject, predicate, lens, policy)
    res.candidates_total = total
    shown = list(ranked[: policy.candidates_max])
    shown += list(retired[: policy.candidates_max - len(shown)])
    res.candidates.extend(message_of(lens, c) for c in shown)
    if not ranked:
        return res  # EMPTY
    best = ranked[0]
    res.score = _score(lens, best)
    res.status = _status(lens, ranked, policy)
    if res.status in (query_pb2.STATUS_RESOLVED, query_pb2.STATUS_CONTESTED):
        res.winner.CopyFrom(
            store_pb2.HashedAssertion(hash=best.hash, assertion=assertion_of(best.hash))
        )
    return res


def _status(lens: str, ranked: Sequence[CandidateFigures], policy: TrustPolicy) -> query_pb2.Status:
    s1 = _score(lens, ranked[0])
    if lens == "consensus":
        if s1 <= 0:
            return query_pb2.STATUS_UNCERTAIN
        if len(ranked) > 1:
            s2 = _score(lens, ranked[1])
            if s2 > 0 and s1 - s2 < policy.contested_margin * s1:
                return query_pb2.STATUS_CONTESTED
        return query_pb2.STATUS_RESOLVED
    if lens == "skeptic":
        if qualifies(ranked[0], policy) and s1 >= policy.threshold:
            return query_pb2.STATUS_RESOLVED
        return query_pb2.STATUS_UNCERTAIN
    return query_pb2.STATUS_RESOLVED


def slot_view(
    subject: str,
    predicate: str,
    candidates: Sequence[CandidateFigures],
    policy: TrustPolicy,
    assertion_of: Callable[[bytes], records_pb2.Assertion],
) -> query_pb2.SlotView:
    """The MV: value: the slot under every built-in lens, in LENS_NAMES order."""
    return query_pb2.SlotView(
        subject=subject,
        predicate=predicate,
        resolutions=[
            resolve(subject, predicate, lens, candidates, policy, assertion_of)
            for lens in LENS_NAMES
        ],
    )
