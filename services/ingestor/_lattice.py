"""The incremental Lattice: ballot box, tallies, epochs and materialized views, in RocksDB.

``Lattice.batch(overlay)`` is called by the ApplyEngine for every WriteBatch; the batch's
``record`` is called once per WAL record, in LSN order, after the record's own keys are in the
overlay. Everything it writes goes into the same overlay, so records, views, history and the
checkpoint commit together: exactly once, like the rest (DESIGN 9.5). Each record is folded into
the state left by the records before it, never by the batch as a whole, so batch boundaries,
crashes and rebuilds cannot change a byte.

Working keys (default column family, ASCII prefixes, hashes as 64 hex digits; docs/lattice.md)::

    CV:<assertion>:<agent>             counted vote: u64 sequence, u64 LSN, f64 weight
    VW:<assertion>                     b"\\x01": a vote came before its assertion (CV: to scan)
    TA:<assertion>                     candidate state: first/last LSN, epoch, exact tally
    SC:<subject>\\x00<predicate>\\x00<assertion>   the same state, under its slot
    ES:<superseded epoch>:<epoch>      supersession edge: u8 SupersessionType
    EA:<epoch>:<assertion>             assertion of an epoch: the slot (subject\\x00predicate)
    LP:policy                          the effective policy (JCS) the views were built with
    LS:stats                           u64 slots, u64 contested slots, u64 changes per lens
    LQ:settle                          retirements still settling (see ``Pending``)
    RS:<subject>\\x00<predicate>        u64: the slot is settled up to that retiring epoch's LSN
    MV:<subject>\\x00<predicate>        SlotView (query.proto)
    MH:<subject>\\x00<predicate>\\x00<20-digit LSN>  SlotHistoryEntry

Sums are kept exactly (every binary64 value is an integer number of 2^-1074 units, so sums are
integers in that unit) and rounded once when read: the result is the correctly rounded sum,
the same whatever the order of the votes, the same in every language that sums exactly, and
equal to the oracle's sum in agents' key order.
"""

from __future__ import annotations

import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import StoreInconsistent
from stemedb.ingestor._keys import (
    ASSERTION_PREFIX,
    EPOCH_PREFIX,
    SIGNATURES_INLINE_MAX,
    record_key,
    signer_key,
    signer_prefix,
)
from stemedb.ingestor._lenses import CandidateFigures
from stemedb.ingestor._policy import LENS_NAMES, TrustPolicy
from stemedb.ingestor._slots import SlotCache, SlotIndex
from stemedb.ingestor._wire import field_message, field_varint
from stemedb.v1 import query_pb2, records_pb2
from stemedb.walrecord import DecodedPayload

__all__ = [
    "COUNTED_VOTE_PREFIX",
    "HISTORY_PREFIX",
    "POLICY_KEY",
    "SETTLED_PREFIX",
    "SETTLE_KEY",
    "SLOT_CANDIDATE_PREFIX",
    "STATS_KEY",
    "TALLY_PREFIX",
    "VIEW_PREFIX",
    "CandidateState",
    "Lattice",
    "LatticeBatch",
    "LatticeCorrupt",
    "LatticeStats",
    "Pending",
    "SettleQueue",
    "epoch_in_force",
    "history_key",
    "history_prefix",
    "retired_epochs",
    "slot_key",
    "split_slot",
    "view_key",
]

COUNTED_VOTE_PREFIX = b"CV:"
TALLY_PREFIX = b"TA:"
SLOT_CANDIDATE_PREFIX = b"SC:"
SUPERSEDED_BY_PREFIX = b"ES:"
EPOCH_MEMBER_PREFIX = b"EA:"
POLICY_KEY = b"LP:policy"
STATS_KEY = b"LS:stats"
VIEW_PREFIX = b"MV:"
HISTORY_PREFIX = b"MH:"
VOTES_WAITING_PREFIX = b"VW:"
SETTLE_KEY = b"LQ:settle"
SETTLED_PREFIX = b"RS:"

_HEX_DIGITS = 64
_LSN_DIGITS = 20
_SCAN_PAGE_ENTRIES = 4096
KNOWN_ASSERTIONS_MAX = 100_000  # assertions whose slot and signers the engine keeps in memory
SETTLE_SLOTS_PER_BATCH_MAX = 32  # slots a batch settles for pending retirements (section below)
SETTLE_MEMBERS_PER_BATCH_MAX = 1024  # EA: keys a batch examines for them
# CPU a batch spends settling, beyond its first slot: a record waiting behind a settling batch
# waits this long at most (which slots a batch settles changes no answer and no view).
SETTLE_SECONDS_PER_BATCH_MAX = 0.005
_SETTLE_PAGE_ENTRIES = 16
_PENDING = struct.Struct(">Q32s32sH")
_SETTLE_HEAD = struct.Struct(">QI")
_U64 = struct.Struct(">Q")
_COUNTED = struct.Struct(">QQd")
_STATE_HEAD = struct.Struct(">QQIII")
_FRACTION_HEAD = struct.Struct(">HH")
_REVOLUTION = records_pb2.SUPERSESSION_TYPE_REVOLUTION
_REFINEMENT = records_pb2.SUPERSESSION_TYPE_REFINEMENT
_NO_EPOCH = b""
_VIEW_LSN_FIELD = query_pb2.SlotView.DESCRIPTOR.fields_by_name["lsn"].number
_VIEW_TOTAL_FIELD = query_pb2.SlotView.DESCRIPTOR.fields_by_name["candidates_total"].number
_ENTRY_LSN_FIELD = query_pb2.SlotHistoryEntry.DESCRIPTOR.fields_by_name["lsn"].number
_ENTRY_VIEW_FIELD = query_pb2.SlotHistoryEntry.DESCRIPTOR.fields_by_name["view"].number
_ENTRY_CHANGED_FIELD = query_pb2.SlotHistoryEntry.DESCRIPTOR.fields_by_name["changed_lenses"].number


class LatticeCorrupt(StoreInconsistent):
    """A working key that does not decode: the database breaks its own invariants (INTERNAL
    to a reader; the apply loop halts on it)."""


# -- keys ----------------------------------------------------------------------------------------


def slot_key(subject: str, predicate: str) -> bytes:
    return subject.encode("utf-8") + b"\x00" + predicate.encode("utf-8")


def split_slot(slot: bytes) -> tuple[str, str]:
    subject, _, predicate = slot.partition(b"\x00")  # a subject never holds NUL
    return subject.decode("utf-8"), predicate.decode("utf-8")


def view_key(slot: bytes) -> bytes:
    return VIEW_PREFIX + slot


def history_prefix(slot: bytes) -> bytes:
    return HISTORY_PREFIX + slot + b"\x00"


def history_key(slot: bytes, lsn: int) -> bytes:
    return history_prefix(slot) + b"%020d" % lsn


def _hex(h: bytes) -> bytes:
    return h.hex().encode()


def _counted_prefix(assertion_hash: bytes) -> bytes:
    return COUNTED_VOTE_PREFIX + _hex(assertion_hash) + b":"


def _slot_candidates_prefix(slot: bytes) -> bytes:
    return SLOT_CANDIDATE_PREFIX + slot + b"\x00"


def _superseded_prefix(epoch_hash: bytes) -> bytes:
    return SUPERSEDED_BY_PREFIX + _hex(epoch_hash) + b":"


def _members_prefix(epoch_hash: bytes) -> bytes:
    return EPOCH_MEMBER_PREFIX + _hex(epoch_hash) + b":"


# -- values --------------------------------------------------------------------------------------


# Every finite binary64 value is an integer multiple of 2^-1074, so sums of them are kept as
# integers in that unit: exact, order-free, and rounded once (correctly) when read.
_UNIT_BITS = 1074
_SCALE = 1 << _UNIT_BITS


def exact(value: float) -> int:
    """A binary64 value as an integer number of 2^-1074 units (exact)."""
    num, den = value.as_integer_ratio()
    return num * (_SCALE // den)


def rounded(units: int) -> float:
    """The binary64 value nearest to ``units`` * 2^-1074 (int division rounds correctly)."""
    return units / _SCALE


def _encode_units(units: int) -> bytes:
    # Stored as numerator * 2^-exponent with the numerator odd (or 0): a few bytes, not 135.
    shift = min((units & -units).bit_length() - 1, _UNIT_BITS) if units else _UNIT_BITS
    num = units >> shift
    data = num.to_bytes((num.bit_length() + 8) // 8, "big", signed=True)
    return _FRACTION_HEAD.pack(_UNIT_BITS - shift, len(data)) + data


def _decode_units(data: bytes, offset: int) -> tuple[int, int]:
    exponent, size = _FRACTION_HEAD.unpack_from(data, offset)
    start = offset + _FRACTION_HEAD.size
    if start + size > len(data) or exponent > _UNIT_BITS:
        raise LatticeCorrupt("tally sum runs past the end of its value")
    num = int.from_bytes(data[start : start + size], "big", signed=True)
    return num << (_UNIT_BITS - exponent), start + size


@dataclass(frozen=True, slots=True)
class CandidateState:
    """What the engine keeps per assertion: its LSNs, its epoch and its exact tally."""

    first_lsn: int
    last_lsn: int
    epoch: bytes
    support: int = 0  # in 2^-1074 units
    dispute: int = 0
    supporters: int = 0
    disputers: int = 0
    votes: int = 0

    def encode(self) -> bytes:
        head = _STATE_HEAD.pack(
            self.first_lsn, self.last_lsn, self.supporters, self.disputers, self.votes
        )
        epoch = b"\x01" + self.epoch if self.epoch else b"\x00"
        return head + epoch + _encode_units(self.support) + _encode_units(self.dispute)

    @classmethod
    def decode(cls, data: bytes, key: bytes = b"") -> CandidateState:
        """Decode a TA:/SC: value; LatticeCorrupt names ``key`` when it does not decode."""
        try:
            first, last, supporters, disputers, votes = _STATE_HEAD.unpack_from(data, 0)
            offset = _STATE_HEAD.size
            epoch = _NO_EPOCH
            if data[offset] == 1:
                epoch = bytes(data[offset + 1 : offset + 33])
                offset += 33
            else:
                offset += 1
            support, offset = _decode_units(data, offset)
            dispute, offset = _decode_units(data, offset)
        except (struct.error, IndexError) as exc:
            raise LatticeCorrupt(f"key {key!r}: candidate state does not decode: {exc}") from None
        except LatticeCorrupt as exc:
            raise LatticeCorrupt(f"key {key!r}: {exc}") from None
        if offset != len(data):
            raise LatticeCorrupt(
                f"key {key!r}: candidate state has {len(data) - offset} trailing bytes"
            )
        return cls(first, last, epoch, support, dispute, supporters, disputers, votes)

    def endorse(self, weight: float, e: float, sign: int) -> CandidateState:
        """Add (sign 1) or remove (sign -1) the endorsement ``e`` of an agent of trust w."""
        counted = 1 if weight > 0 else 0
        if e > 0:
            return CandidateState(
                self.first_lsn, self.last_lsn, self.epoch,
                self.support + sign * exact(weight * e), self.dispute,
                self.supporters + sign * counted, self.disputers, self.votes,
            )  # fmt: skip
        if e < 0:
            return CandidateState(
                self.first_lsn, self.last_lsn, self.epoch,
                self.support, self.dispute + sign * exact(weight * -e),
                self.supporters, self.disputers + sign * counted, self.votes,
            )  # fmt: skip
        return self

    def tally(self, assertion_hash: bytes) -> query_pb2.Tally:
        return query_pb2.Tally(
            assertion_hash=assertion_hash,
            support=rounded(self.support),
            dispute=rounded(self.dispute),
            supporters=self.supporters,
            disputers=self.disputers,
            votes=self.votes,
            score=rounded(self.support - self.dispute),
        )

    def figures(self, assertion_hash: bytes, retired: bool) -> CandidateFigures:
        return CandidateFigures(
            hash=assertion_hash,
            support=rounded(self.support),
            dispute=rounded(self.dispute),
            score=rounded(self.support - self.dispute),
            supporters=self.supporters,
            disputers=self.disputers,
            votes=self.votes,
            first_lsn=self.first_lsn,
            last_lsn=self.last_lsn,
            retired=retired,
        )


@dataclass(frozen=True)
class _Counted:
    sequence: int
    lsn: int
    weight: float

    def encode(self) -> bytes:
        return _COUNTED.pack(self.sequence, self.lsn, self.weight)

    @classmethod
    def decode(cls, data: bytes, key: bytes = b"") -> _Counted:
        if len(data) != _COUNTED.size:
            raise LatticeCorrupt(
                f"key {key!r}: counted vote is {len(data)} bytes, expected {_COUNTED.size}"
            )
        return cls(*_COUNTED.unpack(data))


@dataclass
class _Known:
    """What a vote needs of its assertion: the slot, the confidence and the signers (all of
    them when ``complete``; else the inline ones, and HS: keys may hold more)."""

    slot: bytes
    confidence: float
    signers: set[bytes]
    complete: bool


_STATS = struct.Struct(">QQ" + "Q" * len(LENS_NAMES))
_CONTESTED = int(query_pb2.STATUS_CONTESTED)


@dataclass
class LatticeStats:
    """Counts kept in ``LS:stats`` (deterministic, so replicas and rebuilds agree): slots with a
    view, slots CONTESTED under consensus, and changes of winner or status per lens."""

    slots: int = 0
    contested: int = 0
    changes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LENS_NAMES, 0))

    def count(
        self,
        new_slot: bool,
        old_consensus: tuple[int, bytes] | None,
        verdicts: dict[str, tuple[int, bytes]],
        changed: list[str],
    ) -> None:
        self.slots += 1 if new_slot else 0
        self.contested -= 1 if old_consensus is not None and old_consensus[0] == _CONTESTED else 0
        self.contested += 1 if verdicts["consensus"][0] == _CONTESTED else 0
        for lens in changed:
            self.changes[lens] += 1

    def is_zero(self) -> bool:
        return not (self.slots or self.contested or any(self.changes.values()))

    def plus(self, other: LatticeStats) -> LatticeStats:
        return LatticeStats(
            self.slots + other.slots,
            self.contested + other.contested,
            {lens: self.changes[lens] + other.changes[lens] for lens in LENS_NAMES},
        )

    def encode(self) -> bytes:
        return _STATS.pack(self.slots, self.contested, *(self.changes[n] for n in LENS_NAMES))

    @classmethod
    def decode(cls, data: bytes) -> LatticeStats:
        if len(data) != _STATS.size:
            raise LatticeCorrupt(f"LS:stats is {len(data)} bytes, expected {_STATS.size}")
        slots, contested, *changes = _STATS.unpack(data)
        return cls(slots, contested, dict(zip(LENS_NAMES, changes, strict=True)))


# -- retirements that settle over bounded batches -----------------------------------------------


@dataclass
class Pending:
    """A retiring epoch in force whose slots are not all rewritten yet: epoch ``epoch``
    (applied at ``lsn``) retires assertions of ``superseded``; slots holding those are visited
    in EA: key order from ``cursor`` (b"": from the start)."""

    lsn: int
    epoch: bytes
    superseded: bytes
    cursor: bytes = b""


@dataclass
class SettleQueue:
    """``LQ:settle``: the pending retirements in LSN order and the LSN of the batch that wrote
    it (a reader holding a snapshot learns from it which LSN that snapshot reflects)."""

    lsn: int
    pending: list[Pending]

    def encode(self) -> bytes:
        parts = [_SETTLE_HEAD.pack(self.lsn, len(self.pending))]
        for p in self.pending:
            parts.append(_PENDING.pack(p.lsn, p.epoch, p.superseded, len(p.cursor)) + p.cursor)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> SettleQueue:
        try:
            lsn, count = _SETTLE_HEAD.unpack_from(data, 0)
            offset = _SETTLE_HEAD.size
            pending = []
            for _ in range(count):
                at, epoch, superseded, size = _PENDING.unpack_from(data, offset)
                offset += _PENDING.size
                cursor = bytes(data[offset : offset + size])
                if len(cursor) != size:
                    raise struct.error("cursor runs past the end")
                offset += size
                pending.append(Pending(at, epoch, superseded, cursor))
        except struct.error as exc:
            raise LatticeCorrupt(f"key {SETTLE_KEY!r} does not decode: {exc}") from None
        if offset != len(data):
            raise LatticeCorrupt(f"key {SETTLE_KEY!r} has {len(data) - offset} trailing bytes")
        return cls(lsn, pending)


def retired_epochs(
    slot_epochs: set[bytes],
    edges: Callable[[bytes], Iterable[tuple[bytes, bytes]]],
    in_force: Callable[[bytes], bool],
    excluded: frozenset[bytes] = frozenset(),
) -> frozenset[bytes]:
    """The epochs whose assertions in a slot holding ``slot_epochs`` are retired: ``edges(F)``
    gives the ES:<F>: entries, ``in_force`` tells an epoch in force; epochs in ``excluded``
    (retirements applied later than the LSN asked about) are left out."""
    retired = set()
    for f in sorted(slot_epochs):
        for key, value in edges(_superseded_prefix(f)):
            e = bytes.fromhex(key[-_HEX_DIGITS:].decode())
            if e in excluded:
                continue
            kind = value[0]
            retires = kind == _REVOLUTION or (kind == _REFINEMENT and e in slot_epochs)
            if retires and in_force(e):
                retired.add(f)
                break
    return frozenset(retired)


def epoch_in_force(raw_epoch_record: bytes | None, policy: TrustPolicy) -> bool:
    """Whether a stored epoch record (E: value; None: not stored) is in force (DESIGN 9.3)."""
    if raw_epoch_record is None:
        return False
    return any(
        policy.weight(s.public_key) >= policy.epoch_authority_min
        for s in records_pb2.Record.FromString(raw_epoch_record).epoch.signatures
    )


# -- the engine ----------------------------------------------------------------------------------


class Lattice:
    """The incremental engine over one StoreDb, under one trust policy."""

    def __init__(
        self, db: StoreDb, policy: TrustPolicy, slot_cache_candidates_max: int = 200_000
    ) -> None:
        self.db = db
        self.policy = policy
        self.slots = SlotCache(slot_cache_candidates_max)
        self.in_force: dict[bytes, bool] = {}  # epoch hash -> in force (stored epochs only)
        # Assertion hash -> slot and signers, least recently used dropped beyond the bound.
        self.known: OrderedDict[bytes, _Known] = OrderedDict()
        self.queue: list[Pending] | None = None  # LQ:settle, loaded on first use
        self._committed = True

    def batch(self, overlay: dict[bytes, bytes]) -> LatticeBatch:
        """Fold records into ``overlay``: the puts of the WriteBatch being built."""
        if not self._committed:
            # The last batch never reached RocksDB: the caches may hold its effects.
            self.slots.clear()
            self.in_force.clear()
            self.known.clear()
            self.queue = None
        self._committed = False
        return LatticeBatch(self, overlay, self.db.read_checkpoint().lsn)

    def pending(self) -> list[Pending]:
        """The retirements still settling (a batch without records advances them)."""
        if self.queue is None:
            raw = self.db.get(SETTLE_KEY)
            self.queue = [] if raw is None else SettleQueue.decode(raw).pending
        return self.queue

    def committed(self) -> None:
        """The batch is written: the caches agree with the database again."""
        self._committed = True
        self.slots.trim()
        while len(self.known) > KNOWN_ASSERTIONS_MAX:
            self.known.popitem(last=False)


class LatticeBatch:
    """The engine's view of one WriteBatch: reads see the batch's own writes first."""

    def __init__(self, lattice: Lattice, overlay: dict[bytes, bytes], applied_lsn: int) -> None:
        self._db = lattice.db
        self._policy = lattice.policy
        self._slots = lattice.slots
        self._in_force = lattice.in_force
        self._known = lattice.known
        self._lattice = lattice
        self._queue = lattice.pending()
        self._queue_changed = False
        self._overlay = overlay
        self._applied_lsn = applied_lsn  # records at or below it are already folded in
        self._read: dict[bytes, bytes | None] = {}
        self._added: dict[bytes, set[bytes]] = {}  # scan prefix -> keys this batch created
        self._stats = LatticeStats()  # this batch's changes to LS:stats
        if lattice.db.get(POLICY_KEY) is None and POLICY_KEY not in overlay:
            overlay[POLICY_KEY] = lattice.policy.canonical()

    # -- reads and writes through the overlay ---------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        value = self._overlay.get(key)
        if value is not None:
            return value
        if key not in self._read:
            self._read[key] = self._db.get(key)
        return self._read[key]

    def _put(
        self, key: bytes, value: bytes, scan_prefix: bytes | None = None, new: bool | None = None
    ) -> None:
        """Write ``key``; under ``scan_prefix`` a key that did not exist (``new``, when the
        caller knows it) is remembered for ``scan``."""
        if scan_prefix is not None and (self.get(key) is None if new is None else new):
            self._added.setdefault(scan_prefix, set()).add(key)
        self._overlay[key] = value

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every key under ``prefix`` (stored or written by this batch), in key order."""
        keys: set[bytes] = set(self._added.get(prefix, ()))
        start = prefix
        stored: dict[bytes, bytes] = {}
        while True:
            page = self._db.scan(prefix, start, _SCAN_PAGE_ENTRIES)
            stored.update(page.entries)
            if page.next_key is None:
                break
            start = page.next_key
        keys.update(stored)
        for key in sorted(keys):
            value = self._overlay.get(key, stored.get(key))
            if value is not None:
                yield key, value

    def prefetch(self, payloads: Sequence[DecodedPayload]) -> None:
        """Read, in one multi_get, the stored keys the batch's records will look up: counted
        votes, tallies, assertions of votes, views of slots not in memory, waiting votes."""
        keys: list[bytes] = []
        for p in payloads:
            if p.kind == "vote":
                v = p.record.vote
                x = _hex(v.assertion_hash)
                keys.append(COUNTED_VOTE_PREFIX + x + b":" + _hex(v.agent_id))
                keys.append(TALLY_PREFIX + x)
                if v.assertion_hash not in self._known:
                    keys.append(ASSERTION_PREFIX + x)
            elif p.kind == "assertion":
                a = p.record.assertion
                h = _hex(p.content_hash)
                keys.append(TALLY_PREFIX + h)
                keys.append(VOTES_WAITING_PREFIX + h)
                slot = slot_key(a.subject, a.predicate)
                if not self._slots.holds(slot):
                    keys.append(view_key(slot))
        wanted = [k for k in dict.fromkeys(keys) if k not in self._overlay and k not in self._read]
        for key, value in zip(wanted, self._db.multi_get(wanted), strict=True):
            self._read[key] = value

    def _known_of(self, assertion_hash: bytes) -> _Known:
        """The assertion's slot and signers (the assertion must be stored)."""
        info = self._known.get(assertion_hash)
        if info is None:
            a = self._assertion(assertion_hash)
            info = _Known(
                slot_key(a.subject, a.predicate),
                a.confidence,
                {s.public_key for s in a.signatures},
                len(a.signatures) < SIGNATURES_INLINE_MAX,
            )
            self._known[assertion_hash] = info
        else:
            self._known.move_to_end(assertion_hash)
        return info

    def _signed_by(self, assertion_hash: bytes, info: _Known, agent: bytes) -> bool:
        if agent in info.signers:
            return True
        return not info.complete and self.get(signer_key(assertion_hash, agent)) is not None

    def _state(self, assertion_hash: bytes) -> CandidateState | None:
        key = TALLY_PREFIX + _hex(assertion_hash)
        raw = self.get(key)
        return None if raw is None else CandidateState.decode(raw, key)

    def _assertion(self, assertion_hash: bytes) -> records_pb2.Assertion:
        raw = self.get(record_key(ASSERTION_PREFIX, assertion_hash))
        if raw is None:
            raise LatticeCorrupt(f"candidate {assertion_hash.hex()} has no H: record")
        return records_pb2.Record.FromString(raw).assertion

    def _assertion_bytes(self, assertion_hash: bytes) -> bytes:
        """The assertion's deterministic encoding (as the view embeds it)."""
        return self._assertion(assertion_hash).SerializeToString(deterministic=True)

    def _index(self, slot: bytes) -> SlotIndex:
        """The slot's ranked index, loaded from its SC: keys on first use."""
        index = self._slots.get(slot)
        if index is not None:
            if self._queue and index.settled_lsn < self._queue[-1].lsn:
                self._settle(slot, index)
            return index
        prefix = _slot_candidates_prefix(slot)
        states = []
        view = self.get(view_key(slot))
        # A slot gets its view with its first candidate (put() of a new one is always a
        # change), so a slot without a view has no SC: keys: no scan.
        for key, value in self.scan(prefix) if view is not None else ():
            if len(key) != len(prefix) + _HEX_DIGITS:
                continue  # a longer predicate that happens to share this prefix
            h = bytes.fromhex(key[len(prefix) :].decode())
            states.append((h, CandidateState.decode(value, key)))
        settled = self._applied_lsn
        later: frozenset[bytes] = frozenset()
        if self._queue:
            raw = self.get(SETTLED_PREFIX + slot)
            settled = 0 if raw is None else _U64.unpack(raw)[0]
            # The stored view reflects the retirements settled for it, not the later ones.
            later = frozenset(p.epoch for p in self._queue if p.lsn > settled)
        retired = self._retired_epochs({s.epoch for _h, s in states if s.epoch}, later)
        candidates = [(s.figures(h, s.epoch in retired), s.epoch) for h, s in states]
        index = SlotIndex(self._policy, candidates, retired, view)
        index.settled_lsn = settled
        self._slots.put(slot, index)
        if self._queue and settled < self._queue[-1].lsn:
            self._settle(slot, index)
        return index

    def _settle(self, slot: bytes, index: SlotIndex) -> None:
        """Apply to the slot, one by one at their own LSNs, the pending retirements it has not
        seen: each change is the view and history entry an eager rewrite would have written."""
        pending = [p for p in self._queue if p.lsn > index.settled_lsn]
        touched = any(p.superseded in index.epochs for p in pending)
        index.settled_lsn = pending[-1].lsn  # first: _refresh below looks the index up again
        for i, p in enumerate(pending):
            later = frozenset(q.epoch for q in pending[i + 1 :])
            if index.retire(self._retired_epochs(set(index.epochs), later)):
                self._refresh(slot, p.lsn)
        if touched:
            self._put(SETTLED_PREFIX + slot, _U64.pack(index.settled_lsn))

    def settle(
        self,
        slots_max: int = SETTLE_SLOTS_PER_BATCH_MAX,
        members_max: int = SETTLE_MEMBERS_PER_BATCH_MAX,
        seconds_max: float | None = None,
    ) -> int:
        """Settle pending retirements in up to ``slots_max`` slots (``members_max`` EA: keys
        examined, ``seconds_max`` spent after the first slot, SETTLE_SECONDS_PER_BATCH_MAX when
        None); return the slots settled. Call after the batch's records."""
        settled = 0
        examined = 0
        if seconds_max is None:
            seconds_max = SETTLE_SECONDS_PER_BATCH_MAX
        deadline = time.perf_counter() + seconds_max
        while self._queue and settled < slots_max and examined < members_max:
            head = self._queue[0]
            prefix = _members_prefix(head.superseded)
            # Small pages: a page costs its length, and a batch settles only a few slots.
            limit = min(members_max - examined, _SETTLE_PAGE_ENTRIES)
            page = self._db.scan(prefix, head.cursor or prefix, limit)
            examined += len(page.entries)
            seen: set[bytes] = set()
            stop: bytes | None = page.next_key
            for key, slot in page.entries:
                if settled >= slots_max or (settled and time.perf_counter() > deadline):
                    stop = key
                    break
                if slot not in seen:
                    seen.add(slot)
                    self._index(slot)  # loading or touching an index settles it
                    settled += 1
            self._queue_changed = True
            if stop is None:
                self._queue.pop(0)
            else:
                head.cursor = stop
            if settled and time.perf_counter() > deadline:
                break
        return settled

    def _save(
        self, assertion_hash: bytes, slot: bytes, state: CandidateState, merged: bool = False
    ) -> bool:
        """Write a candidate's state (``merged``: its assertion gained co-signers); True when
        the slot's view may have changed."""
        # The index first: loaded now it holds the state before this change, which is what
        # put() compares with (loaded after the write it would already hold the new state).
        index = self._index(slot)
        value = state.encode()
        self._put(TALLY_PREFIX + _hex(assertion_hash), value)
        prefix = _slot_candidates_prefix(slot)
        self._put(prefix + _hex(assertion_hash), value, prefix, not index.holds(assertion_hash))
        changed = False
        if state.epoch and state.epoch not in index.epochs:
            changed = index.retire(self._retired_epochs({*index.epochs, state.epoch}))
            if any(p.superseded == state.epoch for p in self._queue):
                # Readers overlay pending retirements on slots not marked settled: this one
                # is up to date from here on (its index holds every retirement).
                self._put(SETTLED_PREFIX + slot, _U64.pack(index.settled_lsn))
        figures = state.figures(assertion_hash, state.epoch in index.retired_epochs)
        new = not index.holds(assertion_hash)
        result = index.put(figures, state.epoch, merged) or changed
        if new:
            self._slots.grew()
        return result

    def finish(self) -> None:
        """Fold this batch's counts into ``LS:stats`` and write ``LS:settle`` when it changed
        or retirements are pending (call once, before the batch is written)."""
        if self._queue_changed or self._queue:
            # An empty queue is written without an LSN: the same bytes however it emptied.
            lsn = self._applied_lsn if self._queue else 0
            self._put(SETTLE_KEY, SettleQueue(lsn, self._queue).encode())
        if self._stats.is_zero():
            return
        raw = self.get(STATS_KEY)
        total = self._stats if raw is None else LatticeStats.decode(raw).plus(self._stats)
        self._put(STATS_KEY, total.encode())
        self._stats = LatticeStats()

    # -- records --------------------------------------------------------------------------------

    def record(
        self, lsn: int, p: DecodedPayload, previous: bytes | None,
        new_signers: Sequence[bytes] = (),
    ) -> None:  # fmt: skip
        """Fold one record in; ``previous`` is its key's value before it (None: first copy) and
        ``new_signers`` the public keys a re-appended assertion added to the stored ones (the
        apply engine's co-signature merge knows them, inline and ``HS:`` alike)."""
        if lsn <= self._applied_lsn:
            return
        self._applied_lsn = lsn
        if p.kind == "assertion":
            self._on_assertion(lsn, p.content_hash, p.record.assertion, previous, new_signers)
        elif p.kind == "vote":
            self._on_vote(lsn, p.record.vote)
        elif p.kind == "epoch" and previous is None:
            self._on_epoch(lsn, p.content_hash, p.record.epoch)

    def _on_assertion(
        self, lsn: int, h: bytes, a: records_pb2.Assertion, previous: bytes | None,
        new_signers: Sequence[bytes],
    ) -> None:  # fmt: skip
        slot = slot_key(a.subject, a.predicate)
        if previous is None:
            waiting = self.get(VOTES_WAITING_PREFIX + _hex(h)) is not None
            state = self._fresh_tally(h, a, CandidateState(lsn, lsn, bytes(a.epoch)), waiting)
            # Every signer is in the record (inline, or merged to HS: keys in this batch).
            self._known[h] = _Known(slot, a.confidence, {s.public_key for s in a.signatures}, True)
            if a.epoch:
                members = _members_prefix(a.epoch)
                self._put(members + _hex(h), slot, members)
        else:
            old = self._state(h)
            if old is None:
                raise LatticeCorrupt(f"assertion {h.hex()} is stored but has no TA: state")
            state = CandidateState(
                old.first_lsn, lsn, old.epoch, old.support, old.dispute,
                old.supporters, old.disputers, old.votes,
            )  # fmt: skip
            for key in new_signers:
                if self.get(_counted_prefix(h) + _hex(key)) is None:
                    state = state.endorse(self._policy.weight(key), a.confidence, 1)
            known = self._known.get(h)
            if known is not None:
                known.signers.update(new_signers)
        if self._save(h, slot, state, merged=previous is not None):
            self._refresh(slot, lsn)

    def _fresh_tally(
        self, h: bytes, a: records_pb2.Assertion, state: CandidateState, votes_waiting: bool
    ) -> CandidateState:
        """``state`` with the tally computed from scratch: signers, then counted votes (when
        ``votes_waiting``: some may be stored)."""
        endorsed = {s.public_key: a.confidence for s in a.signatures}
        if len(a.signatures) >= SIGNATURES_INLINE_MAX:  # HS: keys exist only beyond that
            for key, _sig in self.scan(signer_prefix(h)):  # co-signers beyond the inline ones
                endorsed.setdefault(bytes.fromhex(key[-_HEX_DIGITS:].decode()), a.confidence)
        votes = 0
        for key, value in self.scan(_counted_prefix(h)) if votes_waiting else ():
            agent = bytes.fromhex(key[-_HEX_DIGITS:].decode())
            endorsed[agent] = _Counted.decode(value, key).weight
            votes += 1
        state = CandidateState(state.first_lsn, state.last_lsn, state.epoch, votes=votes)
        for agent in sorted(endorsed):
            state = state.endorse(self._policy.weight(agent), endorsed[agent], 1)
        return state

    # -- re-derivation under a new policy (``_rederive.py``) ------------------------------------

    def rederive_tally(self, h: bytes, stored: bytes) -> bytes:
        """Recompute one assertion's tally under this batch's policy; return its slot."""
        a = self._assertion(h)
        slot = slot_key(a.subject, a.predicate)
        state = CandidateState.decode(stored, TALLY_PREFIX + _hex(h))
        state = self._fresh_tally(h, a, state, votes_waiting=True)  # stored votes: scan them
        value = state.encode()
        self._put(TALLY_PREFIX + _hex(h), value)
        self._put(_slot_candidates_prefix(slot) + _hex(h), value)
        return slot

    def rederive_view(self, slot: bytes, lsn: int) -> None:
        """Rebuild a slot's view from its (re-derived) candidates; a change is history at lsn."""
        self._refresh(slot, lsn)

    def _on_vote(self, lsn: int, v: records_pb2.Vote) -> None:
        x, agent = v.assertion_hash, v.agent_id
        key = _counted_prefix(x) + _hex(agent)
        raw = self.get(key)
        current = None if raw is None else _Counted.decode(raw, key)
        if current is not None and v.sequence <= current.sequence:
            return  # a replay, or an older change of mind: the counted vote stands
        self._put(key, _Counted(v.sequence, lsn, v.weight).encode(), _counted_prefix(x))
        state = self._state(x)
        if state is None:
            # The assertion is not here yet: it counts the vote when it arrives.
            waiting = VOTES_WAITING_PREFIX + _hex(x)
            if self.get(waiting) is None:
                self._put(waiting, b"\x01")
            return
        info = self._known_of(x)
        w = self._policy.weight(agent)
        if current is None:
            if self._signed_by(x, info, agent):
                state = state.endorse(w, info.confidence, -1)
            state = CandidateState(
                state.first_lsn, state.last_lsn, state.epoch, state.support, state.dispute,
                state.supporters, state.disputers, state.votes + 1,
            )  # fmt: skip
        else:
            state = state.endorse(w, current.weight, -1)
        state = state.endorse(w, v.weight, 1)
        slot = info.slot
        if self._save(x, slot, state):
            self._refresh(slot, lsn)

    def _on_epoch(self, lsn: int, h: bytes, e: records_pb2.Epoch) -> None:
        if not e.supersedes:
            return
        edges = _superseded_prefix(e.supersedes)
        retires = e.supersession_type in (_REVOLUTION, _REFINEMENT) and self._epoch_in_force(h)
        self._put(edges + _hex(h), bytes((e.supersession_type,)), edges)
        if retires:
            # The slots holding the superseded epoch's assertions are rewritten later, over
            # bounded batches (settle) or when a record touches them first; readers overlay
            # the retirement meanwhile (_query.py), so every answer is already the eager one.
            self._queue.append(Pending(lsn, h, bytes(e.supersedes)))
            self._queue_changed = True
            # Settling scans the stored EA: keys; members this batch added are not stored yet,
            # so their slots (as many as the batch's records, at most) settle now.
            members = _members_prefix(e.supersedes)
            for slot in sorted({self._overlay[k] for k in self._added.get(members, ())}):
                self._index(slot)

    # -- epochs and views -----------------------------------------------------------------------

    def _epoch_in_force(self, epoch_hash: bytes) -> bool:
        known = self._in_force.get(epoch_hash)
        if known is None:
            raw = self.get(record_key(EPOCH_PREFIX, epoch_hash))
            if raw is None:
                return False  # not stored (yet): not cached, it may arrive
            known = epoch_in_force(raw, self._policy)
            self._in_force[epoch_hash] = known
        return known

    def _retired_epochs(
        self, slot_epochs: set[bytes], excluded: frozenset[bytes] = frozenset()
    ) -> frozenset[bytes]:
        """The epochs whose assertions in this slot are retired (leaving out the retirements
        by ``excluded`` epochs)."""
        return retired_epochs(slot_epochs, self.scan, self._epoch_in_force, excluded)

    def _refresh(self, slot: bytes, lsn: int) -> None:
        """Rebuild the slot's view; on a change, write it and append it to the history."""
        index = self._index(slot)
        subject, predicate = split_slot(slot)
        body, verdicts = index.encode_view(subject, predicate, self._assertion_bytes)
        total = field_varint(_VIEW_TOTAL_FIELD, index.size)
        content = body + total
        if content == index.view_content:  # the view without its lsn (field 4) is unchanged
            return
        # Deterministic serialization writes fields in number order: the stored view is fields
        # 1-3, its lsn (4), candidates_total (5); the history entry wraps those bytes.
        data = body + field_varint(_VIEW_LSN_FIELD, lsn) + total
        self._put(view_key(slot), data)
        changed = [lens for lens, v in verdicts.items() if index.verdicts.get(lens) != v]
        self._stats.count(index.view is None, index.verdicts.get("consensus"), verdicts, changed)
        index.view, index.view_content, index.verdicts = data, content, verdicts
        entry = b"".join(
            (
                field_varint(_ENTRY_LSN_FIELD, lsn),
                field_message(_ENTRY_VIEW_FIELD, data),
                *(field_message(_ENTRY_CHANGED_FIELD, lens.encode()) for lens in changed),
            )
        )
        self._put(history_key(slot, lsn), entry)
