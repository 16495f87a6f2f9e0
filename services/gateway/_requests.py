"""Reading a request: bounded bodies, query parameters checked and named, the deadline."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from stemedb.errors import InvalidRecord
from stemedb.gateway._config import GatewayConfig
from stemedb.gateway._errors import GatewayError
from stemedb.jsonrecord import record_from_json
from stemedb.v1 import records_pb2

__all__ = [
    "TIMEOUT_HEADER",
    "Deadline",
    "batch_of_body",
    "hash_param",
    "read_json_body",
    "record_of_body",
    "str_param",
    "uint_param",
]

TIMEOUT_HEADER = "x-stemedb-timeout"
_UINT64_MAX = 2**64 - 1
_INT32_MAX = 2**31 - 1


class Deadline:
    """A request's deadline: the gateway's --request-timeout, or less if the client asks."""

    def __init__(self, request: Request, config: GatewayConfig) -> None:
        seconds = config.request_timeout_seconds
        raw = request.headers.get(TIMEOUT_HEADER)
        if raw is not None:
            try:
                asked = float(raw)
            except ValueError:
                asked = -1.0
            if not asked > 0 or asked != asked:
                raise GatewayError(
                    400, f"{raw!r} is not a positive number of seconds", field="X-Stemedb-Timeout"
                )
            seconds = min(seconds, asked)
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise GatewayError(504, "the request's deadline passed before the backend was called")
        return left


async def read_json_body(request: Request, config: GatewayConfig) -> Any:
    """The body parsed as JSON; 413 past ``body_bytes_max``, 408 past ``body_read_seconds``."""
    limit = config.body_bytes_max
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"the body is {declared} bytes, more than the limit of {limit}")
    chunks: list[bytes] = []
    size = 0

    async def receive() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"the body is more than the limit of {limit} bytes")
            chunks.append(chunk)

    try:
        await asyncio.wait_for(receive(), timeout=config.body_read_seconds)
    except TimeoutError:
        raise GatewayError(
            408, f"the body did not arrive within {config.body_read_seconds:g} seconds"
        ) from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise GatewayError(400, "the request has no body; send a JSON object", field="body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GatewayError(400, f"the body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        raise GatewayError(400, "the body nests too deeply to be a record", field="body") from None


def record_of_body(body: Any, kind: str) -> records_pb2.Record:
    """Decode one record's JSON (the body is the record itself); errors name the field as the
    writer does (``assertion.confidence``)."""
    try:
        return record_from_json({kind: body}, field="_")
    except InvalidRecord as exc:
        path = exc.field.removeprefix("_.")
        raise GatewayError(400, f"{path}: {exc.reason}", field=path) from None
    except (OverflowError, ValueError) as exc:  # e.g. an integer too large for a double
        raise GatewayError(400, f"{kind}: a value is out of range: {exc}", field=kind) from None


def batch_of_body(body: Any, records_max: int) -> list[records_pb2.Record]:
    """Decode ``{"records": [...]}``; errors name ``records[i]...`` as the writer does."""
    if not isinstance(body, dict):
        raise GatewayError(400, 'body: must be an object {"records": [...]}', field="body")
    unknown = sorted(set(body) - {"records"})
    if unknown:
        raise GatewayError(400, f"{unknown[0]}: unknown field", field=unknown[0])
    raw = body.get("records")
    if not isinstance(raw, list) or not raw:
        raise GatewayError(400, "records: must be a non-empty list of records", field="records")
    if len(raw) > records_max:
        raise GatewayError(
            400, f"records: holds {len(raw)} records, more than the limit of {records_max}",
            field="records",
        )  # fmt: skip
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(record_from_json(item, field=f"records[{i}]"))
        except InvalidRecord as exc:
            raise GatewayError(400, str(exc), field=exc.field) from None
        except (OverflowError, ValueError) as exc:
            raise GatewayError(
                400, f"records[{i}]: a value is out of range: {exc}", field=f"records[{i}]"
            ) from None
    return out


def _query(request: Request) -> dict[str, str]:
    """The query parameters, parsed once per request as Starlette's ``QueryParams`` does
    (Latin-1, blank values kept, the last of a repeated name), without its multi-dict."""
    scope = request.scope
    params: dict[str, str] | None = scope.get("stemedb.query")
    if params is None:
        query = scope["query_string"].decode("latin-1")
        params = scope["stemedb.query"] = dict(parse_qsl(query, keep_blank_values=True))
    return params


def str_param(request: Request, name: str, *, required: bool) -> str:
    value = _query(request).get(name, "")
    if required and not value:
        raise GatewayError(400, f"{name}: query parameter is required", field=name)
    return value


def uint_param(
    request: Request, name: str, *, bits: int = 64, required: bool = False, minimum: int = 0
) -> int:
    """An unsigned integer query parameter; absent or empty is 0 unless ``required``."""
    raw = _query(request).get(name)
    if raw is None or raw == "":
        if required:
            raise GatewayError(400, f"{name}: query parameter is required", field=name)
        return 0
    high = _UINT64_MAX if bits == 64 else _INT32_MAX
    if not (raw.isascii() and raw.isdigit()) or not minimum <= int(raw) <= high:
        raise GatewayError(
            400, f"{name}: {raw!r} is not an integer in [{minimum}, {high}]", field=name
        )
    return int(raw)


def hash_param(value: str, name: str) -> bytes:
    text = value.lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise GatewayError(400, f"{name}: must be 64 hex digits (a 32-byte hash)", field=name)
    return bytes.fromhex(text)
