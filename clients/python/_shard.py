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
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import blake3
from stemedb.client import _protocol as proto
from stemedb.client._channel import TlsConfig
from stemedb.client._client import DEFAULT_TIMEOUT_SECONDS, Client
from stemedb.client._errors import ShardLookupError
from stemedb.client._records import Entry, GetResult, Page, Receipt, prepare
from stemedb.client._retry import RetryPolicy

from stemedb import canonical
from stemedb.errors import InvalidRecord
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.validation import validate_assertion, validate_epoch, validate_vote

__all__ = ["ShardReceipt", "ShardedClient", "shard_of_hash", "shard_of_subject"]

_LOCATE_CACHE_ENTRIES_MAX = 10_000


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


class ShardedClient:
    """Several (writer, store) pairs, e.g. ``ShardedClient([("w0:50051", "s0:50052"), ...])``."""

    def __init__(
        self,
        shards: Sequence[tuple[str, str]],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        tls: TlsConfig | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not shards:
            raise ValueError("a ShardedClient needs at least one (writer, store) pair")
        self.shards = [
            Client(w, s, timeout_seconds=timeout_seconds, tls=tls, retry=retry) for w, s in shards
        ]
        self._located: OrderedDict[bytes, int] = OrderedDict()

    def close(self) -> None:
        for c in self.shards:
            c.close()

    def __enter__(self) -> ShardedClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- routing -----------------------------------------------------------------------------

    def shard_for_subject(self, subject: str) -> int:
        return shard_of_subject(subject, len(self.shards))

    def _remember(self, assertion_hash: bytes, shard: int) -> None:
        self._located[assertion_hash] = shard
        self._located.move_to_end(assertion_hash)
        while len(self._located) > _LOCATE_CACHE_ENTRIES_MAX:
            self._located.popitem(last=False)

    def locate_assertion(self, assertion_hash: proto.HashLike) -> int:
        """The shard whose store holds the assertion (asks each in turn; cached)."""
        h = proto.as_hash(assertion_hash, "assertion_hash")
        if h in self._located:
            return self._located[h]
        for i, c in enumerate(self.shards):
            if c.get_assertion(h) is not None:
                self._remember(h, i)
                return i
        raise ShardLookupError(
            f"assertion {h.hex()} is on no shard (not ingested yet?): pass its subject"
        )

    def _vote_shard(self, vote: pb.Vote, subject: str | None) -> int:
        if subject is not None:
            return self.shard_for_subject(subject)
        return self.locate_assertion(vote.assertion_hash)

    def _shard_of(self, r: pb.Record, subjects: Mapping[bytes, str]) -> int:
        kind = r.WhichOneof("kind")
        if kind == "assertion":
            return self.shard_for_subject(r.assertion.subject)
        if kind == "vote":
            return self._vote_shard(r.vote, subjects.get(r.vote.assertion_hash))
        if kind == "epoch":
            return shard_of_hash(prepare(r), len(self.shards))
        raise InvalidRecord("record", "is empty: set one of assertion, vote, epoch")

    # --- appends -----------------------------------------------------------------------------

    def append_assertion(
        self, assertion: pb.Assertion, *, timeout: float | None = None
    ) -> ShardReceipt:
        validate_assertion(assertion)  # before routing: an invalid subject has no shard
        shard = self.shard_for_subject(assertion.subject)
        r = self.shards[shard].append_assertion(assertion, timeout=timeout)
        self._remember(r.hash, shard)
        return ShardReceipt(r.hash, r.lsn, shard)

    def append_vote(
        self, vote: pb.Vote, *, subject: str | None = None, timeout: float | None = None
    ) -> ShardReceipt:
        """Append a vote on the shard of its assertion (by ``subject``, else located)."""
        validate_vote(vote)
        shard = self._vote_shard(vote, subject)
        r = self.shards[shard].append_vote(vote, timeout=timeout)
        return ShardReceipt(r.hash, r.lsn, shard)

    def append_epoch(self, epoch: pb.Epoch, *, timeout: float | None = None) -> ShardReceipt:
        validate_epoch(epoch)
        digest = canonical.record_hash(pb.Record(epoch=epoch))
        shard = shard_of_hash(digest, len(self.shards))
        r = self.shards[shard].append_epoch(epoch, timeout=timeout)
        return ShardReceipt(r.hash, r.lsn, shard)

    def append_batch(
        self,
        records: Sequence[proto.AnyRecord],
        *,
        vote_subjects: Mapping[bytes, str] | None = None,
        timeout: float | None = None,
    ) -> list[ShardReceipt]:
        """One AppendBatch per shard touched; receipts in the order of ``records``.

        ``vote_subjects`` maps an assertion hash to its subject for votes whose assertion is not
        in the batch; assertions in the batch are added to it automatically.
        """
        items = [proto.as_record(r) for r in records]
        subjects = dict(vote_subjects or {})
        for i, r in enumerate(items):
            if r.WhichOneof("kind") == "assertion":
                subjects[prepare(r, f"records[{i}]")] = r.assertion.subject
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(items):
            prepare(r, f"records[{i}]")
            groups.setdefault(self._shard_of(r, subjects), []).append(i)
        out: list[ShardReceipt | None] = [None] * len(items)
        for shard, indexes in sorted(groups.items()):
            receipts = self.shards[shard].append_batch([items[i] for i in indexes], timeout=timeout)
            for i, rc in zip(indexes, receipts, strict=True):
                out[i] = ShardReceipt(rc.hash, rc.lsn, shard)
        return [r for r in out if r is not None]

    # --- reads -------------------------------------------------------------------------------

    def get(
        self,
        key: bytes | str,
        min_lsn: int = 0,
        *,
        shard: int | None = None,
        timeout: float | None = None,
    ) -> GetResult:
        """Read a key: on ``shard`` when given; ``S:<subject>...`` keys on the subject's shard;
        other keys on every shard in turn until found."""
        k = proto.as_key(key)
        if shard is None and k.startswith(b"S:") and b"\x00" in k:
            subject = k[2 : k.index(b"\x00")].decode("utf-8", errors="replace")
            shard = self.shard_for_subject(subject)
        if shard is not None:
            return self.shards[shard].get(k, min_lsn, timeout=timeout)
        if min_lsn:
            raise ValueError("min_lsn is per shard: pass shard= (from the ShardReceipt)")
        for c in self.shards[:-1]:
            result = c.get(k, timeout=timeout)
            if result.found:
                return result
        return self.shards[-1].get(k, timeout=timeout)

    def get_assertion(
        self,
        assertion_hash: proto.HashLike,
        min_lsn: int = 0,
        *,
        shard: int | None = None,
        timeout: float | None = None,
    ) -> pb.Assertion | None:
        h = proto.as_hash(assertion_hash, "assertion_hash")
        if shard is None and h in self._located:
            shard = self._located[h]
        if shard is not None:
            return self.shards[shard].get_assertion(h, min_lsn, timeout=timeout)
        if min_lsn:
            raise ValueError("min_lsn is per shard: pass shard= (from the ShardReceipt)")
        for c in self.shards:
            found = c.get_assertion(h, timeout=timeout)
            if found is not None:
                return found
        return None

    def list_assertions_by_subject(
        self,
        subject: str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[spb.HashedAssertion]:
        shard = self.shards[self.shard_for_subject(subject)]
        return shard.list_assertions_by_subject(
            subject, page_size, page_token, min_lsn, timeout=timeout
        )

    def iter_assertions_by_subject(
        self, subject: str, page_size: int = 0, min_lsn: int = 0, *, timeout: float | None = None
    ) -> Iterator[spb.HashedAssertion]:
        shard = self.shards[self.shard_for_subject(subject)]
        return shard.iter_assertions_by_subject(subject, page_size, min_lsn, timeout=timeout)

    def list_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        subject: str | None = None,
        timeout: float | None = None,
    ) -> Page[spb.HashedVote]:
        """Votes on an assertion, from its shard (by ``subject``, else located)."""
        h = proto.as_hash(assertion_hash, "assertion_hash")
        index = self.shard_for_subject(subject) if subject is not None else self.locate_assertion(h)
        return self.shards[index].list_votes(h, page_size, page_token, min_lsn, timeout=timeout)

    def scan_prefix(
        self,
        shard: int,
        prefix: bytes | str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[Entry]:
        """A prefix scan of one shard (a scan across shards has no single key order)."""
        return self.shards[shard].scan_prefix(
            prefix, page_size, page_token, min_lsn, timeout=timeout
        )
