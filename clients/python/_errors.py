"""The errors of the client library.

Hierarchy::

    StemeError (stemedb.errors)
    ├── InvalidRecord               a record breaks a rule; raised locally, before any network call
    └── ClientError                 base of every error raised by stemedb.client itself
        ├── KeyFileError            a key file is missing, unreadable or malformed
        ├── ReceiptMismatch         a receipt does not answer the record sent (hash, count, LSNs)
        ├── ReadMismatch            a record read back does not hash to the key it was read by
        ├── ShardLookupError        a vote's assertion was found on no shard
        └── RpcFailed               the server answered with an error status, or never answered
            └── Unavailable         still UNAVAILABLE after every retry (server down, unreachable)

gRPC's own ``grpc.RpcError`` never leaves the package: :func:`translate` turns it into
``RpcFailed`` (or ``Unavailable``) in one place.
"""

from __future__ import annotations

import grpc

from stemedb.client._retry import retry_delay_of
from stemedb.errors import StemeError

__all__ = [
    "ClientError",
    "KeyFileError",
    "ReadMismatch",
    "ReceiptMismatch",
    "RpcFailed",
    "ShardLookupError",
    "Unavailable",
    "translate",
]


class ClientError(StemeError):
    """Base class of the errors raised by stemedb.client."""


class KeyFileError(ClientError):
    """A key file that is missing, unreadable, malformed, or whose public key does not match."""


class ReceiptMismatch(ClientError):
    """The writer's receipt does not answer the record sent: another hash, count or LSN order."""


class ReadMismatch(ClientError):
    """A record read from the store does not hash to the key (or hash) it was read by."""


class ShardLookupError(ClientError):
    """A vote could not be routed: its assertion was found on no shard."""


class RpcFailed(ClientError):
    """A call failed with a gRPC status; ``code`` and ``details`` are the server's."""

    def __init__(
        self, method: str, target: str, code: grpc.StatusCode, details: str,
        retry_after_seconds: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(f"{method} at {target} failed: {code.name}: {details}")
        self.method = method
        self.target = target
        self.code = code
        self.details = details
        # Set when the server said when to come back (google.rpc.RetryInfo: the meter).
        self.retry_after_seconds = retry_after_seconds


class Unavailable(RpcFailed):
    """The server stayed UNAVAILABLE (down or unreachable) through every retry."""


def translate(exc: grpc.RpcError, method: str, target: str) -> RpcFailed:
    """The package's error for a gRPC error (the one place where they are translated)."""
    # Sync errors are grpc.Call objects, asyncio ones grpc.aio.AioRpcError: both have these.
    code_of = getattr(exc, "code", None)
    details_of = getattr(exc, "details", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details = details_of() if callable(details_of) else str(exc)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(method, target, code, details or "")
    return RpcFailed(method, target, code, details or "", retry_delay_of(exc))
