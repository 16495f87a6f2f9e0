"""StemeDB: an append-only, content-addressed store for what AI agents know.

The core package holds what every part shares: the canonical encoding and hashing of records
(:mod:`stemedb.canonical`), ed25519 signing (:mod:`stemedb.signing`), input limits
(:mod:`stemedb.validation`), the perceptual hash of images (:mod:`stemedb.phash`), the JSON form
of records (:mod:`stemedb.jsonrecord`) and the generated protobuf API (:mod:`stemedb.v1`).
The write-ahead log is :mod:`stemedb.wal`; the services are :mod:`stemedb.writer` and
:mod:`stemedb.ingestor`; the client library and CLI are :mod:`stemedb.client`.
"""

from __future__ import annotations

from stemedb.canonical import content_hash, record_bytes, record_hash
from stemedb.errors import InvalidRecord, InvalidSignature, StemeError, UntrustedSigner
from stemedb.validation import DEFAULT_LIMITS, Limits, validate_record

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LIMITS",
    "InvalidRecord",
    "InvalidSignature",
    "Limits",
    "StemeError",
    "UntrustedSigner",
    "__version__",
    "content_hash",
    "record_bytes",
    "record_hash",
    "validate_record",
]
