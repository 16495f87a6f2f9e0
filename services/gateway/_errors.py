"""Errors as RFC 9457 problem details, and the one table from gRPC status codes to HTTP.

Hierarchy::

    GatewayError        a request the gateway refuses itself, or a backend's refusal;
                        rendered as application/problem+json with ``status``, ``title``,
                        ``detail`` and, when known, ``field`` (the path of the offending field)
                        and ``grpc_status`` (the backend's code name)

The mapping follows Google's API design guide (DESIGN section 10). RESOURCE_EXHAUSTED is 429 when
the status carries a ``google.rpc.RetryInfo`` detail (the meter: retry later) and 503 otherwise
(disk full, a queue over its bound); 429 carries ``Retry-After`` in whole seconds, rounded up.
"""

from __future__ import annotations

import http
import json
import math
import re
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from starlette.responses import Response

__all__ = ["PROBLEM_JSON", "GatewayError", "from_rpc_error", "problem_response"]

PROBLEM_JSON = "application/problem+json"

_HTTP_OF_GRPC: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,  # 429 when RetryInfo is attached, see below
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# The writer's and the ingestor's INVALID_ARGUMENT messages start with the field's path,
# e.g. "assertion.confidence: must be in [0, 1]" or "records[3].vote.signature: ...".
_FIELD = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)*): "
)
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class GatewayError(Exception):
    """A refusal rendered as problem+json (see the module docstring)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        field: str | None = None,
        grpc_status: str | None = None,
        retry_after_seconds: int | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.grpc_status = grpc_status
        self.retry_after_seconds = retry_after_seconds
        self.backend = backend

    def body(self, instance: str | None = None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "about:blank",
            "title": _title(self.status),
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        if self.field:
            doc["field"] = self.field
        if self.grpc_status:
            doc["grpc_status"] = self.grpc_status
        if self.backend:
            doc["backend"] = self.backend
        return doc


def _title(status: int) -> str:
    if status == 499:
        return "Client Closed Request"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(error: GatewayError, instance: str | None = None) -> Response:
    headers = {}
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    return Response(
        json.dumps(error.body(instance)),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _retry_delay_seconds(error: grpc.aio.AioRpcError) -> int | None:
    """The RetryInfo delay carried in the status details, rounded up; None without one."""
    trailers = error.trailing_metadata() or ()
    for key, value in trailers:
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a malformed detail is ignored: the code still maps
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                seconds = float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
                return max(1, math.ceil(seconds))
    return None


def from_rpc_error(error: grpc.aio.AioRpcError, backend: str) -> GatewayError:
    """Translate a backend's gRPC error into the HTTP refusal of the one table above."""
    code = error.code()
    message = error.details() or code.name
    status = _HTTP_OF_GRPC.get(code, 500)
    retry_after = None
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry_after = _retry_delay_seconds(error)
        if retry_after is not None:
            status = 429
    field = None
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.OUT_OF_RANGE):  # fmt: skip
        match = _FIELD.match(message)
        if match:
            field = match.group(1)
    if code == grpc.StatusCode.UNAVAILABLE:
        message = f"the {backend} is unavailable: {message}"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        message = f"the {backend} did not answer within the request's deadline: {message}"
    return GatewayError(
        status, message, field=field, grpc_status=code.name, retry_after_seconds=retry_after,
        backend=backend,
    )  # fmt: skip
