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
    lens_score,
    qualifies,
    rank_key,
    retired_key,
    verdict,
)
from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy
from stemedb.ingestor._wire import (
    candidate_figures_bytes,
    candidate_lens_bytes,
    field_bytes,
    field_message,
    resolution_bytes,
)
from stemedb.v1 import query_pb2

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
        self.settled_lsn = 0  # pending retirements up to this LSN are applied (_lattice.py)
        self.view = view  # the slot's MV: value as written
        self.view_content: bytes | None = None  # the same without its lsn
        self.verdicts: dict[str, tuple[int, bytes]] = {}
        self._winners: dict[bytes, bytes] = {}  # hash -> HashedAssertion bytes
        if view is not None:
            parsed = query_pb2.SlotView.FromString(view)
            for r in parsed.resolutions:
                self.verdicts[r.lens] = (r.status, r.winner.hash)
                if r.winner.hash and r.winner.hash not in self._winners:
                    # The view holds its winners as the engine encoded them, with the
                    # signatures of their H: record (a merge rewrites the view): no H: read
                    # (a random read in a big database) when the slot is loaded again.
                    self._winners[r.winner.hash] = r.winner.SerializeToString(deterministic=True)
            parsed.ClearField("lsn")
            self.view_content = parsed.SerializeToString(deterministic=True)
        # lens -> hash -> Candidate bytes (framed as Resolution field 7)
        self._encoded: dict[str, dict[bytes, bytes]] = {lens: {} for lens in LENS_NAMES}
        self._shared: dict[bytes, bytes] = {}  # hash -> its Candidate fields 3-10
        self._heads: tuple[bytes, dict[str, bytes]] | None = None  # encoded slot and lens fields
        # Each lens' encoded Resolution and verdict, rebuilt only when a change reaches it.
        self._lens_bytes: dict[str, bytes] = {}
        self._lens_verdicts: dict[str, tuple[int, bytes]] = {}
        self._dirty: set[str] = set(LENS_NAMES)
        self._figures: dict[bytes, CandidateFigures] = {}
        self._ranked: dict[str, list[_Key]] = {lens: [] for lens in LENS_NAMES}
        self._rank_keys: dict[bytes, list[_Key]] = {}  # live candidate -> its keys per lens
        self._retired: list[tuple[int, bytes]] = []
        self._epoch: dict[bytes, bytes] = {}  # candidate -> its epoch (b"" for none)
        self.epochs: Counter[bytes] = Counter()  # the slot's epochs, with their candidates
        for f, epoch in candidates:
            self._figures[f.hash] = f
            self._epoch[f.hash] = epoch
            if epoch:
                self.epochs[epoch] += 1
        self._rebuild()

    def holds(self, assertion_hash: bytes) -> bool:
        return assertion_hash in self._figures

    @property
    def size(self) -> int:
        return len(self._figures)

    def _rebuild(self) -> None:
        self._rank_keys = {f.hash: self._keys(f) for f in self._figures.values() if not f.retired}
        for n, lens in enumerate(LENS_NAMES):
            self._ranked[lens] = sorted(keys[n] for keys in self._rank_keys.values())
        self._retired = sorted(retired_key(f) for f in self._figures.values() if f.retired)

    def _keys(self, f: CandidateFigures) -> list[_Key]:
        """``f``'s rank key under each lens, in LENS_NAMES order."""
        return [rank_key(lens, f, self._policy) for lens in LENS_NAMES]

    def _move(self, old: CandidateFigures | None, f: CandidateFigures) -> set[str]:
        """Replace ``old`` (None: a new candidate) by ``f`` in the rankings; return the lenses
        whose view looked at either (one bisection per ranking and candidate)."""
        dirty: set[str] = set()
        old_keys = None
        if old is not None and not old.retired:
            old_keys = self._rank_keys.pop(old.hash, None)
            if old_keys is None:
                raise ValueError("slot index lost a candidate")
        new_keys = None
        if not f.retired:
            new_keys = self._rank_keys[f.hash] = self._keys(f)
        if old is not None and old.retired:
            key = retired_key(old)
            i = bisect.bisect_left(self._retired, key)
            if i == len(self._retired) or self._retired[i] != key:
                raise ValueError("slot index lost a retired candidate")
            del self._retired[i]
            if i < self._policy.candidates_max:
                dirty.update(LENS_NAMES)
        visible = self._visible
        for n, lens in enumerate(LENS_NAMES):
            ranked = self._ranked[lens]
            if old_keys is not None:
                rkey = old_keys[n]
                i = bisect.bisect_left(ranked, rkey)
                if i == len(ranked) or ranked[i] != rkey:
                    raise ValueError("slot index lost a candidate")
                del ranked[i]
                if i < visible:
                    dirty.add(lens)
            if new_keys is not None:
                rkey = new_keys[n]
                i = bisect.bisect_left(ranked, rkey)
                ranked.insert(i, rkey)
                if i < visible:
                    dirty.add(lens)
        if f.retired:
            key = retired_key(f)
            i = bisect.bisect_left(self._retired, key)
            self._retired.insert(i, key)
            if i < self._policy.candidates_max:
                dirty.update(LENS_NAMES)
        return dirty

    def put(self, f: CandidateFigures, epoch: bytes, merged: bool = False) -> bool:
        """Add or update a candidate (``merged``: its assertion gained co-signers); False when
        no lens' view can have changed."""
        old = self._figures.get(f.hash)
        if old is None:
            self._epoch[f.hash] = epoch
            if epoch:
                self.epochs[epoch] += 1
            self._figures[f.hash] = f
            self._dirty |= self._move(None, f)
            return True  # candidates_total changed
        for encoded in self._encoded.values():
            encoded.pop(f.hash, None)
        self._shared.pop(f.hash, None)
        if merged:
            self._winners.pop(f.hash, None)  # the winner embeds the assertion's signatures
        self._figures[f.hash] = f
        dirty = self._move(old, f)
        self._dirty |= dirty
        return bool(dirty)

    def retire(self, retired_epochs: frozenset[bytes]) -> bool:
        """Apply a new set of retired epochs; False when it is the same set."""
        if retired_epochs == self.retired_epochs:
            return False
        self.retired_epochs = retired_epochs
        for h, f in list(self._figures.items()):
            retired = self._epoch[h] in retired_epochs
            if retired != f.retired:
                self._figures[h] = CandidateFigures(**{**f.__dict__, "retired": retired})
                for encoded in self._encoded.values():
                    encoded.pop(h, None)
                self._shared.pop(h, None)
        self._rebuild()
        self._dirty = set(LENS_NAMES)
        return True

    def _candidate(self, lens: str, h: bytes) -> bytes:
        """Candidate ``h``'s Candidate message under ``lens``, framed as Resolution field 7."""
        f = self._figures[h]
        shared = self._shared.get(h)
        if shared is None:
            shared = candidate_figures_bytes(
                f.support, f.dispute, f.supporters, f.disputers, f.retired, f.votes,
                f.first_lsn, f.last_lsn,
            )  # fmt: skip
            self._shared[h] = shared
        qualified = not f.retired and (lens != "skeptic" or qualifies(f, self._policy))
        data = candidate_lens_bytes(h, lens_score(lens, f), shared, qualified)
        self._encoded[lens][h] = data
        return data

    def encode_view(
        self, subject: str, predicate: str, assertion_of: Callable[[bytes], bytes]
    ) -> tuple[bytes, dict[str, tuple[int, bytes]]]:
        """The SlotView's fields 1 to 3 (subject, predicate, resolutions) encoded
        deterministically, and each lens' verdict (status, winner hash); ``assertion_of``
        gives an assertion's encoded message."""
        policy = self._policy
        shown_max = policy.candidates_max
        if self._heads is None:
            head = field_bytes(1, subject.encode()) + field_bytes(2, predicate.encode())
            self._heads = (head, {n: head + field_bytes(3, n.encode()) for n in LENS_NAMES})
        head, lens_heads = self._heads
        figures = self._figures
        for lens in LENS_NAMES:
            if lens not in self._dirty:
                continue
            # The last element of every rank key is the candidate's hash.
            keys = self._ranked[lens]
            hashes: list[bytes] = [k[-1] for k in keys[:shown_max]]  # type: ignore[misc]
            if len(hashes) < shown_max:
                hashes += [h for _lsn, h in self._retired[: shown_max - len(hashes)]]
            # verdict() looks at the best two only.
            top = [figures[k[-1]] for k in keys[:2]]  # type: ignore[index]
            status, score, winner = verdict(lens, top, policy)
            winner_bytes = b""
            if winner is not None:
                found = self._winners.get(winner)
                if found is None:
                    found = field_bytes(1, winner) + field_message(2, assertion_of(winner))
                    self._winners[winner] = found
                winner_bytes = found
            self._lens_verdicts[lens] = (int(status), winner or b"")
            encoded = self._encoded[lens]
            resolution = resolution_bytes(
                lens_heads[lens],
                status,
                winner_bytes,
                score,
                [encoded.get(h) or self._candidate(lens, h) for h in hashes],
                policy.policy_hash,
            )
            self._lens_bytes[lens] = field_message(3, resolution)
        self._dirty = set()
        body = head + b"".join(self._lens_bytes[lens] for lens in LENS_NAMES)
        return body, dict(self._lens_verdicts)


class SlotCache:
    """Slot indexes by slot key, least recently used dropped beyond ``candidates_max``."""

    def __init__(self, candidates_max: int) -> None:
        self._candidates_max = candidates_max
        self._slots: OrderedDict[bytes, SlotIndex] = OrderedDict()
        self._held = 0  # candidates held by the indexes (kept up to date, not summed)

    def get(self, slot: bytes) -> SlotIndex | None:
        index = self._slots.get(slot)
        if index is not None:
            self._slots.move_to_end(slot)
        return index

    def holds(self, slot: bytes) -> bool:
        """Whether the slot's index is in memory (its recency unchanged)."""
        return slot in self._slots

    def put(self, slot: bytes, index: SlotIndex) -> None:
        old = self._slots.get(slot)
        self._held += index.size - (0 if old is None else old.size)
        self._slots[slot] = index
        self._slots.move_to_end(slot)

    def grew(self) -> None:
        """A held index gained a candidate."""
        self._held += 1

    def trim(self) -> None:
        """Drop least recently used slots until the candidates held fit the bound."""
        while self._held > self._candidates_max and len(self._slots) > 1:
            _slot, index = self._slots.popitem(last=False)
            self._held -= index.size

    def clear(self) -> None:
        self._slots.clear()
        self._held = 0
