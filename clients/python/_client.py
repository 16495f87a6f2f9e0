"""Client: the synchronous client of a writer (appends) and a store (reads).

Every call has a deadline (``timeout_seconds`` per attempt, overridable per call), UNAVAILABLE is
retried per the RetryPolicy, and gRPC errors come out as :class:`RpcFailed`. Appends validate and
hash the record locally first (InvalidRecord before any network call) and check the receipt's
hash against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import grpc
from stemedb.client import _protocol as proto
from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig, sync_channel
from stemedb.client._errors import translate
from stemedb.client._records import (
    Entry,
    GetResult,
    Page,
    Receipt,
    check_batch_receipts,
    check_receipt,
)
from stemedb.client._retry import RetryPolicy, call_with_retry

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc, writer_pb2_grpc

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Client"]

DEFAULT_TIMEOUT_SECONDS = 10.0
Req = TypeVar("Req")
Resp = TypeVar("Resp")


class Client:
    """A writer and a store, e.g. ``Client("127.0.0.1:50051", "127.0.0.1:50052")``.

    Use it as a context manager, or call :meth:`close`. Thread-safe (gRPC channels are).
    """

    def __init__(
        self,
        writer: str = DEFAULT_WRITER,
        store: str = DEFAULT_STORE,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        tls: TlsConfig | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.writer_target = writer
        self.store_target = store
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._writer_channel = sync_channel(writer, tls)
        self._store_channel = sync_channel(store, tls)
        self._writer = writer_pb2_grpc.WriterServiceStub(self._writer_channel)  # type: ignore[no-untyped-call]
        self._store = store_pb2_grpc.StoreServiceStub(self._store_channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self._writer_channel.close()
        self._store_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self,
        method: str,
        target: str,
        fn: Callable[..., Resp],
        request: Req,
        timeout: float | None,
    ) -> Resp:
        deadline = self.timeout_seconds if timeout is None else timeout
        try:
            return call_with_retry(lambda: fn(request, timeout=deadline), self.retry)
        except grpc.RpcError as exc:
            raise translate(exc, method, target) from exc

    def _write(self, method: str, fn: Callable[..., Resp], request: Req, t: float | None) -> Resp:
        return self._call(method, self.writer_target, fn, request, t)

    def _read(self, method: str, fn: Callable[..., Resp], request: Req, t: float | None) -> Resp:
        return self._call(method, self.store_target, fn, request, t)

    # --- appends -----------------------------------------------------------------------------

    def append_assertion(self, assertion: pb.Assertion, *, timeout: float | None = None) -> Receipt:
        """Append one assertion; return its receipt (hash checked against the local hash)."""
        request, digest = proto.assertion_request(assertion)
        resp = self._write("AppendAssertion", self._writer.AppendAssertion, request, timeout)
        return check_receipt(digest, resp.receipt, "AppendAssertion")

    def append_vote(self, vote: pb.Vote, *, timeout: float | None = None) -> Receipt:
        """Append one signed vote (see ``AgentKey.vote``)."""
        request, digest = proto.vote_request(vote)
        resp = self._write("AppendVote", self._writer.AppendVote, request, timeout)
        return check_receipt(digest, resp.receipt, "AppendVote")

    def append_epoch(self, epoch: pb.Epoch, *, timeout: float | None = None) -> Receipt:
        """Append one epoch."""
        request, digest = proto.epoch_request(epoch)
        resp = self._write("AppendEpoch", self._writer.AppendEpoch, request, timeout)
        return check_receipt(digest, resp.receipt, "AppendEpoch")

    def append_record(self, record: proto.AnyRecord, *, timeout: float | None = None) -> Receipt:
        """Append one record of any kind through its own RPC."""
        r = proto.as_record(record)
        kind = r.WhichOneof("kind")
        if kind == "assertion":
            return self.append_assertion(r.assertion, timeout=timeout)
        if kind == "vote":
            return self.append_vote(r.vote, timeout=timeout)
        return self.append_epoch(r.epoch, timeout=timeout)

    def append_batch(
        self, records: Sequence[proto.AnyRecord], *, timeout: float | None = None
    ) -> list[Receipt]:
        """Append up to 10,000 records (16 MiB) all-or-nothing; receipts[i] answers records[i]."""
        request, digests = proto.batch_request(records)
        resp = self._write("AppendBatch", self._writer.AppendBatch, request, timeout)
        return check_batch_receipts(digests, resp.receipts)

    # --- reads -------------------------------------------------------------------------------

    def get(self, key: bytes | str, min_lsn: int = 0, *, timeout: float | None = None) -> GetResult:
        """Read one key (e.g. ``"H:" + hash hex``); waits for ``min_lsn`` (read-your-writes)."""
        k = proto.as_key(key)
        resp = self._read("Get", self._store.Get, spb.GetRequest(key=k, min_lsn=min_lsn), timeout)
        return proto.get_result(k, resp)

    def scan_prefix(
        self,
        prefix: bytes | str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[Entry]:
        """One page of the keys under ``prefix`` in byte order (page_size 0: the server's 100)."""
        request = spb.ScanPrefixRequest(
            prefix=proto.as_key(prefix), page_size=page_size, page_token=page_token,
            min_lsn=min_lsn,
        )  # fmt: skip
        return proto.page_of_entries(
            self._read("ScanPrefix", self._store.ScanPrefix, request, timeout)
        )

    def iter_scan_prefix(
        self,
        prefix: bytes | str,
        page_size: int = 0,
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Iterator[Entry]:
        """Every entry under ``prefix``, page after page (each page is one call)."""
        token = ""
        while True:
            page = self.scan_prefix(prefix, page_size, token, min_lsn, timeout=timeout)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    def get_assertion(
        self, assertion_hash: proto.HashLike, min_lsn: int = 0, *, timeout: float | None = None
    ) -> pb.Assertion | None:
        """The assertion with this hash (with every co-signature seen), or None."""
        h = proto.as_hash(assertion_hash, "assertion_hash")
        request = spb.GetAssertionRequest(hash=h, min_lsn=min_lsn)
        resp = self._read("GetAssertion", self._store.GetAssertion, request, timeout)
        return proto.check_assertion(h, resp.assertion) if resp.found else None

    def list_assertions_by_subject(
        self,
        subject: str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[spb.HashedAssertion]:
        """One page of the assertions about exactly ``subject``, in hash order."""
        request = spb.ListAssertionsBySubjectRequest(
            subject=subject, page_size=page_size, page_token=page_token, min_lsn=min_lsn
        )
        resp = self._read(
            "ListAssertionsBySubject", self._store.ListAssertionsBySubject, request, timeout
        )
        return proto.page_of_assertions(resp)

    def iter_assertions_by_subject(
        self, subject: str, page_size: int = 0, min_lsn: int = 0, *, timeout: float | None = None
    ) -> Iterator[spb.HashedAssertion]:
        token = ""
        while True:
            page = self.list_assertions_by_subject(
                subject, page_size, token, min_lsn, timeout=timeout
            )
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token

    def list_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[spb.HashedVote]:
        """One page of the votes on an assertion, in vote-hash order."""
        request = spb.ListVotesRequest(
            assertion_hash=proto.as_hash(assertion_hash, "assertion_hash"),
            page_size=page_size, page_token=page_token, min_lsn=min_lsn,
        )  # fmt: skip
        return proto.page_of_votes(self._read("ListVotes", self._store.ListVotes, request, timeout))

    def iter_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Iterator[spb.HashedVote]:
        token = ""
        while True:
            page = self.list_votes(assertion_hash, page_size, token, min_lsn, timeout=timeout)
            yield from page.items
            if not page.next_page_token:
                return
            token = page.next_page_token
