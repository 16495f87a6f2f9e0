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
    "empty_resolution",
    "resolve",
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


def resolve(
    subject: str,
    predicate: str,
    lens: str,
    candidates: Sequence[CandidateFigures],
    policy: TrustPolicy,
    assertion_of: Callable[[bytes], records_pb2.Assertion],
) -> query_pb2.Resolution:
    """The slot's resolution under ``lens``; ``assertion_of`` gives the winner's record."""
    res = empty_resolution(subject, predicate, lens, policy)
    res.candidates_total = len(candidates)
    scores = {c.hash: _score(lens, c) for c in candidates}
    live = [c for c in candidates if not c.retired]
    retired = sorted((c for c in candidates if c.retired), key=lambda c: (c.first_lsn, c.hash))
    qualified = {c.hash for c in live}
    if lens == "recent":
        ranked = sorted(live, key=lambda c: (-c.last_lsn, c.hash))
    else:
        ranked = sorted(live, key=lambda c: (-scores[c.hash], c.first_lsn, c.hash))
    if lens == "skeptic":
        qualified = {c.hash for c in live if c.supporters >= policy.min_supporters}
        ranked = [c for c in ranked if c.hash in qualified] + [
            c for c in ranked if c.hash not in qualified
        ]
    for c in (ranked + retired)[: policy.candidates_max]:
        res.candidates.append(
            query_pb2.Candidate(
                assertion_hash=c.hash,
                score=scores[c.hash],
                support=c.support,
                dispute=c.dispute,
                supporters=c.supporters,
                disputers=c.disputers,
                retired=c.retired,
                votes=c.votes,
                first_lsn=c.first_lsn,
                last_lsn=c.last_lsn,
                qualified=c.hash in qualified,
            )
        )
    if not ranked:
        return res  # EMPTY
    best = ranked[0]
    res.score = scores[best.hash]
    res.status = _status(lens, ranked, scores, best.hash in qualified, policy)
    if res.status in (query_pb2.STATUS_RESOLVED, query_pb2.STATUS_CONTESTED):
        res.winner.CopyFrom(
            store_pb2.HashedAssertion(hash=best.hash, assertion=assertion_of(best.hash))
        )
    return res


def _status(
    lens: str,
    ranked: list[CandidateFigures],
    scores: dict[bytes, float],
    best_qualifies: bool,
    policy: TrustPolicy,
) -> query_pb2.Status:
    s1 = scores[ranked[0].hash]
    if lens == "consensus":
        if s1 <= 0:
            return query_pb2.STATUS_UNCERTAIN
        if len(ranked) > 1:
            s2 = scores[ranked[1].hash]
            if s2 > 0 and s1 - s2 < policy.contested_margin * s1:
                return query_pb2.STATUS_CONTESTED
        return query_pb2.STATUS_RESOLVED
    if lens == "skeptic":
        if best_qualifies and s1 >= policy.threshold:
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
