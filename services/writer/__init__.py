"""stemedb.writer: the writer service (``stemedb-writer``).

Validates each record (:mod:`stemedb.validation`), verifies its ed25519 signatures, computes its
canonical BLAKE3 hash and appends it durably to the write-ahead log, answering ``{hash, lsn}``
only after fdatasync. Servicers are thin; the logic is :class:`Writer`.
"""

from __future__ import annotations

from stemedb.writer._admission import AdmissionBounds, Admitted, Overloaded, SignaturePolicy
from stemedb.writer._config import WriterConfig, config_from_args, load_trusted_keys
from stemedb.writer._core import Receipt, Writer
from stemedb.writer._server import WriterServer, serve
from stemedb.writer._service import SERVICE_NAME, WriterServicer, status_of
from stemedb.writer._verify import SignatureCheck, SignatureVerifier

__all__ = [
    "SERVICE_NAME",
    "AdmissionBounds",
    "Admitted",
    "Overloaded",
    "Receipt",
    "SignatureCheck",
    "SignaturePolicy",
    "SignatureVerifier",
    "Writer",
    "WriterConfig",
    "WriterServer",
    "WriterServicer",
    "config_from_args",
    "load_trusted_keys",
    "serve",
    "status_of",
]
