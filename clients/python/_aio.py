"""AsyncClient: the asyncio (grpc.aio) twin of :class:`stemedb.client.Client`.

Same methods, same checks, same errors; every method is a coroutine and the ``iter_*`` methods
are async iterators. Create and use it inside one running event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from stemedb.client import _protocol as proto
from stemedb.client._channel import DEFAULT_STORE, DEFAULT_WRITER, TlsConfig, aio_channel
from stemedb.client._client import DEFAULT_TIMEOUT_SECONDS
from stemedb.client._errors import translate
from stemedb.client._records import (
    Entry,
    GetResult,
    Page,
    Receipt,
    check_batch_receipts,
    check_receipt,
)
from stemedb.client._retry import RetryPolicy, call_with_retry_async

from stemedb.v1 import records_pb2 as pb
from stemedb.v1 import store_pb2 as spb
from stemedb.v1 import store_pb2_grpc, writer_pb2_grpc

__all__ = ["AsyncClient"]

Resp = TypeVar("Resp")


class AsyncClient:
    """A writer and a store over grpc.aio. ``async with AsyncClient() as c: ...``"""

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
        self._writer_channel = aio_channel(writer, tls)
        self._store_channel = aio_channel(store, tls)
        self._writer = writer_pb2_grpc.WriterServiceStub(self._writer_channel)  # type: ignore[no-untyped-call]
        self._store = store_pb2_grpc.StoreServiceStub(self._store_channel)  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._writer_channel.close()
        await self._store_channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(
        self,
        method: str,
        target: str,
        fn: Callable[..., Awaitable[Resp]],
        request: Any,
        timeout: float | None,
    ) -> Resp:
        deadline = self.timeout_seconds if timeout is None else timeout
        try:
            return await call_with_retry_async(lambda: fn(request, timeout=deadline), self.retry)
        except grpc.RpcError as exc:
            raise translate(exc, method, target) from exc

    # --- appends -----------------------------------------------------------------------------

    async def append_assertion(
        self, assertion: pb.Assertion, *, timeout: float | None = None
    ) -> Receipt:
        request, digest = proto.assertion_request(assertion)
        resp: Any = await self._call(
            "AppendAssertion", self.writer_target, self._writer.AppendAssertion, request, timeout
        )
        return check_receipt(digest, resp.receipt, "AppendAssertion")

    async def append_vote(self, vote: pb.Vote, *, timeout: float | None = None) -> Receipt:
        request, digest = proto.vote_request(vote)
        resp: Any = await self._call(
            "AppendVote", self.writer_target, self._writer.AppendVote, request, timeout
        )
        return check_receipt(digest, resp.receipt, "AppendVote")

    async def append_epoch(self, epoch: pb.Epoch, *, timeout: float | None = None) -> Receipt:
        request, digest = proto.epoch_request(epoch)
        resp: Any = await self._call(
            "AppendEpoch", self.writer_target, self._writer.AppendEpoch, request, timeout
        )
        return check_receipt(digest, resp.receipt, "AppendEpoch")

    async def append_record(
        self, record: proto.AnyRecord, *, timeout: float | None = None
    ) -> Receipt:
        r = proto.as_record(record)
        kind = r.WhichOneof("kind")
        if kind == "assertion":
            return await self.append_assertion(r.assertion, timeout=timeout)
        if kind == "vote":
            return await self.append_vote(r.vote, timeout=timeout)
        return await self.append_epoch(r.epoch, timeout=timeout)

    async def append_batch(
        self, records: Sequence[proto.AnyRecord], *, timeout: float | None = None
    ) -> list[Receipt]:
        request, digests = proto.batch_request(records)
        resp: Any = await self._call(
            "AppendBatch", self.writer_target, self._writer.AppendBatch, request, timeout
        )
        return check_batch_receipts(digests, resp.receipts)

    # --- reads -------------------------------------------------------------------------------

    async def _read(self, method: str, request: Any, timeout: float | None) -> Any:
        return await self._call(
            method, self.store_target, getattr(self._store, method), request, timeout
        )

    async def get(
        self, key: bytes | str, min_lsn: int = 0, *, timeout: float | None = None
    ) -> GetResult:
        k = proto.as_key(key)
        resp = await self._read("Get", spb.GetRequest(key=k, min_lsn=min_lsn), timeout)
        return proto.get_result(k, resp)

    async def scan_prefix(
        self,
        prefix: bytes | str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[Entry]:
        request = spb.ScanPrefixRequest(
            prefix=proto.as_key(prefix), page_size=page_size, page_token=page_token,
            min_lsn=min_lsn,
        )  # fmt: skip
        return proto.page_of_entries(await self._read("ScanPrefix", request, timeout))

    async def iter_scan_prefix(
        self,
        prefix: bytes | str,
        page_size: int = 0,
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[Entry]:
        token = ""
        while True:
            page = await self.scan_prefix(prefix, page_size, token, min_lsn, timeout=timeout)
            for item in page.items:
                yield item
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def get_assertion(
        self, assertion_hash: proto.HashLike, min_lsn: int = 0, *, timeout: float | None = None
    ) -> pb.Assertion | None:
        h = proto.as_hash(assertion_hash, "assertion_hash")
        request = spb.GetAssertionRequest(hash=h, min_lsn=min_lsn)
        resp = await self._read("GetAssertion", request, timeout)
        return proto.check_assertion(h, resp.assertion) if resp.found else None

    async def list_assertions_by_subject(
        self,
        subject: str,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[spb.HashedAssertion]:
        request = spb.ListAssertionsBySubjectRequest(
            subject=subject, page_size=page_size, page_token=page_token, min_lsn=min_lsn
        )
        return proto.page_of_assertions(
            await self._read("ListAssertionsBySubject", request, timeout)
        )

    async def iter_assertions_by_subject(
        self, subject: str, page_size: int = 0, min_lsn: int = 0, *, timeout: float | None = None
    ) -> AsyncIterator[spb.HashedAssertion]:
        token = ""
        while True:
            page = await self.list_assertions_by_subject(
                subject, page_size, token, min_lsn, timeout=timeout
            )
            for item in page.items:
                yield item
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def list_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        page_token: str = "",
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> Page[spb.HashedVote]:
        request = spb.ListVotesRequest(
            assertion_hash=proto.as_hash(assertion_hash, "assertion_hash"),
            page_size=page_size, page_token=page_token, min_lsn=min_lsn,
        )  # fmt: skip
        return proto.page_of_votes(await self._read("ListVotes", request, timeout))

    async def iter_votes(
        self,
        assertion_hash: proto.HashLike,
        page_size: int = 0,
        min_lsn: int = 0,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[spb.HashedVote]:
        token = ""
        while True:
            page = await self.list_votes(assertion_hash, page_size, token, min_lsn, timeout=timeout)
            for item in page.items:
                yield item
            if not page.next_page_token:
                return
            token = page.next_page_token
