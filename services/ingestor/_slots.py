"""Ranked slot indexes: an in-memory mirror of a slot's candidates, kept sorted per lens.

Recomputing a slot's view from all its candidates costs O(candidates) per vote, which a slot of
10,000 candidates cannot afford. A ``SlotIndex`` keeps each lens' ranking as a sorted list of
keys (``_lenses.rank_key``), so a changed candidate moves in O(log n) and the view is built from
the first ``max(candidates_max, 2)`` entries. A change that stays outside every lens' visible
top leaves the view as it was, and the engine skips rebuilding it.

The index is derived state: built from the slot's ``SC:`` keys when first needed, updated with
every change the engine writes, and dropped whenever a batch fails to commit, so it always
equals what a fresh load would give. ``SlotCache`` bounds the memory by the number of
candidates held (least recently used slots are dropped first).
"""

from __future__ import annotations

import bisect
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable

from stemedb.ingestor._lenses import (
    CandidateFigures,
    build,
    candidate_message,
    rank_key,
    retired_key,
)
from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy

from stemedb.v1 import query_pb2, records_pb2

__all__ = ["SlotCache", "SlotIndex"]

_Key = tuple[object, ...]


class SlotIndex:
    """One slot's candidates, ranked under every lens."""

    def __init__(
        self,
        policy: TrustPolicy,
        candidates: Iterable[tuple[CandidateFigures, bytes]],
        retired_epochs: frozenset[bytes],
        view: bytes | None,
    ) -> None:
        self._policy = policy
        self._visible = max(policy.candidates_max, 2)
        self.retired_epochs = retired_epochs
        self.view = view  # the slot's MV: value as written
        self.view_lsn = 0 if view is None else query_pb2.SlotView.FromString(view).lsn
        self.verdicts: dict[str, tuple[int, bytes]] = {}
        if view is not None:
            for r in query_pb2.SlotView.FromString(view).resolutions:
                self.verdicts[r.lens] = (r.status, r.winner.hash)
        self._messages: dict[tuple[str, bytes], query_pb2.Candidate] = {}
        self._assertions: dict[bytes, records_pb2.Assertion] = {}
        self._figures: dict[bytes, CandidateFigures] = {}
        self._ranked: dict[str, list[_Key]] = {lens: [] for lens in LENS_NAMES}
        self._retired: list[tuple[int, bytes]] = []
        self._epoch: dict[bytes, bytes] = {}  # candidate -> its epoch (b"" for none)
        self.epochs: Counter[bytes] = Counter()  # the slot's epochs, with their candidates
        for f, epoch in candidates:
            self._figures[f.hash] = f
            self._epoch[f.hash] = epoch
            if epoch:
                self.epochs[epoch] += 1
        self._rebuild()

    @property
    def size(self) -> int:
        return len(self._figures)

    def _rebuild(self) -> None:
        live = [f for f in self._figures.values() if not f.retired]
        for lens in LENS_NAMES:
            self._ranked[lens] = sorted(rank_key(lens, f, self._policy) for f in live)
        self._retired = sorted(retired_key(f) for f in self._figures.values() if f.retired)

    def _shown(self, f: CandidateFigures) -> bool:
        """Whether ``f`` (as indexed now) is among what some lens' view looks at."""
        if f.retired:
            key = retired_key(f)
            return bisect.bisect_left(self._retired, key) < self._policy.candidates_max
        return any(
            bisect.bisect_left(self._ranked[lens], rank_key(lens, f, self._policy)) < self._visible
            for lens in LENS_NAMES
        )

    def _remove(self, f: CandidateFigures) -> None:
        if f.retired:
            key = retired_key(f)
            i = bisect.bisect_left(self._retired, key)
            if i == len(self._retired) or self._retired[i] != key:
                raise ValueError("slot index lost a retired candidate")
            del self._retired[i]
            return
        for lens in LENS_NAMES:
            ranked = self._ranked[lens]
            rkey = rank_key(lens, f, self._policy)
            i = bisect.bisect_left(ranked, rkey)
            if i == len(ranked) or ranked[i] != rkey:
                raise ValueError("slot index lost a candidate")
            del ranked[i]

    def _insert(self, f: CandidateFigures) -> None:
        if f.retired:
            bisect.insort(self._retired, retired_key(f))
            return
        for lens in LENS_NAMES:
            bisect.insort(self._ranked[lens], rank_key(lens, f, self._policy))

    def put(self, f: CandidateFigures, epoch: bytes) -> bool:
        """Add or update a candidate; False when no lens' view can have changed."""
        old = self._figures.get(f.hash)
        if old is None:
            self._epoch[f.hash] = epoch
            if epoch:
                self.epochs[epoch] += 1
            self._figures[f.hash] = f
            self._insert(f)
            return True  # candidates_total changed
        for lens in LENS_NAMES:
            self._messages.pop((lens, f.hash), None)
        self._assertions.pop(f.hash, None)  # a re-append may have merged co-signers
        was_shown = self._shown(old)
        self._remove(old)
        self._figures[f.hash] = f
        self._insert(f)
        return was_shown or self._shown(f)

    def retire(self, retired_epochs: frozenset[bytes]) -> bool:
        """Apply a new set of retired epochs; False when it is the same set."""
        if retired_epochs == self.retired_epochs:
            return False
        self.retired_epochs = retired_epochs
        for h, f in list(self._figures.items()):
            retired = self._epoch[h] in retired_epochs
            if retired != f.retired:
                self._figures[h] = CandidateFigures(**{**f.__dict__, "retired": retired})
                for lens in LENS_NAMES:
                    self._messages.pop((lens, h), None)
        self._rebuild()
        return True

    def _top(self, lens: str) -> list[CandidateFigures]:
        # The last element of every rank key is the candidate's hash.
        return [self._figures[k[-1]] for k in self._ranked[lens][: self._visible]]  # type: ignore[index]

    def _message(self, lens: str, f: CandidateFigures) -> query_pb2.Candidate:
        message = self._messages.get((lens, f.hash))
        if message is None:
            message = candidate_message(lens, f, self._policy)
            self._messages[(lens, f.hash)] = message
        return message

    def build_view(
        self,
        subject: str,
        predicate: str,
        assertion_of: Callable[[bytes], records_pb2.Assertion],
    ) -> query_pb2.SlotView:
        def cached_assertion(h: bytes) -> records_pb2.Assertion:
            found = self._assertions.get(h)
            if found is None:
                found = self._assertions[h] = assertion_of(h)
            return found

        retired = [self._figures[h] for _lsn, h in self._retired[: self._policy.candidates_max]]
        return query_pb2.SlotView(
            subject=subject,
            predicate=predicate,
            resolutions=[
                build(
                    subject,
                    predicate,
                    lens,
                    self._top(lens),
                    retired,
                    self.size,
                    self._policy,
                    cached_assertion,
                    self._message,
                )
                for lens in LENS_NAMES
            ],
        )


class SlotCache:
    """Slot indexes by slot key, least recently used dropped beyond ``candidates_max``."""

    def __init__(self, candidates_max: int) -> None:
        self._candidates_max = candidates_max
        self._slots: OrderedDict[bytes, SlotIndex] = OrderedDict()

    def get(self, slot: bytes) -> SlotIndex | None:
        index = self._slots.get(slot)
        if index is not None:
            self._slots.move_to_end(slot)
        return index

    def put(self, slot: bytes, index: SlotIndex) -> None:
        self._slots[slot] = index
        self._slots.move_to_end(slot)

    def trim(self) -> None:
        """Drop least recently used slots until the candidates held fit the bound."""
        held = sum(i.size for i in self._slots.values())
        while held > self._candidates_max and len(self._slots) > 1:
            _slot, index = self._slots.popitem(last=False)
            held -= index.size

    def clear(self) -> None:
        self._slots.clear()
