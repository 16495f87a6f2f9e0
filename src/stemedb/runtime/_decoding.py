"""Request decoding in our own hands, so undecodable bytes get INVALID_ARGUMENT naming ``request``.

With protobuf deserializers registered, grpcio's asyncio server answers a request it cannot
parse with UNKNOWN ("Unexpected DecodeError"). DESIGN section 3 asks for INVALID_ARGUMENT wherever
our code sees the bytes: so the handlers take raw bytes and decode them with
:func:`decode_request`, the one request decoder of both services. The writer also refuses
protobuf fields its schema does not know (``refuse_unknown``), so that the log only ever holds
what the hash and the signatures cover.

Two generic handlers serve a service's methods from a servicer's methods of the same names:
:func:`decoding_generic_handler` hands them decoded messages (the ingestor), and
:func:`bytes_generic_handler` the raw request bytes (the writer, which bounds its in-flight bytes
before it parses anything).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from stemedb.errors import InvalidRecord
from stemedb.validation import check_known_fields

__all__ = [
    "ServiceHandlers",
    "bytes_generic_handler",
    "decode_request",
    "decoding_generic_handler",
]

M = TypeVar("M", bound=Message)


def decode_request(request_cls: type[M], data: bytes, *, refuse_unknown: bool = False) -> M:
    """Parse ``data`` as a ``request_cls``; raise InvalidRecord naming ``request`` if it does not
    decode, and with ``refuse_unknown`` naming the path of a field the schema does not know
    (``assertion: unknown field 100``, ``records[3].vote: unknown field 7``).

    The unknown-field test is cheap on the common path: unknown fields are dropped (recursively,
    in C), and if the message then re-serializes to exactly the bytes received there were none.
    Only when the sizes differ (unknown fields, or an unusual but valid encoding such as a
    repeated scalar field) is a fresh copy walked field by field to name the culprit.
    """
    try:
        request = request_cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise InvalidRecord(
            "request", f"is not a valid {request_cls.DESCRIPTOR.full_name}: {exc}"
        ) from exc
    if refuse_unknown:
        request.DiscardUnknownFields()
        if request.ByteSize() != len(data):
            check_known_fields(request_cls.FromString(data), "request", child_prefix="")
    return request


def _decoding(
    request_cls: type[Message],
    method: Callable[[Any, Any], Awaitable[Message]],
    refuse_unknown: bool,
) -> Callable[[bytes, Any], Awaitable[bytes]]:
    async def handler(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            request = decode_request(request_cls, data, refuse_unknown=refuse_unknown)
        except InvalidRecord as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # unreachable: abort raises
        response = await method(request, context)
        return response.SerializeToString()

    return handler


class ServiceHandlers(grpc.GenericRpcHandler):
    """The unary method handlers of one service, by method name.

    A generic handler (grpcio looks its methods up per call), which also gives the shell the
    handlers themselves, so that it registers them by path and grpcio finds a method without
    calling a generic handler (servers such as pygrpc-native serve only registered methods on
    their fast path).
    """

    def __init__(
        self, service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.service_name = service_name
        self.method_handlers = method_handlers
        self._by_path = {f"/{service_name}/{m}": h for m, h in method_handlers.items()}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        return self._by_path.get(handler_call_details.method)


def decoding_generic_handler(
    service: ServiceDescriptor, servicer: object, *, refuse_unknown: bool = False
) -> ServiceHandlers:
    """A generic handler for every unary method of ``service``, served by ``servicer``'s
    methods of the same names, with request decoding in our hands (``refuse_unknown``: as
    :func:`decode_request`; the wallet never signs a record holding bytes its signature would
    not cover)."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for m in service.methods:
        request_cls = GetMessageClass(m.input_type)
        handlers[m.name] = grpc.unary_unary_rpc_method_handler(
            _decoding(request_cls, getattr(servicer, m.name), refuse_unknown)
        )
    return ServiceHandlers(service.full_name, handlers)


def bytes_generic_handler(service: ServiceDescriptor, servicer: object) -> ServiceHandlers:
    """A generic handler for every unary method of ``service``, served by ``servicer``'s methods
    of the same names, which take the raw request bytes (to decode with :func:`decode_request`)
    and return the serialized response."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        m.name: grpc.unary_unary_rpc_method_handler(getattr(servicer, m.name))
        for m in service.methods
    }
    return ServiceHandlers(service.full_name, handlers)
