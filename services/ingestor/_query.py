"""QueryService reads (DESIGN 9.6) as plain synchronous calls over a StoreDb.

``applied_lsn`` is sampled before RocksDB is read. A slot's view (``MV:``) carries the LSN of
the record that last changed it; when that is at or below the sampled LSN the view is the answer
(one key read), otherwise the apply thread moved on in between and the answer comes from the
slot's history at the sampled LSN (one backward seek). So every answer is exactly what the log
up to its ``as_of_lsn`` gives, whatever the timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from stemedb.ingestor._db import ScanResult, SnapshotReader, StoreDb
from stemedb.ingestor._errors import IngestorError, InvalidRequest
from stemedb.ingestor._keys import ASSERTION_PREFIX, EPOCH_PREFIX, record_key
from stemedb.ingestor._lattice import (
    SETTLE_KEY,
    SETTLED_PREFIX,
    SLOT_CANDIDATE_PREFIX,
    TALLY_PREFIX,
    VIEW_PREFIX,
    CandidateState,
    Pending,
    SettleQueue,
    epoch_in_force,
    history_key,
    history_prefix,
    retired_epochs,
    slot_key,
    split_slot,
    view_key,
)
from stemedb.ingestor._lenses import LENS_DESCRIPTIONS, empty_resolution, resolve
from stemedb.ingestor._paging import decode_page_token, encode_page_token, page_size_of
from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy
from stemedb.ingestor._state import ApplyState
from stemedb.v1 import query_pb2, records_pb2

__all__ = ["HISTORY_SCAN_ENTRIES_MAX", "Query", "ViewsState", "ViewsUnavailable"]

HISTORY_SCAN_ENTRIES_MAX = 10_000  # stored history entries examined per ListHistory page
_SUBJECT_BYTES_MAX = 1024
_PREDICATE_BYTES_MAX = 256
_HASH_BYTES = 32
_LSN_DIGITS = 20
_SCOPE_SUBJECT = b"resolve-subject"
_SCOPE_HISTORY = b"history"


class ViewsUnavailable(IngestorError):
    """The views are being re-derived for a new trust policy (UNAVAILABLE)."""


@dataclass
class ViewsState:
    """Whether the views match the policy in force; written by the re-derivation, read here."""

    ready: bool = True
    message: str = ""


def _text(value: str, name: str, limit: int) -> bytes:
    raw = value.encode("utf-8")
    if not raw:
        raise InvalidRequest(f"{name} is required")
    if len(raw) > limit:
        raise InvalidRequest(f"{name} is {len(raw)} bytes, more than the limit of {limit}")
    return raw


def _subject(subject: str) -> str:
    if "\x00" in subject:
        raise InvalidRequest("subject must not contain NUL")
    _text(subject, "subject", _SUBJECT_BYTES_MAX)
    return subject


def lens_index(lens: str) -> int:
    """The position of ``lens`` ('' = consensus) in a SlotView; INVALID_ARGUMENT if unknown."""
    name = lens or "consensus"
    if name not in LENS_NAMES:
        raise InvalidRequest(f"lens {lens!r} is unknown: use one of {', '.join(LENS_NAMES)}")
    return LENS_NAMES.index(name)


def _answer(view: query_pb2.SlotView, lens: int) -> query_pb2.Resolution:
    """A stored view's resolution under one lens, as answered (candidates_total filled in)."""
    res = view.resolutions[lens]
    res.candidates_total = view.candidates_total
    return res


class _SnapshotView(NamedTuple):
    """A slot's MV: value read from the snapshot `Query._settling` took (None: no view)."""

    view: bytes | None


@dataclass
class _Unsettled:
    """A slot that retirements still settling have not rewritten yet, read from one snapshot:
    the pending retirements it has not seen (LSN order) and its candidates (untouched since
    the first of them: touching a slot settles it)."""

    snap: SnapshotReader
    queue: SettleQueue
    relevant: list[Pending]
    states: list[tuple[bytes, CandidateState]]
    epochs: set[bytes]

    @classmethod
    def of(
        cls, snap: SnapshotReader, queue: SettleQueue, slot: bytes, wanted: int
    ) -> _Unsettled | None:
        """The slot's unsettled retirements up to LSN ``wanted`` that can touch it (None when
        there are none: its stored view and history are the answer)."""
        marked = snap.get(SETTLED_PREFIX + slot)
        settled = 0 if marked is None else int.from_bytes(marked, "big")
        relevant = [p for p in queue.pending if settled < p.lsn <= wanted]
        if not relevant:
            return None
        prefix = SLOT_CANDIDATE_PREFIX + slot + b"\x00"
        states = [
            (bytes.fromhex(key[len(prefix) :].decode()), CandidateState.decode(value, key))
            for key, value in snap.scan(prefix)
            if len(key) == len(prefix) + 2 * _HASH_BYTES
        ]
        epochs = {state.epoch for _h, state in states if state.epoch}
        if not any(p.superseded in epochs for p in relevant):
            return None
        return cls(snap, queue, relevant, states, epochs)

    def resolution(
        self, subject: str, predicate: str, lens: str, lsn: int, policy: TrustPolicy
    ) -> query_pb2.Resolution:
        """The slot's resolution at ``lsn`` (at or after the first relevant retirement), with
        the retirements applied up to it: what an eager rewrite stored."""
        snap = self.snap
        later = frozenset(p.epoch for p in self.queue.pending if p.lsn > lsn)

        def in_force(epoch: bytes) -> bool:
            return epoch_in_force(snap.get(record_key(EPOCH_PREFIX, epoch)), policy)

        def assertion_of(h: bytes) -> records_pb2.Assertion:
            stored = snap.get(record_key(ASSERTION_PREFIX, h))
            if stored is None:
                raise IngestorError(f"candidate {h.hex()} has no H: record")
            return records_pb2.Record.FromString(stored).assertion

        retired = retired_epochs(self.epochs, snap.scan, in_force, later)
        figures = [state.figures(h, state.epoch in retired) for h, state in self.states]
        res = resolve(subject, predicate, lens, figures, policy, assertion_of)
        res.as_of_lsn = lsn
        return res

    def history(
        self, subject: str, predicate: str, lens: int, policy: TrustPolicy
    ) -> list[tuple[bytes, query_pb2.HistoryEntry]]:
        """The history entries (key, entry) under ``lens`` that settling will write for the
        relevant retirements: one where the lens' winner or status changes, at its LSN."""
        view = self.snap.get(view_key(slot_key(subject, predicate)))
        previous: tuple[int, bytes] | None = None
        if view is not None:
            stored = query_pb2.SlotView.FromString(view).resolutions[lens]
            previous = (stored.status, stored.winner.hash)
        slot = slot_key(subject, predicate)
        out = []
        for p in self.relevant:
            res = self.resolution(subject, predicate, LENS_NAMES[lens], p.lsn, policy)
            verdict = (res.status, res.winner.hash)
            if verdict != previous:
                entry = query_pb2.HistoryEntry(
                    lsn=p.lsn, status=res.status, winner_hash=res.winner.hash, score=res.score
                )
                out.append((history_key(slot, p.lsn), entry))
            previous = verdict
        return out


class Query:
    def __init__(
        self, db: StoreDb, state: ApplyState, policy: TrustPolicy, views: ViewsState
    ) -> None:
        self._db = db
        self._state = state
        self._policy = policy
        self._views = views

    def _ready(self) -> int:
        if not self._views.ready:
            raise ViewsUnavailable(
                f"views are being re-derived for a new trust policy: {self._views.message}"
            )
        return self._state.applied_lsn

    # -- Resolve -----------------------------------------------------------------------------

    def _from_history(self, slot: bytes, lens: int, lsn: int) -> query_pb2.Resolution | None:
        prefix = history_prefix(slot)
        found = self._db.last_before(prefix, history_key(slot, lsn))
        if found is not None and len(found[0]) == len(prefix) + _LSN_DIGITS:
            return _answer(query_pb2.SlotHistoryEntry.FromString(found[1]).view, lens)
        if found is None:
            return None
        # A longer predicate sharing this prefix sorted in between: look at every entry.
        best: bytes | None = None
        start = prefix
        while True:
            page = self._db.scan(prefix, start, 1000)
            for key, value in page.entries:
                if len(key) == len(prefix) + _LSN_DIGITS and int(key[-_LSN_DIGITS:]) <= lsn:
                    best = value
            if page.next_key is None:
                break
            start = page.next_key
        if best is None:
            return None
        return _answer(query_pb2.SlotHistoryEntry.FromString(best).view, lens)

    def _resolution(
        self, subject: str, predicate: str, lens: int, raw_view: bytes | None, applied: int
    ) -> query_pb2.Resolution:
        res: query_pb2.Resolution | None = None
        if raw_view is not None:
            view = query_pb2.SlotView.FromString(raw_view)
            if view.lsn <= applied:
                res = _answer(view, lens)
            else:
                res = self._from_history(slot_key(subject, predicate), lens, applied)
        if res is None:
            res = empty_resolution(subject, predicate, LENS_NAMES[lens], self._policy)
        res.as_of_lsn = applied
        return res

    def _settling(
        self, subject: str, predicate: str, lens: int, as_of_lsn: int, raw: bytes | None
    ) -> tuple[query_pb2.Resolution, int] | _SnapshotView | None:
        """The answer, and the LSN it reflects, for a slot a settling retirement has not
        rewritten yet (None: the stored view or history is the answer). Read from one
        snapshot; the slot's candidates are untouched since that retirement (touching a slot
        settles it), so computing its view from them, with the retirements applied up to the
        LSN asked about, is what an eager rewrite would have stored. ``raw``: LQ:settle as
        read with the view. Once it took its snapshot and finds no overlay to apply, it answers
        the slot's view as of that snapshot (`_SnapshotView`): the view read before it may
        predate a settling that the snapshot already shows done (its RS: mark)."""
        if raw is None or not SettleQueue.decode(raw).pending:
            return None  # nothing settling: the common case costs this one read
        snap = self._db.snapshot_reader()
        raw = snap.get(SETTLE_KEY)
        queue = SettleQueue.decode(raw) if raw is not None else None
        if queue is None or not queue.pending or as_of_lsn > queue.lsn:
            return _SnapshotView(snap.get(view_key(slot_key(subject, predicate))))
        wanted = as_of_lsn or queue.lsn
        slot = slot_key(subject, predicate)
        unsettled = _Unsettled.of(snap, queue, slot, wanted)
        if unsettled is None:
            return _SnapshotView(snap.get(view_key(slot)))
        res = unsettled.resolution(subject, predicate, LENS_NAMES[lens], wanted, self._policy)
        return res, queue.lsn

    def resolve(
        self, subject: str, predicate: str, lens: str, as_of_lsn: int
    ) -> query_pb2.ResolveResponse:
        _subject(subject)
        _text(predicate, "predicate", _PREDICATE_BYTES_MAX)
        index = lens_index(lens)
        applied = self._ready()
        if as_of_lsn > applied:
            raise InvalidRequest(f"as_of_lsn {as_of_lsn} is above applied_lsn {applied}")
        slot = slot_key(subject, predicate)
        # One RocksDB read: the view and the settle queue (empty but for a settling epoch); an
        # answer as of an LSN comes from the history, so it reads only the queue.
        if as_of_lsn == 0:
            queue, view = self._db.multi_get([SETTLE_KEY, view_key(slot)])
        else:
            queue, view = self._db.get(SETTLE_KEY), None
        settling = self._settling(subject, predicate, index, as_of_lsn, queue)
        if isinstance(settling, _SnapshotView):
            view = settling.view
        elif settling is not None:
            res, at = settling
            return query_pb2.ResolveResponse(resolution=res, applied_lsn=max(at, applied))
        if as_of_lsn == 0:
            res = self._resolution(subject, predicate, index, view, applied)
        else:
            found = self._from_history(slot, index, as_of_lsn)
            res = found or empty_resolution(subject, predicate, LENS_NAMES[index], self._policy)
            res.as_of_lsn = as_of_lsn
        return query_pb2.ResolveResponse(resolution=res, applied_lsn=applied)

    def resolve_subject(
        self, subject: str, lens: str, page_size: int, page_token: str
    ) -> query_pb2.ResolveSubjectResponse:
        raw = _subject(subject).encode("utf-8")
        index = lens_index(lens)
        limit = page_size_of(page_size)
        prefix = VIEW_PREFIX + raw + b"\x00"
        start = decode_page_token(page_token, _SCOPE_SUBJECT + bytes((index,)), prefix)
        applied = self._ready()
        page = self._db.scan(prefix, start, limit)
        queue = self._db.get(SETTLE_KEY)
        response = query_pb2.ResolveSubjectResponse(applied_lsn=applied)
        for key, value in page.entries:
            subject_text, predicate = split_slot(key[len(VIEW_PREFIX) :])
            settling = self._settling(subject_text, predicate, index, applied, queue)
            if isinstance(settling, _SnapshotView):
                value = settling.view or value
            elif settling is not None:
                response.resolutions.append(settling[0])
                continue
            response.resolutions.append(
                self._resolution(subject_text, predicate, index, value, applied)
            )
        if page.next_key is not None:
            response.next_page_token = encode_page_token(
                _SCOPE_SUBJECT + bytes((index,)), prefix, page.next_key
            )
        return response

    # -- tallies, history, lenses ------------------------------------------------------------

    def get_tally(self, assertion_hash: bytes) -> query_pb2.GetTallyResponse:
        if len(assertion_hash) != _HASH_BYTES:
            raise InvalidRequest(
                f"assertion_hash must be {_HASH_BYTES} bytes, got {len(assertion_hash)}"
            )
        applied = self._ready()
        key = TALLY_PREFIX + assertion_hash.hex().encode()
        raw = self._db.get(key)
        response = query_pb2.GetTallyResponse(
            applied_lsn=applied, policy_hash=self._policy.policy_hash
        )
        if raw is not None:
            response.found = True
            response.tally.CopyFrom(CandidateState.decode(raw, key).tally(assertion_hash))
        return response

    def list_history(
        self, subject: str, predicate: str, lens: str, page_size: int, page_token: str
    ) -> query_pb2.ListHistoryResponse:
        _subject(subject)
        _text(predicate, "predicate", _PREDICATE_BYTES_MAX)
        index = lens_index(lens)
        limit = page_size_of(page_size)
        slot = slot_key(subject, predicate)
        prefix = history_prefix(slot)
        scope = _SCOPE_HISTORY + bytes((index,))
        start = decode_page_token(page_token, scope, prefix)
        applied = self._ready()
        response = query_pb2.ListHistoryResponse(applied_lsn=applied)
        read_page: Callable[[bytes, bytes, int], ScanResult] = self._db.scan
        pending: list[tuple[bytes, query_pb2.HistoryEntry]] = []
        queue = self._db.get(SETTLE_KEY)
        if queue is not None and SettleQueue.decode(queue).pending:
            # Retirements are settling: the stored entries and those that settling will write
            # for this slot (at their LSNs, after every stored one) come from one snapshot, so
            # the page is what an eager rewrite would show, however settling races this read.
            snap = self._db.snapshot_reader()
            read_page = snap.page
            raw = snap.get(SETTLE_KEY)
            settling = None if raw is None else SettleQueue.decode(raw)
            unsettled = None
            if settling is not None and settling.pending:
                unsettled = _Unsettled.of(snap, settling, slot, applied)
            if unsettled is not None:
                future = unsettled.history(subject, predicate, index, self._policy)
                pending = [(key, entry) for key, entry in future if key >= start]
        entries = self._history(read_page, prefix, start, index, applied, pending)
        for examined, (key, entry) in enumerate(entries):
            if len(response.entries) == limit or examined == HISTORY_SCAN_ENTRIES_MAX:
                response.next_page_token = encode_page_token(scope, prefix, key)
                return response
            if entry is not None:
                response.entries.append(entry)
        return response

    @staticmethod
    def _history(
        read_page: Callable[[bytes, bytes, int], ScanResult],
        prefix: bytes,
        start: bytes,
        lens: int,
        applied: int,
        pending: list[tuple[bytes, query_pb2.HistoryEntry]],
    ) -> Iterator[tuple[bytes, query_pb2.HistoryEntry | None]]:
        """The slot's history entries from ``start`` in key order, each with the entry that
        ListHistory shows under ``lens`` (None: the lens did not change there), then the
        ``pending`` ones."""
        name = LENS_NAMES[lens]
        while True:
            page = read_page(prefix, start, 1000)
            for key, value in page.entries:
                if len(key) != len(prefix) + _LSN_DIGITS:
                    yield key, None  # another slot whose predicate extends this one
                    continue
                if int(key[-_LSN_DIGITS:]) > applied:
                    yield from pending  # none: a record after them settled the slot
                    return  # applied after the sampled LSN: not part of this answer
                entry = query_pb2.SlotHistoryEntry.FromString(value)
                if name not in entry.changed_lenses:
                    yield key, None
                    continue
                res = entry.view.resolutions[lens]
                yield (
                    key,
                    query_pb2.HistoryEntry(
                        lsn=entry.lsn,
                        status=res.status,
                        winner_hash=res.winner.hash,
                        score=res.score,
                    ),
                )
            if page.next_key is None:
                yield from pending
                return
            start = page.next_key

    def list_lenses(self) -> query_pb2.ListLensesResponse:
        applied = self._ready()
        parameters = self._policy.lens_parameters()
        response = query_pb2.ListLensesResponse(
            policy_hash=self._policy.policy_hash,
            candidates_max=self._policy.candidates_max,
            applied_lsn=applied,
        )
        for name in LENS_NAMES:
            lens = response.lenses.add(name=name, description=LENS_DESCRIPTIONS[name])
            lens.parameters.update(parameters[name])
        return response
