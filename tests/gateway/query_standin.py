"""A QueryService for the gateway's tests while the ingestor does not serve one yet.

The Lattice engine already runs inside the real ingestor: it stores every slot's views under
``MV:<subject>\\x00<predicate>`` and their history under ``MH:...`` in the apply batch. This server
answers QueryService from exactly those stored views, read from the real ingestor through
StoreService; it computes no resolution of its own. The tests use the ingestor's own QueryService
as soon as it serves one (``ingestor_serves_query``), and this stand-in only until then.
"""

from __future__ import annotations

from concurrent import futures

import grpc

from stemedb.v1 import query_pb2, query_pb2_grpc, records_pb2, store_pb2, store_pb2_grpc

LENSES = ("consensus", "skeptic", "recent")


def ingestor_serves_query(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = query_pb2_grpc.QueryServiceStub(channel)
        try:
            stub.ListLenses(query_pb2.ListLensesRequest(), timeout=5)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return False
            raise
    return True


class _StandIn(query_pb2_grpc.QueryServiceServicer):
    def __init__(self, store_target: str) -> None:
        self.channel = grpc.insecure_channel(store_target)
        self.store = store_pb2_grpc.StoreServiceStub(self.channel)

    def _scan(self, prefix: bytes, min_lsn: int, timeout: float) -> tuple[list[bytes], int]:
        values, token, applied = [], "", 0
        while True:
            resp = self.store.ScanPrefix(
                store_pb2.ScanPrefixRequest(prefix=prefix, page_size=1000, page_token=token,
                                            min_lsn=min_lsn), timeout=timeout)  # fmt: skip
            values.extend(e.value for e in resp.entries)
            applied, token = resp.applied_lsn, resp.next_page_token
            if not token:
                return values, applied

    @staticmethod
    def _lens(name: str, context: grpc.ServicerContext) -> str:
        lens = name or "consensus"
        if lens not in LENSES:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"lens: unknown lens {lens!r}; known: {', '.join(LENSES)}")  # fmt: skip
        return lens

    @staticmethod
    def _pick(view: query_pb2.SlotView, lens: str, as_of: int) -> query_pb2.Resolution:
        for r in view.resolutions:
            if r.lens == lens:
                out = query_pb2.Resolution()
                out.CopyFrom(r)
                out.as_of_lsn = as_of
                return out
        raise LookupError(lens)

    def _empty(self, subject: str, predicate: str, lens: str, as_of: int) -> query_pb2.Resolution:
        return query_pb2.Resolution(subject=subject, predicate=predicate, lens=lens,
                                    status=query_pb2.STATUS_EMPTY, as_of_lsn=as_of)  # fmt: skip

    def Resolve(self, request: query_pb2.ResolveRequest, context: grpc.ServicerContext):  # type: ignore[no-untyped-def]
        lens = self._lens(request.lens, context)
        slot = request.subject.encode() + b"\x00" + request.predicate.encode()
        resp = self.store.Get(store_pb2.GetRequest(key=b"MV:" + slot, min_lsn=request.min_lsn),
                              timeout=context.time_remaining())  # fmt: skip
        applied = resp.applied_lsn
        if request.as_of_lsn > applied:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"as_of_lsn: {request.as_of_lsn} is above applied_lsn {applied}",
            )
        if request.as_of_lsn:
            view = None
            for raw in self._scan(b"MH:" + slot + b"\x00", 0, context.time_remaining())[0]:
                entry = query_pb2.SlotHistoryEntry.FromString(raw)
                if entry.lsn <= request.as_of_lsn:
                    view = entry.view
            as_of = request.as_of_lsn
        else:
            view = query_pb2.SlotView.FromString(resp.value) if resp.found else None
            as_of = applied
        res = (self._pick(view, lens, as_of) if view is not None
               else self._empty(request.subject, request.predicate, lens, as_of))  # fmt: skip
        return query_pb2.ResolveResponse(resolution=res, applied_lsn=applied)

    def ResolveSubject(self, request, context):  # type: ignore[no-untyped-def]
        lens = self._lens(request.lens, context)
        values, applied = self._scan(b"MV:" + request.subject.encode() + b"\x00",
                                     request.min_lsn, context.time_remaining())  # fmt: skip
        out = [self._pick(query_pb2.SlotView.FromString(v), lens, applied) for v in values]
        return query_pb2.ResolveSubjectResponse(resolutions=out, applied_lsn=applied)

    def GetTally(self, request, context):  # type: ignore[no-untyped-def]
        key = b"H:" + request.assertion_hash.hex().encode()
        got = self.store.Get(store_pb2.GetRequest(key=key, min_lsn=request.min_lsn),
                             timeout=context.time_remaining())  # fmt: skip
        if not got.found:
            return query_pb2.GetTallyResponse(found=False, applied_lsn=got.applied_lsn)
        a: records_pb2.Assertion = got.record.assertion
        view_resp = self.store.Get(
            store_pb2.GetRequest(key=b"MV:" + a.subject.encode() + b"\x00" + a.predicate.encode()),
            timeout=context.time_remaining(),
        )
        view = query_pb2.SlotView.FromString(view_resp.value)
        for c in self._pick(view, "consensus", 0).candidates:
            if c.assertion_hash == request.assertion_hash:
                tally = query_pb2.Tally(
                    assertion_hash=c.assertion_hash, support=c.support, dispute=c.dispute,
                    supporters=c.supporters, disputers=c.disputers, votes=c.votes, score=c.score,
                )  # fmt: skip
                return query_pb2.GetTallyResponse(
                    found=True, tally=tally, applied_lsn=got.applied_lsn
                )
        return query_pb2.GetTallyResponse(found=False, applied_lsn=got.applied_lsn)

    def ListHistory(self, request, context):  # type: ignore[no-untyped-def]
        lens = self._lens(request.lens, context)
        slot = request.subject.encode() + b"\x00" + request.predicate.encode()
        values, applied = self._scan(b"MH:" + slot + b"\x00", request.min_lsn,
                                     context.time_remaining())  # fmt: skip
        entries = []
        for raw in values:
            entry = query_pb2.SlotHistoryEntry.FromString(raw)
            if lens not in entry.changed_lenses:
                continue
            r = self._pick(entry.view, lens, entry.lsn)
            entries.append(query_pb2.HistoryEntry(
                lsn=entry.lsn, status=r.status, score=r.score,
                winner_hash=r.winner.hash if r.HasField("winner") else b"",
            ))  # fmt: skip
        return query_pb2.ListHistoryResponse(entries=entries, applied_lsn=applied)

    def ListLenses(self, request, context):  # type: ignore[no-untyped-def]
        return query_pb2.ListLensesResponse(
            lenses=[query_pb2.Lens(name=n, description=f"the {n} lens") for n in LENSES],
            candidates_max=10,
        )


class _Relaying(grpc.ServerInterceptor):
    """A StoreService error (the ingestor down, a deadline) reaches the caller with its code."""

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        def relay(request, context):  # type: ignore[no-untyped-def]
            try:
                return inner(request, context)
            except grpc.RpcError as exc:
                context.abort(exc.code(), exc.details())

        return grpc.unary_unary_rpc_method_handler(
            relay, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )  # fmt: skip


def start_standin(store_target: str, port: int) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=[_Relaying()])
    query_pb2_grpc.add_QueryServiceServicer_to_server(_StandIn(store_target), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server
