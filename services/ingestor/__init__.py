"""stemedb.ingestor: tail the WAL into RocksDB, exactly once, and serve StoreService reads.

How it works, the keys, the internal state, paging tokens, halting and the metrics are
described in docs/ingestor.md. Run it as ``stemedb-ingestor`` (``python -m stemedb.ingestor``).
"""

from stemedb.ingestor._apply import ApplyEngine, ApplyOutcome, UndecodableRecord
from stemedb.ingestor._config import IngestorConfig, config_from_args
from stemedb.ingestor._db import DbOptions, ScanResult, StoreDb
from stemedb.ingestor._errors import (
    ApplyHalted,
    IngestorError,
    InvalidRequest,
    MinLsnTimeout,
    SchemaMismatch,
    ShuttingDown,
    StoreInconsistent,
    TooManyWaiters,
)
from stemedb.ingestor._keys import INTERNAL_CF, SCHEMA_VERSION, Checkpoint
from stemedb.ingestor._paging import decode_page_token, encode_page_token, page_size_of
from stemedb.ingestor._server import INGEST_HEALTH_NAME, READY_HEALTH_NAME, serve
from stemedb.ingestor._state import ApplyState, HaltInfo
from stemedb.ingestor._store import Store
from stemedb.ingestor._waiter import AppliedLsnWaiter

__all__ = [
    "INGEST_HEALTH_NAME",
    "INTERNAL_CF",
    "READY_HEALTH_NAME",
    "SCHEMA_VERSION",
    "AppliedLsnWaiter",
    "ApplyEngine",
    "ApplyHalted",
    "ApplyOutcome",
    "ApplyState",
    "Checkpoint",
    "DbOptions",
    "HaltInfo",
    "IngestorConfig",
    "IngestorError",
    "InvalidRequest",
    "MinLsnTimeout",
    "ScanResult",
    "SchemaMismatch",
    "ShuttingDown",
    "Store",
    "StoreDb",
    "StoreInconsistent",
    "TooManyWaiters",
    "UndecodableRecord",
    "config_from_args",
    "decode_page_token",
    "encode_page_token",
    "page_size_of",
    "serve",
]
