"""The client core: everything the clients do that is not I/O, written once.

:class:`Client`, :class:`AsyncClient`, :class:`ShardedClient` and :class:`AsyncShardedClient`
share it the way httpx's ``Client`` and ``AsyncClient`` share ``BaseClient``:

- **Requests are built here** as :class:`Rpc` values: which stub (the writer's, or the
  ingestor's StoreService, QueryService or LogService on the store channel), which
  method, the request message, and how to check and convert the response. Building one
  NFC-normalizes, validates and hashes the record (:func:`stemedb.client._records.prepare`), so
  InvalidRecord comes before any network call, and the response check compares the receipt with
  the local hash. The QueryService and LogService requests are :mod:`stemedb.client._query`'s.
- **Paging** is :class:`Pages`: the next request of a listing from the page just read, so the
  "follow next_page_token" loop is one small driver per flavour (sync, asyncio).
- **Operations** are declared once (:class:`Operations`): :func:`operation` and :func:`paged`
  turn a builder into a method; the method builds the Rpc and hands it to the class's runner
  (``_run`` sends one with the retry policy, ``_iterate`` follows the pages). A
  :class:`Blocking` class's runner blocks, a :class:`Concurrent` class's runner is a coroutine;
  the type checker sees each method's result in the class's flavour.
- :class:`BaseClient` holds the settings (targets, deadline, retry policy, TLS per channel).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, cast, overload

from stemedb.client import _protocol as proto
from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig
from stemedb.client._errors import ReadMismatch
from stemedb.client._records import (
    Entry,
    GetResult,
    Page,
    Receipt,
    check_batch_receipts,
    check_receipt,
    normalize_record,
    prepare,
    prepare_batch,
    wallet_signs,
)
from stemedb.client._retry import RetryPolicy
from stemedb.errors import InvalidRecord
from stemedb.v1 import log_pb2_grpc, query_pb2_grpc, store_pb2_grpc, writer_pb2_grpc
from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import writer_pb2 as wpb

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "WALLET_KEY_METADATA",
    "BaseClient",
    "Blocking",
    "Channel",
    "Concurrent",
    "Listing",
    "Operation",
    "Operations",
    "Pages",
    "Plan",
    "Rpc",
    "Step",
    "nfc",
    "operation",
    "paged",
    "routed",
    "routed_pages",
]

DEFAULT_TIMEOUT_SECONDS = 10.0
# The request metadata naming the wallet key that signs (DESIGN 11).
WALLET_KEY_METADATA = "stemedb-key"
# The stubs a client holds: the writer's, and the ingestor's three services on the store channel.
Channel = Literal["writer", "store", "query", "log"]
T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True)
class Rpc(Generic[T]):
    """One call, ready to send: ``parse`` checks the response and makes the result.

    ``records`` and ``digests`` are the prepared records of an append and their hashes (a
    sharded client routes by them)."""

    channel: Channel
    method: str
    request: Any
    parse: Callable[[Any], T]
    timeout: float | None = None
    records: tuple[pb.Record, ...] = field(default=(), repr=False)
    digests: tuple[bytes, ...] = ()
    # An append holding a vote for the wallet to sign: only a client set up to write through a
    # wallet sends it (``through_wallet``); any other refuses it before the network.
    needs_wallet: bool = False


@dataclass(frozen=True)
class Pages(Generic[T]):
    """A listing: ``fetch(page_token)`` is the Rpc of one page; :meth:`after` is the next one,
    or None after the last page (AIP-158: an empty ``next_page_token``)."""

    fetch: Callable[[str], Rpc[Page[T]]]

    def first(self) -> Rpc[Page[T]]:
        return self.fetch("")

    def after(self, page: Page[T]) -> Rpc[Page[T]] | None:
        return self.fetch(page.next_page_token) if page.next_page_token else None


def nfc(text: str) -> str:
    """``text`` in Unicode NFC: subjects are stored so, and a query must match them."""
    return unicodedata.normalize("NFC", text)


# --- appends -----------------------------------------------------------------------------------

_APPEND_METHODS = {
    "assertion": ("AppendAssertion", wpb.AppendAssertionRequest),
    "vote": ("AppendVote", wpb.AppendVoteRequest),
    "epoch": ("AppendEpoch", wpb.AppendEpochRequest),
}


def _append(record: pb.Record, timeout: float | None) -> Rpc[Receipt]:
    digest = prepare(record)  # names fields from the kind ("assertion.subject"), as the writer
    kind = str(record.WhichOneof("kind"))  # prepare refused an empty record
    method, request_type = _APPEND_METHODS[kind]
    request = request_type(**{kind: getattr(record, kind)})
    expected = None if wallet_signs(record) else digest
    return Rpc(
        "writer", method, request, lambda resp: check_receipt(expected, resp.receipt, method),
        timeout, (record,), (digest,), needs_wallet=expected is None,
    )  # fmt: skip


def append_assertion(assertion: pb.Assertion, *, timeout: float | None = None) -> Rpc[Receipt]:
    """Append one assertion; return its receipt (hash checked against the local hash)."""
    return _append(pb.Record(assertion=assertion), timeout)


def append_vote(vote: pb.Vote, *, timeout: float | None = None) -> Rpc[Receipt]:
    """Append one signed vote (see ``AgentKey.vote``); through a wallet (``through_wallet``),
    a vote with only ``assertion_hash`` and ``weight`` set, which the wallet completes and
    signs (its receipt's hash is then the wallet's vote's)."""
    return _append(pb.Record(vote=vote), timeout)


def append_epoch(epoch: pb.Epoch, *, timeout: float | None = None) -> Rpc[Receipt]:
    """Append one epoch."""
    return _append(pb.Record(epoch=epoch), timeout)


def append_record(record: proto.AnyRecord, *, timeout: float | None = None) -> Rpc[Receipt]:
    """Append one record of any kind through its own RPC."""
    r = pb.Record()
    r.CopyFrom(proto.as_record(record))  # the caller's message is left as it was
    return _append(r, timeout)


def append_batch(
    records: Sequence[proto.AnyRecord], *, timeout: float | None = None
) -> Rpc[list[Receipt]]:
    """Append up to 10,000 records (16 MiB) all-or-nothing; receipts[i] answers records[i]."""
    request = wpb.AppendBatchRequest(records=[proto.as_record(r) for r in records])
    for i, r in enumerate(request.records):
        normalize_record(r, f"records[{i}]")  # NFC first: the size bound is of what is sent
    digests = prepare_batch(request.records, request.ByteSize())
    expected = [
        None if wallet_signs(r) else d for r, d in zip(request.records, digests, strict=True)
    ]

    def parse(resp: wpb.AppendBatchResponse) -> list[Receipt]:
        return check_batch_receipts(expected, resp.receipts)

    return Rpc(
        "writer", "AppendBatch", request, parse,
        timeout, tuple(request.records), tuple(digests), needs_wallet=None in expected,
    )  # fmt: skip


# --- reads -------------------------------------------------------------------------------------


def get(key: bytes | str, min_lsn: int = 0, *, timeout: float | None = None) -> Rpc[GetResult]:
    """Read one key (e.g. ``"H:" + hash hex``); waits for ``min_lsn`` (read-your-writes)."""
    k = proto.as_key(key)
    request = spb.GetRequest(key=k, min_lsn=min_lsn)
    return Rpc("store", "Get", request, lambda resp: proto.get_result(k, resp), timeout)


def batch_get(
    keys: Sequence[bytes | str], min_lsn: int = 0, *, timeout: float | None = None
) -> Rpc[list[GetResult]]:
    """Read up to 1,000 keys in one call, all at one applied LSN; result i answers keys[i]."""
    ks = [proto.as_key(k) for k in keys]
    request = spb.BatchGetRequest(keys=ks, min_lsn=min_lsn)

    def parse(resp: spb.BatchGetResponse) -> list[GetResult]:
        if len(resp.results) != len(ks):
            raise ReadMismatch(f"BatchGet of {len(ks)} keys answered {len(resp.results)} results")
        return [proto.get_result(k, r) for k, r in zip(ks, resp.results, strict=True)]

    return Rpc("store", "BatchGet", request, parse, timeout)


def scan_prefix(
    prefix: bytes | str,
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[Entry]]:
    """One page of the keys under ``prefix`` in byte order (page_size 0: the server's 100)."""
    request = spb.ScanPrefixRequest(
        prefix=proto.as_key(prefix), page_size=page_size, page_token=page_token, min_lsn=min_lsn
    )
    return Rpc("store", "ScanPrefix", request, proto.page_of_entries, timeout)


def iter_scan_prefix(
    prefix: bytes | str, page_size: int = 0, min_lsn: int = 0, *, timeout: float | None = None
) -> Pages[Entry]:
    """Every entry under ``prefix``, page after page (each page is one call)."""
    return Pages(lambda token: scan_prefix(prefix, page_size, token, min_lsn, timeout=timeout))


def get_assertion(
    assertion_hash: proto.HashLike, min_lsn: int = 0, *, timeout: float | None = None
) -> Rpc[pb.Assertion | None]:
    """The assertion with this hash (with every co-signature seen), or None."""
    h = proto.as_hash(assertion_hash, "assertion_hash")
    request = spb.GetAssertionRequest(hash=h, min_lsn=min_lsn)

    def parse(resp: spb.GetAssertionResponse) -> pb.Assertion | None:
        return proto.check_assertion(h, resp.assertion) if resp.found else None

    return Rpc("store", "GetAssertion", request, parse, timeout)


def list_assertions_by_subject(
    subject: str,
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[spb.HashedAssertion]]:
    """One page of the assertions about exactly ``subject`` (as NFC), in hash order."""
    request = spb.ListAssertionsBySubjectRequest(
        subject=nfc(subject), page_size=page_size, page_token=page_token, min_lsn=min_lsn
    )
    return Rpc("store", "ListAssertionsBySubject", request, proto.page_of_assertions, timeout)


def iter_assertions_by_subject(
    subject: str, page_size: int = 0, min_lsn: int = 0, *, timeout: float | None = None
) -> Pages[spb.HashedAssertion]:
    """Every assertion about exactly ``subject``, page after page."""
    return Pages(
        lambda token: list_assertions_by_subject(
            subject, page_size, token, min_lsn, timeout=timeout
        )
    )


def list_votes(
    assertion_hash: proto.HashLike,
    page_size: int = 0,
    page_token: str = "",
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Rpc[Page[spb.HashedVote]]:
    """One page of the votes on an assertion, in vote-hash order."""
    request = spb.ListVotesRequest(
        assertion_hash=proto.as_hash(assertion_hash, "assertion_hash"),
        page_size=page_size, page_token=page_token, min_lsn=min_lsn,
    )  # fmt: skip
    return Rpc("store", "ListVotes", request, proto.page_of_votes, timeout)


def iter_votes(
    assertion_hash: proto.HashLike,
    page_size: int = 0,
    min_lsn: int = 0,
    *,
    timeout: float | None = None,
) -> Pages[spb.HashedVote]:
    """Every vote on an assertion, page after page."""
    h = proto.as_hash(assertion_hash, "assertion_hash")
    return Pages(lambda token: list_votes(h, page_size, token, min_lsn, timeout=timeout))


# --- operations: a builder becomes a method ----------------------------------------------------


class Blocking:
    """Marks a client whose runners block (``_run`` returns the result)."""


class Concurrent:
    """Marks an asyncio client (``_run`` is a coroutine, ``_iterate`` an async iterator)."""


class _Bound:
    """What the operations share: the builder, the runner it is handed to, and whether the
    builder is a method of the client itself (the sharded clients' plans route by its state)."""

    def __init__(self, build: Callable[..., Any], runner: str, with_self: bool) -> None:
        self._build = build
        self._runner = runner
        self._with_self = with_self
        functools.update_wrapper(cast(Any, self), build)

    def _bind(self, obj: object) -> Callable[..., Any]:
        run = getattr(obj, self._runner)
        build = functools.partial(self._build, obj) if self._with_self else self._build

        @functools.wraps(self._build)
        def call(*args: Any, **kwargs: Any) -> Any:
            return run(build(*args, **kwargs))

        return call


class Operation(_Bound, Generic[P, T]):
    """A builder declared once as a method of both flavours: on a :class:`Blocking` client it
    returns the result, on a :class:`Concurrent` one a coroutine of it."""

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Operation[P, T]: ...
    @overload
    def __get__(self, obj: Blocking, owner: type[Any] | None = None) -> Callable[P, T]: ...
    @overload
    def __get__(
        self, obj: Concurrent, owner: type[Any] | None = None
    ) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: object | None, owner: type[Any] | None = None) -> Any:
        return self if obj is None else self._bind(obj)


class Listing(_Bound, Generic[P, T]):
    """A listing declared once: an iterator on a :class:`Blocking` client, an async iterator on
    a :class:`Concurrent` one, following next_page_token."""

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Listing[P, T]: ...
    @overload
    def __get__(
        self, obj: Blocking, owner: type[Any] | None = None
    ) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(
        self, obj: Concurrent, owner: type[Any] | None = None
    ) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: object | None, owner: type[Any] | None = None) -> Any:
        return self if obj is None else self._bind(obj)


def operation(build: Callable[P, Rpc[T]]) -> Operation[P, T]:
    """A method that sends ``build(...)`` with the class's ``_run``."""
    return Operation(build, "_run", with_self=False)


def paged(build: Callable[P, Pages[T]]) -> Listing[P, T]:
    """A method that follows ``build(...)``'s pages with the class's ``_iterate``."""
    return Listing(build, "_iterate", with_self=False)


# A sharded client's operation is a plan: a generator that yields (shard index, Rpc), is sent
# each result, and returns the operation's result. Routing, fan-out and lookups are written once
# as plans; a sync or asyncio driver carries them out (:class:`Step`).
Plan = Generator[tuple[int, Rpc[Any]], Any, T]


class Step(Generic[T]):
    """Carries a plan forward: ``while step.pending: step.send(run(step.shard, step.rpc))``."""

    def __init__(self, plan: Plan[T]) -> None:
        self._plan = plan
        self.pending = True
        self.result: T
        self.send(None)

    def send(self, value: Any) -> None:
        try:
            self.shard, self.rpc = self._plan.send(value)
        except StopIteration as done:
            self.pending = False
            self.result = done.value


def routed(build: Callable[Concatenate[Any, P], Plan[T]]) -> Operation[P, T]:
    """A sharded method: ``build(self, ...)`` is a plan that the class's ``_drive`` runs."""
    return Operation(build, "_drive", with_self=True)


def routed_pages(build: Callable[Concatenate[Any, P], tuple[int, Pages[T]]]) -> Listing[P, T]:
    """A sharded listing: ``build(self, ...)`` names the shard and its pages."""
    return Listing(build, "_iterate_on", with_self=True)


# --- settings ----------------------------------------------------------------------------------


class BaseClient:
    """The settings every client has: targets, deadline, retry policy, TLS per channel.

    ``tls`` applies to both channels; ``writer_tls`` and ``store_tls`` override it for one
    (e.g. a TLS writer and a plaintext ingestor: ``writer_tls=TlsConfig(...)`` alone)."""

    def __init__(
        self,
        writer: str = DEFAULT_WRITER,
        store: str = DEFAULT_STORE,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        tls: TlsConfig | None = None,
        writer_tls: TlsConfig | None = None,
        store_tls: TlsConfig | None = None,
        retry: RetryPolicy | None = None,
        through_wallet: bool = False,
        wallet_key: str | None = None,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if wallet_key is not None and not wallet_key:
            raise ValueError("wallet_key must be a key name, not empty")
        # Writing through a stemedb-wallet (DESIGN 11): ``writer`` is the wallet's address; it
        # signs what arrives unsigned, with ``wallet_key`` (sent as the stemedb-key metadata)
        # or its default key.
        self.through_wallet = through_wallet or wallet_key is not None
        self.wallet_key = wallet_key
        self._writer_metadata: tuple[tuple[str, str], ...] = (
            ((WALLET_KEY_METADATA, wallet_key),) if wallet_key else ()
        )
        self.writer_target = writer
        self.store_target = store
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.writer_tls = writer_tls if writer_tls is not None else tls
        self.store_tls = store_tls if store_tls is not None else tls
        # The channels are the sync or asyncio class's own kind (its ``_connect``).
        self._writer_channel = self._connect(writer, self.writer_tls)
        self._store_channel = self._connect(store, self.store_tls)
        self._stubs: dict[Channel, Any] = {
            "writer": writer_pb2_grpc.WriterServiceStub(self._writer_channel),  # type: ignore[no-untyped-call]
            "store": store_pb2_grpc.StoreServiceStub(self._store_channel),  # type: ignore[no-untyped-call]
            "query": query_pb2_grpc.QueryServiceStub(self._store_channel),  # type: ignore[no-untyped-call]
            "log": log_pb2_grpc.LogServiceStub(self._store_channel),  # type: ignore[no-untyped-call]
        }

    @staticmethod
    def _connect(target: str, tls: TlsConfig | None) -> Any:
        raise NotImplementedError

    def _target(self, channel: Channel) -> str:
        return self.writer_target if channel == "writer" else self.store_target

    def _deadline(self, rpc: Rpc[Any]) -> float:
        return self.timeout_seconds if rpc.timeout is None else rpc.timeout

    def _metadata(self, rpc: Rpc[Any]) -> tuple[tuple[str, str], ...]:
        """The request metadata of ``rpc`` (the wallet's key name on writes), after refusing a
        vote left for a wallet when this client writes to a writer."""
        if rpc.needs_wallet and not self.through_wallet:
            raise InvalidRecord(
                "vote.agent_id",
                "is empty: only a wallet completes and signs such a vote; sign it (AgentKey.vote) "
                "or write through a wallet (through_wallet=True, writer = the wallet's socket)",
            )
        return self._writer_metadata if rpc.channel == "writer" else ()


class Operations(BaseClient):
    """Every operation of a (writer, store) client, declared once for both flavours."""

    append_assertion = operation(append_assertion)
    append_vote = operation(append_vote)
    append_epoch = operation(append_epoch)
    append_record = operation(append_record)
    append_batch = operation(append_batch)
    get = operation(get)
    batch_get = operation(batch_get)
    get_assertion = operation(get_assertion)
    scan_prefix = operation(scan_prefix)
    list_assertions_by_subject = operation(list_assertions_by_subject)
    list_votes = operation(list_votes)
    iter_scan_prefix = paged(iter_scan_prefix)
    iter_assertions_by_subject = paged(iter_assertions_by_subject)
    iter_votes = paged(iter_votes)
