"""ShardedClient: route records across several (writer, store) pairs by subject hash.

DESIGN section 7: past one machine, StemeDB shards by subject across independent writer/ingestor
pairs, and the client routes. The rule, which every client implementation must share::

    shard(subject) = int.from_bytes(BLAKE3(subject as UTF-8)[0:8], "big") mod N

with N the number of shards, listed in the same order by every client. Consequences:

- **Assertions** go to ``shard(subject)``, so every assertion about a subject, and the ``S:``
  subject index, live on one shard: ``list_assertions_by_subject`` asks that shard only.
- **Votes** go to the shard of the assertion they vote on, so an assertion and its votes (the
  ``VA:`` index) live together and ``list_votes`` asks one shard. A vote does not carry the
  subject, so the caller passes it (``append_vote(vote, subject=...)``); without it the client
  locates the assertion by asking every shard's store (``GetAssertion``, no waiting) and keeps
  the answer in a bounded cache. An assertion appended a moment ago may not be ingested yet:
  pass the subject in that case. In ``append_batch`` a vote whose assertion is in the same batch
  follows that assertion's subject.
- **Epochs** have no subject: they go to ``int.from_bytes(epoch hash[0:8], "big") mod N``. Any
  shard's assertions may name any epoch; reading one by key asks every shard.
- **LSNs are per shard.** Receipts are :class:`ShardReceipt` (with the ``shard`` index), and a
  read-your-writes read (``min_lsn``) must go to that shard: pass ``shard=``. Reads by record key
  without a shard ask every shard in turn (``min_lsn`` then is refused, as it names no shard).
- ``append_batch`` is all-or-nothing per shard only: one AppendBatch per shard touched.
- Changing N moves most subjects (plain modulo): resharding is a migration, not a config edit.
- **Queries** (QueryService) follow the records: ``resolve``, ``resolve_subject`` and
  ``list_history`` ask the subject's shard; ``get_tally`` asks the assertion's shard (``shard=``
  or ``subject=``, else the remembered shard, else every shard until one knows it, as
  ``get_assertion``); ``list_lenses`` asks one shard (``shard=0`` by default). The verifiable
  log's reads (``get_checkpoint``, proofs, ``list_record_lsns``) name their shard first: each
  shard is its own log.
- Subjects route in Unicode NFC (the form they are stored in), so ``Café`` typed either way goes
  to one shard.

:class:`ShardedClient` (sync, over :class:`Client`) and :class:`AsyncShardedClient` (asyncio,
over :class:`AsyncClient`) share every rule above: each operation is written once as a plan
(:data:`stemedb.client._core.Plan`, the shard and request of each step) that the class's driver
carries out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import blake3

from stemedb.client import _core as core
from stemedb.client import _protocol as proto
from stemedb.client import _query as query
from stemedb.client._aio import AsyncClient
from stemedb.client._client import Client
from stemedb.client._core import BaseClient, Blocking, Concurrent, Pages, Plan, Rpc, Step
from stemedb.client._errors import ShardLookupError
from stemedb.client._records import GetResult, Page, Receipt, prepare
from stemedb.v1 import query_pb2 as qpb
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb

__all__ = [
    "AsyncShardedClient",
    "ShardReceipt",
    "ShardedClient",
    "shard_of_hash",
    "shard_of_subject",
]

_LOCATE_CACHE_ENTRIES_MAX = 10_000
C = TypeVar("C", bound=BaseClient)
T = TypeVar("T")
P = ParamSpec("P")


def _mod(digest: bytes, shard_count: int) -> int:
    if shard_count < 1:
        raise ValueError(f"shard_count must be >= 1, got {shard_count}")
    return int.from_bytes(digest[:8], "big") % shard_count


def shard_of_subject(subject: str, shard_count: int) -> int:
    """The shard of a subject: first 8 bytes of BLAKE3(subject UTF-8), big-endian, mod N."""
    return _mod(blake3.blake3(subject.encode("utf-8")).digest(), shard_count)


def shard_of_hash(content_hash: bytes, shard_count: int) -> int:
    """The shard of an epoch: the first 8 bytes of its content hash, big-endian, mod N."""
    return _mod(content_hash, shard_count)


@dataclass(frozen=True)
class ShardReceipt(Receipt):
    """A receipt with the index of the shard whose log holds the record (LSNs are per shard)."""

    shard: int


class _Sharding(Generic[C]):
    """The routing state and the plans of every operation; no I/O."""

    _client_type: type[C]

    def __init__(self, shards: Sequence[tuple[str, str]], **settings: Any) -> None:
        """``settings`` are the per-pair client's (``timeout_seconds``, ``tls``, ``writer_tls``,
        ``store_tls``, ``retry``), the same for every pair."""
        if not shards:
            raise ValueError("a sharded client needs at least one (writer, store) pair")
        self.shards: list[C] = [self._client_type(w, s, **settings) for w, s in shards]
        self._located: OrderedDict[bytes, int] = OrderedDict()

    # --- routing -----------------------------------------------------------------------------

    def shard_for_subject(self, subject: str) -> int:
        """The shard of ``subject`` (taken in NFC, the form it is stored in)."""
        return shard_of_subject(core.nfc(subject), len(self.shards))

    def _remember(self, assertion_hash: bytes, shard: int) -> None:
        self._located[assertion_hash] = shard
        self._located.move_to_end(assertion_hash)
        while len(self._located) > _LOCATE_CACHE_ENTRIES_MAX:
            self._located.popitem(last=False)

    def _locate(self, assertion_hash: proto.HashLike) -> Plan[int]:
        h = proto.as_hash(assertion_hash, "assertion_hash")
        if h in self._located:
            return self._located[h]
        for i in range(len(self.shards)):
            if (yield i, core.get_assertion(h)) is not None:
                self._remember(h, i)
                return i
        raise ShardLookupError(
            f"assertion {h.hex()} is on no shard (not ingested yet?): pass its subject"
        )

    def _vote_shard(self, vote: pb.Vote, subject: str | None) -> Plan[int]:
        if subject is not None:
            return self.shard_for_subject(subject)
        return (yield from self._locate(vote.assertion_hash))

    def _shard_of(self, r: pb.Record, digest: bytes, subjects: Mapping[bytes, str]) -> Plan[int]:
        kind = r.WhichOneof("kind")
        if kind == "assertion":
            return self.shard_for_subject(r.assertion.subject)
        if kind == "vote":
            return (yield from self._vote_shard(r.vote, subjects.get(r.vote.assertion_hash)))
        return shard_of_hash(digest, len(self.shards))

    # --- plans -------------------------------------------------------------------------------

    def _ask(self, shard: int, rpc: Rpc[T]) -> Plan[T]:
        result: T = yield shard, rpc
        return result

    def _one_or_every(
        self,
        shard: int | None,
        min_lsn: int,
        build: Callable[[int], Rpc[T]],
        found: Callable[[T], bool],
    ) -> Plan[T]:
        """A read on ``shard`` when known (read-your-writes: ``min_lsn``); else on every shard
        in turn until ``found`` (without ``min_lsn``, which names no shard). The last shard's
        answer stands when none has it."""
        if shard is not None:
            return (yield from self._ask(shard, build(min_lsn)))
        if min_lsn:
            raise ValueError("min_lsn is per shard: pass shard= (from the ShardReceipt)")
        for i in range(len(self.shards) - 1):
            result = yield from self._ask(i, build(0))
            if found(result):
                return result
        return (yield from self._ask(len(self.shards) - 1, build(0)))

    def _on(self, shard: int, rpc: Rpc[Receipt]) -> Plan[ShardReceipt]:
        r = yield from self._ask(shard, rpc)
        return ShardReceipt(r.hash, r.lsn, shard)

    def _append_assertion(
        self, assertion: pb.Assertion, *, timeout: float | None = None
    ) -> Plan[ShardReceipt]:
        """Append an assertion on the shard of its subject."""
        rpc = core.append_assertion(assertion, timeout=timeout)  # validated before routing
        receipt = yield from self._on(self.shard_for_subject(rpc.records[0].assertion.subject), rpc)
        self._remember(receipt.hash, receipt.shard)
        return receipt

    def _append_vote(
        self, vote: pb.Vote, *, subject: str | None = None, timeout: float | None = None
    ) -> Plan[ShardReceipt]:
        """Append a vote on the shard of its assertion (by ``subject``, else located)."""
        rpc = core.append_vote(vote, timeout=timeout)
        shard = yield from self._vote_shard(vote, subject)
        return (yield from self._on(shard, rpc))

    def _append_epoch(self, epoch: pb.Epoch, *, timeout: float | None = None) -> Plan[ShardReceipt]:
        """Append an epoch on the shard of its hash."""
        rpc = core.append_epoch(epoch, timeout=timeout)
        return (yield from self._on(shard_of_hash(rpc.digests[0], len(self.shards)), rpc))

    def _append_batch(
        self,
        records: Sequence[proto.AnyRecord],
        *,
        vote_subjects: Mapping[bytes, str] | None = None,
        timeout: float | None = None,
    ) -> Plan[list[ShardReceipt]]:
        """One AppendBatch per shard touched; receipts in the order of ``records``.

        ``vote_subjects`` maps an assertion hash to its subject for votes whose assertion is not
        in the batch; assertions in the batch are added to it automatically.
        """
        items = [pb.Record() for _ in records]
        for item, r in zip(items, records, strict=True):
            item.CopyFrom(proto.as_record(r))
        digests = [prepare(r, f"records[{i}]") for i, r in enumerate(items)]
        subjects = dict(vote_subjects or {})
        for r, digest in zip(items, digests, strict=True):
            if r.WhichOneof("kind") == "assertion":
                subjects[digest] = r.assertion.subject
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(items):
            shard = yield from self._shard_of(r, digests[i], subjects)
            groups.setdefault(shard, []).append(i)
        out: list[ShardReceipt | None] = [None] * len(items)
        for shard, indexes in sorted(groups.items()):
            rpc = core.append_batch([items[i] for i in indexes], timeout=timeout)
            receipts = yield from self._ask(shard, rpc)
            for i, rc in zip(indexes, receipts, strict=True):
                out[i] = ShardReceipt(rc.hash, rc.lsn, shard)
        return [r for r in out if r is not None]

    def _get(
        self,
        key: bytes | str,
        min_lsn: int = 0,
        *,
        shard: int | None = None,
        timeout: float | None = None,
    ) -> Plan[GetResult]:
        """Read a key: on ``shard`` when given; ``S:<subject>...`` keys on the subject's shard;
        other keys on every shard in turn until found."""
        k = proto.as_key(key)
        if shard is None and k.startswith(b"S:") and b"\x00" in k:
            subject = k[2 : k.index(b"\x00")].decode("utf-8", errors="replace")
            shard = self.shard_for_subject(subject)
        return (
            yield from self._one_or_every(
                shard, min_lsn, lambda lsn: core.get(k, lsn, timeout=timeout), lambda r: r.found
            )
        )

    def _batch_get(
        self,
        keys: Sequence[bytes | str],
        min_lsn: int = 0,
        *,
        shard: int | None = None,
        timeout: float | None = None,
    ) -> Plan[list[GetResult]]:
        """Read several keys: all on ``shard`` when given; else one BatchGet per shard in turn
        for the keys not found yet (the last shard's answer stands for a key none holds)."""
        if shard is not None:
            return (yield from self._ask(shard, core.batch_get(keys, min_lsn, timeout=timeout)))
        if min_lsn:
            raise ValueError("min_lsn is per shard: pass shard= (from the ShardReceipt)")
        ks = [proto.as_key(k) for k in keys]
        out: dict[int, GetResult] = {}
        missing = list(range(len(ks)))
        for i in range(len(self.shards)):
            last = i == len(self.shards) - 1
            rpc = core.batch_get([ks[j] for j in missing], timeout=timeout)
            results = yield from self._ask(i, rpc)
            for j, r in zip(missing, results, strict=True):
                if r.found or last:
                    out[j] = r
            missing = [j for j in missing if j not in out]
            if not missing:
                break
        return [out[j] for j in range(len(ks))]

    def _get_assertion(
        self,
        assertion_hash: proto.HashLike,
        min_lsn: int = 0,
        *,
        shard: int | None = None,
        timeout: float | None = None,
    ) -> Plan[pb.Assertion | None]:
        """The assertion with this hash: from ``shard``, the remembered shard, or every shard."""
        h = proto.as_hash(assertion_hash, "assertion_hash")
        if shard is None:
            shard = self._located.get(h)
        return (
            yield from self._one_or_every(
                shard, min_lsn, lambda lsn: core.get_assertion(h, lsn, timeout=timeout),
                lambda a: a is not None,
            )
        )  # fmt: skip

    def _locate_assertion(self, assertion_hash: proto.HashLike) -> Plan[int]:
        """The shard whose store holds the assertion (asks each in turn; cached)."""
        return (yield from self._locate(assertion_hash))

    def _list_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        subject: str | None = None,
        timeout: float | None = None,
    ) -> Plan[Page[spb.HashedVote]]:
        """Votes on an assertion, from its shard (by ``subject``, else located)."""
        h = proto.as_hash(assertion_hash, "assertion_hash")
        shard = self.shard_for_subject(subject) if subject is not None else None
        if shard is None:
            shard = yield from self._locate(h)
        return (
            yield from self._ask(
                shard, core.list_votes(h, page_size, page_token, min_lsn, timeout=timeout)
            )
        )


def _by_subject(
    build: Callable[Concatenate[str, P], Rpc[T]],
) -> Callable[Concatenate[_Sharding[Any], str, P], Plan[T]]:
    """The plan of a read about one subject: the core's request, on the subject's shard."""

    def plan(self: _Sharding[Any], subject: str, /, *args: P.args, **kwargs: P.kwargs) -> Plan[T]:
        return (
            yield from self._ask(self.shard_for_subject(subject), build(subject, *args, **kwargs))
        )

    plan.__doc__ = build.__doc__
    return plan


def _subject_pages(
    build: Callable[Concatenate[str, P], Pages[T]],
) -> Callable[Concatenate[_Sharding[Any], str, P], tuple[int, Pages[T]]]:
    """A listing about one subject: the core's pages, on the subject's shard."""

    def pages(
        self: _Sharding[Any], subject: str, /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[int, Pages[T]]:
        return self.shard_for_subject(subject), build(subject, *args, **kwargs)

    pages.__doc__ = build.__doc__
    return pages


def _on_shard(
    build: Callable[P, Rpc[T]],
) -> Callable[Concatenate[_Sharding[Any], int, P], Plan[T]]:
    """A read of one named shard (a scan across shards has no single key order)."""

    def plan(self: _Sharding[Any], shard: int, /, *args: P.args, **kwargs: P.kwargs) -> Plan[T]:
        return (yield from self._ask(shard, build(*args, **kwargs)))

    plan.__doc__ = build.__doc__
    return plan


# --- QueryService and LogService (docs/clients.md: "Sharded queries") -------------------------


def _get_tally(
    self: _Sharding[Any],
    assertion_hash: proto.HashLike,
    min_lsn: int = 0,
    *,
    subject: str | None = None,
    shard: int | None = None,
    timeout: float | None = None,
) -> Plan[qpb.GetTallyResponse]:
    """The tally of an assertion from its shard: ``shard``, else the shard of ``subject``, else
    the remembered one, else every shard in turn until one knows it (``min_lsn`` needs a shard,
    as for ``get_assertion``)."""
    h = proto.as_hash(assertion_hash, "assertion_hash")
    if shard is None and subject is not None:
        shard = self.shard_for_subject(subject)
    if shard is None:
        shard = self._located.get(h)
    tally: qpb.GetTallyResponse = yield from self._one_or_every(
        shard, min_lsn, lambda lsn: query.get_tally(h, lsn, timeout=timeout), lambda r: r.found
    )
    return tally


def _list_lenses(
    self: _Sharding[Any], *, shard: int = 0, timeout: float | None = None
) -> Plan[qpb.ListLensesResponse]:
    """The lenses of one shard's ingestor (shard 0 unless told; every shard should serve one
    trust policy: compare ``policy_hash``)."""
    return (yield from self._ask(shard, query.list_lenses(timeout=timeout)))


_list_assertions_by_subject = _by_subject(core.list_assertions_by_subject)
_iter_assertions_by_subject = _subject_pages(core.iter_assertions_by_subject)
_scan_prefix = _on_shard(core.scan_prefix)
_resolve = _by_subject(query.resolve)
_resolve_subject = _by_subject(query.resolve_subject)
_list_history = _by_subject(query.list_history)
_iter_resolve_subject = _subject_pages(query.iter_resolve_subject)
_iter_history = _subject_pages(query.iter_history)
_get_checkpoint = _on_shard(query.get_checkpoint)
_get_inclusion_proof = _on_shard(query.get_inclusion_proof)
_get_consistency_proof = _on_shard(query.get_consistency_proof)
_list_record_lsns = _on_shard(query.list_record_lsns)


class _ShardOperations(_Sharding[C]):
    """Every operation of a sharded client, declared once for both flavours."""

    locate_assertion = core.routed(_Sharding._locate_assertion)
    append_assertion = core.routed(_Sharding._append_assertion)
    append_vote = core.routed(_Sharding._append_vote)
    append_epoch = core.routed(_Sharding._append_epoch)
    append_batch = core.routed(_Sharding._append_batch)
    get = core.routed(_Sharding._get)
    batch_get = core.routed(_Sharding._batch_get)
    get_assertion = core.routed(_Sharding._get_assertion)
    list_assertions_by_subject = core.routed(_list_assertions_by_subject)
    list_votes = core.routed(_Sharding._list_votes)
    scan_prefix = core.routed(_scan_prefix)
    iter_assertions_by_subject = core.routed_pages(_iter_assertions_by_subject)
    # QueryService: by subject (a slot's candidates live on its subject's shard); a tally on
    # its assertion's shard. LogService: per shard (each shard is its own log).
    resolve = core.routed(_resolve)
    resolve_subject = core.routed(_resolve_subject)
    list_history = core.routed(_list_history)
    get_tally = core.routed(_get_tally)
    list_lenses = core.routed(_list_lenses)
    iter_resolve_subject = core.routed_pages(_iter_resolve_subject)
    iter_history = core.routed_pages(_iter_history)
    get_checkpoint = core.routed(_get_checkpoint)
    get_inclusion_proof = core.routed(_get_inclusion_proof)
    get_consistency_proof = core.routed(_get_consistency_proof)
    list_record_lsns = core.routed(_list_record_lsns)


class ShardedClient(_ShardOperations[Client], Blocking):
    """Several (writer, store) pairs, e.g. ``ShardedClient([("w0:50051", "s0:50052"), ...])``."""

    _client_type = Client

    def close(self) -> None:
        for c in self.shards:
            c.close()

    def __enter__(self) -> ShardedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _drive(self, plan: Plan[T]) -> T:
        step = Step(plan)
        while step.pending:
            step.send(self.shards[step.shard]._run(step.rpc))
        return step.result

    def _iterate_on(self, target: tuple[int, Pages[T]]) -> Iterator[T]:
        return self.shards[target[0]]._iterate(target[1])


class AsyncShardedClient(_ShardOperations[AsyncClient], Concurrent):
    """The asyncio twin of :class:`ShardedClient` (same rules, coroutine methods)."""

    _client_type = AsyncClient

    async def close(self) -> None:
        for c in self.shards:
            await c.close()

    async def __aenter__(self) -> AsyncShardedClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _drive(self, plan: Plan[T]) -> T:
        step = Step(plan)
        while step.pending:
            step.send(await self.shards[step.shard]._run(step.rpc))
        return step.result

    def _iterate_on(self, target: tuple[int, Pages[T]]) -> AsyncIterator[T]:
        return self.shards[target[0]]._iterate(target[1])
