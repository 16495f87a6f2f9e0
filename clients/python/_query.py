"""The client core's QueryService and LogService requests (no I/O here).

The Lattice's reads (DESIGN 9.6: Resolve, ResolveSubject, GetTally, ListHistory, ListLenses) and
the verifiable log's (DESIGN 13: GetCheckpoint, GetInclusionProof, GetConsistencyProof,
ListRecordLsns) are built here as :class:`~stemedb.client._core.Rpc` values, like the
StoreService reads of :mod:`stemedb.client._core`, and declared once as methods of every client
flavour in :class:`QueryOperations`. Both services are the ingestor's, so they use the store's
channel (its address, TLS and deadline).

Checks: a resolution's winner is an assertion read back, so its hash is recomputed and compared
(:class:`~stemedb.client.ReadMismatch` otherwise), as ``get_assertion`` does. Subjects and
predicates are sent in Unicode NFC, the form they are stored in.
"""

from __future__ import annotations

from typing import TypeVar

from stemedb.client import _protocol as proto
from stemedb.client._core import Pages, Rpc, nfc, operation, paged
from stemedb.client._records import Page
from stemedb.v1 import log_pb2 as lpb
from stemedb.v1 import query_pb2 as qpb

__all__ = [
    "QueryOperations",
    "get_checkpoint",
    "get_consistency_proof",
    "get_inclusion_proof",
    "get_tally",
    "iter_history",
    "iter_record_lsns",
    "iter_resolve_subject",
    "list_history",
    "list_lenses",
    "list_record_lsns",
    "resolve",
    "resolve_subject",
]

T = TypeVar("T")


def _check_resolution(r: qpb.Resolution) -> qpb.Resolution:
    if r.HasField("winner"):
        proto.check_assertion(r.winner.hash, r.winner.assertion)
    return r


def _resolved(resp: qpb.ResolveResponse) -> qpb.ResolveResponse:
    _check_resolution(resp.resolution)
    return resp


def _page_of_resolutions(resp: qpb.ResolveSubjectResponse) -> Page[qpb.Resolution]:
    items = [_check_resolution(r) for r in resp.resolutions]
    return Page(items, resp.next_page_token, resp.applied_lsn)


def _page_of_history(resp: qpb.ListHistoryResponse) -> Page[qpb.HistoryEntry]:
    return Page(list(resp.entries), resp.next_page_token, resp.applied_lsn)


def _page_of_lsns(resp: lpb.ListRecordLsnsResponse) -> Page[int]:
    return Page(list(resp.lsns), resp.next_page_token, resp.applied_lsn)


def _as_is(resp: T) -> T:
    return resp


# --- QueryService ------------------------------------------------------------------------------


def resolve(
    subject: str,
    predicate: str,
    lens: str = "",
    min_lsn: int = 0,
    as_of_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[qpb.ResolveResponse]:
    """The resolution of one slot under ``lens`` (empty: consensus), now (``as_of_lsn`` 0) or
    as of an earlier LSN; waits for ``min_lsn`` first. An unknown lens or an ``as_of_lsn``
    above the applied LSN is INVALID_ARGUMENT (RpcFailed)."""
    request = qpb.ResolveRequest(
        subject=nfc(subject), predicate=nfc(predicate), lens=lens,
        min_lsn=min_lsn, as_of_lsn=as_of_lsn,
    )  # fmt: skip
    return Rpc("query", "Resolve", request, _resolved, timeout)


def resolve_subject(
    subject: str,
    lens: str = "",
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[qpb.Resolution]]:
    """One page of the resolutions of every predicate of ``subject`` (predicate byte order)."""
    request = qpb.ResolveSubjectRequest(
        subject=nfc(subject), lens=lens, page_size=page_size, page_token=page_token,
        min_lsn=min_lsn,
    )  # fmt: skip
    return Rpc("query", "ResolveSubject", request, _page_of_resolutions, timeout)


def iter_resolve_subject(
    subject: str,
    lens: str = "",
    page_size: int = 0,
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Pages[qpb.Resolution]:
    """Every predicate of ``subject`` resolved, page after page."""
    return Pages(
        lambda token: resolve_subject(subject, lens, page_size, token, min_lsn, timeout=timeout)
    )


def get_tally(
    assertion_hash: proto.HashLike, min_lsn: int = 0, *, timeout: float | None = None
) -> Rpc[qpb.GetTallyResponse]:
    """The tally of an assertion (``found`` false when it is unknown) with the policy hash."""
    request = qpb.GetTallyRequest(
        assertion_hash=proto.as_hash(assertion_hash, "assertion_hash"), min_lsn=min_lsn
    )
    return Rpc("query", "GetTally", request, _as_is, timeout)


def list_history(
    subject: str,
    predicate: str,
    lens: str = "",
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[qpb.HistoryEntry]]:
    """One page of a slot's changes of winner or status under ``lens``, oldest first (a page
    may hold fewer than ``page_size`` entries and still not be the last)."""
    request = qpb.ListHistoryRequest(
        subject=nfc(subject), predicate=nfc(predicate), lens=lens, page_size=page_size,
        page_token=page_token, min_lsn=min_lsn,
    )  # fmt: skip
    return Rpc("query", "ListHistory", request, _page_of_history, timeout)


def iter_history(
    subject: str,
    predicate: str,
    lens: str = "",
    page_size: int = 0,
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Pages[qpb.HistoryEntry]:
    """Every change of a slot's winner or status under ``lens``, oldest first."""
    return Pages(
        lambda token: list_history(
            subject, predicate, lens, page_size, token, min_lsn, timeout=timeout
        )
    )


def list_lenses(*, timeout: float | None = None) -> Rpc[qpb.ListLensesResponse]:
    """The built-in lenses, their descriptions and the parameters in force."""
    return Rpc("query", "ListLenses", qpb.ListLensesRequest(), _as_is, timeout)


# --- LogService --------------------------------------------------------------------------------


def get_checkpoint(*, timeout: float | None = None) -> Rpc[lpb.GetCheckpointResponse]:
    """The newest signed checkpoint the store has applied, and the verifier key it serves
    (pin your own: the served copy is for first contact)."""
    return Rpc("log", "GetCheckpoint", lpb.GetCheckpointRequest(), _as_is, timeout)


def get_inclusion_proof(
    lsn: int, tree_size: int = 0, *, timeout: float | None = None
) -> Rpc[lpb.GetInclusionProofResponse]:
    """The audit path of the record of ``lsn`` in the tree of ``tree_size`` (0: the served
    checkpoint's). Verify it with :mod:`stemedb.merkle`."""
    request = lpb.GetInclusionProofRequest(lsn=lsn, tree_size=tree_size)
    return Rpc("log", "GetInclusionProof", request, _as_is, timeout)


def get_consistency_proof(
    first_size: int, second_size: int, *, timeout: float | None = None
) -> Rpc[lpb.GetConsistencyProofResponse]:
    """The proof that the tree of ``first_size`` is a prefix of the tree of ``second_size``."""
    request = lpb.GetConsistencyProofRequest(first_size=first_size, second_size=second_size)
    return Rpc("log", "GetConsistencyProof", request, _as_is, timeout)


def list_record_lsns(
    content_hash: proto.HashLike,
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[int]]:
    """One page of the LSNs at which a record was appended, ascending."""
    request = lpb.ListRecordLsnsRequest(
        hash=proto.as_hash(content_hash, "hash"), page_size=page_size, page_token=page_token,
        min_lsn=min_lsn,
    )  # fmt: skip
    return Rpc("log", "ListRecordLsns", request, _page_of_lsns, timeout)


def iter_record_lsns(
    content_hash: proto.HashLike, page_size: int = 0, min_lsn: int = 0, *,
    timeout: float | None = None,
) -> Pages[int]:  # fmt: skip
    """Every LSN at which a record was appended, page after page."""
    h = proto.as_hash(content_hash, "hash")
    return Pages(lambda token: list_record_lsns(h, page_size, token, min_lsn, timeout=timeout))


class QueryOperations:
    """The QueryService and LogService operations of a (writer, store) client, declared once
    for both flavours (mixed into :class:`~stemedb.client.Client` and
    :class:`~stemedb.client.AsyncClient`)."""

    resolve = operation(resolve)
    resolve_subject = operation(resolve_subject)
    get_tally = operation(get_tally)
    list_history = operation(list_history)
    list_lenses = operation(list_lenses)
    iter_resolve_subject = paged(iter_resolve_subject)
    iter_history = paged(iter_history)
    get_checkpoint = operation(get_checkpoint)
    get_inclusion_proof = operation(get_inclusion_proof)
    get_consistency_proof = operation(get_consistency_proof)
    list_record_lsns = operation(list_record_lsns)
    iter_record_lsns = paged(iter_record_lsns)
