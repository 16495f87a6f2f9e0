"""Errors of the ingestor, and the one table that maps them to gRPC status codes.

The hierarchy (under ``stemedb.errors.StemeError``, like every error of the package)::

    IngestorError            base of every error this package raises
    ├── InvalidRequest       a malformed request field (INVALID_ARGUMENT)
    ├── ApplyHalted          min_lsn is beyond a halted apply loop (FAILED_PRECONDITION)
    ├── MinLsnTimeout        min_lsn not applied before the deadline (DEADLINE_EXCEEDED)
    ├── TooManyWaiters       the bounded set of min_lsn waits is full (RESOURCE_EXHAUSTED)
    ├── ShuttingDown         the process is stopping (UNAVAILABLE)
    └── StoreInconsistent    an index names a record that is missing (INTERNAL)

``SchemaMismatch`` (a database written by an incompatible version) stops the process at start
and never reaches a client.
"""

from __future__ import annotations

import grpc

from stemedb.errors import StemeError
from stemedb.runtime import StatusTable

__all__ = [
    "STATUS_TABLE",
    "ApplyHalted",
    "IngestorError",
    "InvalidRequest",
    "MinLsnTimeout",
    "SchemaMismatch",
    "ShuttingDown",
    "StoreInconsistent",
    "TooManyWaiters",
    "grpc_code_of",
]


class IngestorError(StemeError):
    """Base class of every error raised by ``stemedb.ingestor``."""


class InvalidRequest(IngestorError):
    """A request field is missing or malformed; the message names the field."""


class ApplyHalted(IngestorError):
    """The apply loop is halted below the requested min_lsn, so the wait can never end."""


class MinLsnTimeout(IngestorError):
    """The requested min_lsn was not applied before the call's deadline."""


class TooManyWaiters(IngestorError):
    """Too many reads are already waiting for an LSN."""


class ShuttingDown(IngestorError):
    """The ingestor is stopping and does not start new waits."""


class StoreInconsistent(IngestorError):
    """The database breaks one of its own invariants (an index entry without its record)."""


class SchemaMismatch(IngestorError):
    """The database was written with a schema version this code does not read."""


STATUS_TABLE = StatusTable({
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    ApplyHalted: grpc.StatusCode.FAILED_PRECONDITION,
    MinLsnTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    TooManyWaiters: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    StoreInconsistent: grpc.StatusCode.INTERNAL,
    SchemaMismatch: grpc.StatusCode.INTERNAL,
})  # fmt: skip


def grpc_code_of(error: StemeError) -> grpc.StatusCode:
    """The status code for ``error`` (INTERNAL for anything not in the table)."""
    return STATUS_TABLE.code_of(error)
