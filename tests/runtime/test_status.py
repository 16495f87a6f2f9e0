"""One error-to-status table shape, and every package error under StemeError."""

from __future__ import annotations

from pathlib import Path

import grpc

import stemedb.ingestor
import stemedb.wal
from stemedb.errors import InvalidRecord, InvalidSignature, StemeError, UntrustedSigner
from stemedb.ingestor._errors import STATUS_TABLE as INGESTOR_TABLE
from stemedb.ingestor._errors import grpc_code_of
from stemedb.runtime import StatusTable
from stemedb.writer import Overloaded, status_of
from stemedb.writer._service import STATUS_TABLE as WRITER_TABLE


def test_the_nearest_class_in_the_mro_wins() -> None:
    class Base(Exception):
        pass

    class Middle(Base):
        pass

    class Leaf(Middle):
        pass

    table = StatusTable({Base: grpc.StatusCode.UNAVAILABLE, Middle: grpc.StatusCode.ABORTED})
    assert table.code_of(Leaf()) == grpc.StatusCode.ABORTED
    assert table.code_of(Middle()) == grpc.StatusCode.ABORTED
    assert table.code_of(Base()) == grpc.StatusCode.UNAVAILABLE
    assert table.code_of(ValueError()) == grpc.StatusCode.INTERNAL


def test_every_package_error_is_a_steme_error() -> None:
    errors = [getattr(stemedb.wal, n) for n in stemedb.wal.__all__ if n.startswith("Wal")]
    errors += [getattr(stemedb.ingestor, n) for n in stemedb.ingestor.__all__]
    errors = [e for e in errors if isinstance(e, type) and issubclass(e, BaseException)]
    assert stemedb.wal.WalError in errors and stemedb.ingestor.IngestorError in errors
    for error in errors:
        assert issubclass(error, StemeError), error


def test_both_services_use_the_one_shape() -> None:
    assert isinstance(WRITER_TABLE, StatusTable) and isinstance(INGESTOR_TABLE, StatusTable)
    corruption = stemedb.wal.WalCorruption(Path("x.wal"), 8, 3, "bad checksum")
    assert status_of(corruption) == (grpc.StatusCode.INTERNAL, "error")
    assert status_of(stemedb.wal.WalClosed()) == (grpc.StatusCode.UNAVAILABLE, "error")
    assert status_of(stemedb.wal.WalDiskFull()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "error")
    assert status_of(Overloaded("inflight_bytes_max", "x")) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "error",
    )  # fmt: skip
    assert status_of(InvalidSignature("a.signatures[0]", "bad")) == (
        grpc.StatusCode.INVALID_ARGUMENT, "invalid",
    )  # fmt: skip
    assert status_of(InvalidRecord("a", "bad"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(UntrustedSigner("a", "ab")) == (grpc.StatusCode.PERMISSION_DENIED, "denied")
    assert grpc_code_of(stemedb.ingestor.TooManyWaiters("x")) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert grpc_code_of(stemedb.ingestor.ShuttingDown("x")) == grpc.StatusCode.UNAVAILABLE
    assert grpc_code_of(stemedb.ingestor.IngestorError("x")) == grpc.StatusCode.INTERNAL
