"""LogService over gRPC (protos/stemedb/v1/log.proto): checkpoints and proofs from stored nodes.

Every answer is a few point reads (a proof is one multi-get of at most about 128 nodes), so the
handlers run on the event loop like the store's point reads. Sizes are bounded by the served
checkpoint's (OUT_OF_RANGE above it); ``first_size`` 0 or above ``second_size`` and an LSN of 0
are INVALID_ARGUMENT naming the field; a log that does not match a signed checkpoint makes
GetCheckpoint DATA_LOSS, naming the file, the size and both roots.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stemedb.errors import StemeError
from stemedb.ingestor._db import StoreDb
from stemedb.ingestor._errors import IngestorError, InvalidRequest, grpc_code_of
from stemedb.ingestor._log import (
    CheckpointTracker,
    DbNodeStore,
    ServedCheckpoint,
    hash_lsn_prefix,
    lsn_of_hash_key,
    record_at_key,
)
from stemedb.ingestor._paging import decode_page_token, encode_page_token, page_size_of
from stemedb.ingestor._state import ApplyState
from stemedb.ingestor._waiter import ReadRunner
from stemedb.merkle import (
    NodeMissing,
    OutOfRange,
    ProofRequestError,
    consistency_proof,
    inclusion_proof,
)
from stemedb.v1 import log_pb2
from stemedb.v1 import records_pb2 as pb

__all__ = ["LOG_SERVICE_DESCRIPTOR", "LogMetricsCollector", "LogServicer"]

LOG_SERVICE_DESCRIPTOR = log_pb2.DESCRIPTOR.services_by_name["LogService"]
_Context = grpc.aio.ServicerContext[Any, Any]
_LSNS_SCOPE = b"lsns"


class _LogOutOfRange(IngestorError):
    """A size or LSN beyond the served checkpoint (OUT_OF_RANGE)."""


class _LogMismatch(IngestorError):
    """The applied log does not match a writer-signed checkpoint (DATA_LOSS)."""


class _NoCheckpoint(IngestorError):
    """No signed checkpoint is served yet (FAILED_PRECONDITION: retry later)."""


def _code_of(exc: StemeError) -> grpc.StatusCode:
    if isinstance(exc, _LogOutOfRange | OutOfRange):
        return grpc.StatusCode.OUT_OF_RANGE
    if isinstance(exc, _LogMismatch):
        return grpc.StatusCode.DATA_LOSS
    if isinstance(exc, _NoCheckpoint):
        return grpc.StatusCode.FAILED_PRECONDITION
    if isinstance(exc, ProofRequestError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, NodeMissing):
        return grpc.StatusCode.INTERNAL
    if isinstance(exc, IngestorError):
        return grpc_code_of(exc)
    return grpc.StatusCode.INTERNAL


class LogServicer:
    """Handlers of stemedb.v1.LogService (docs/verifiable-log.md), each one ReadRunner.serve."""

    def __init__(self, db: StoreDb, state: ApplyState, reads: ReadRunner, wal_dir: Path) -> None:
        self._db = db
        self._state = state
        self._reads = reads
        self._checkpoints = CheckpointTracker(db, wal_dir)

    def _served(self) -> tuple[ServedCheckpoint, int]:
        applied = self._state.applied_lsn  # sampled first: everything up to it is written
        served = self._checkpoints.served(applied)
        if served is None:
            raise _NoCheckpoint(
                f"no signed checkpoint is served yet (applied LSN {applied}); retry later"
            )
        return served, applied

    def metrics_collector(self) -> LogMetricsCollector:
        """The verifiable log's ``stemedb_ingestor_log_*`` metrics, for the metrics registry."""
        return LogMetricsCollector(self._checkpoints, self._state)

    async def GetCheckpoint(
        self, request: log_pb2.GetCheckpointRequest, context: _Context
    ) -> log_pb2.GetCheckpointResponse:
        return await self._reads.serve(context, self._checkpoint, code_of=_code_of)

    def _checkpoint(self) -> log_pb2.GetCheckpointResponse:
        applied = self._state.applied_lsn
        self._checkpoints.served(applied)  # reads CHECKPOINT, notes a mismatch
        if self._checkpoints.mismatch is not None:
            raise _LogMismatch(self._checkpoints.mismatch)
        served, applied = self._served()
        return log_pb2.GetCheckpointResponse(
            checkpoint=served.text, verifier_key=self._checkpoints.verifier_key,
            applied_lsn=applied,
        )  # fmt: skip

    async def GetInclusionProof(
        self, request: log_pb2.GetInclusionProofRequest, context: _Context
    ) -> log_pb2.GetInclusionProofResponse:
        return await self._reads.serve(context, lambda: self._inclusion(request), code_of=_code_of)

    def _inclusion(
        self, request: log_pb2.GetInclusionProofRequest
    ) -> log_pb2.GetInclusionProofResponse:
        if request.lsn < 1:
            raise InvalidRequest("lsn must be >= 1")
        served, applied = self._served()
        size = served.checkpoint.tree_size
        tree_size = request.tree_size or size
        if tree_size > size:
            raise _LogOutOfRange(
                f"tree_size {tree_size} is above the served checkpoint's size {size}"
            )
        if request.lsn > tree_size:
            raise _LogOutOfRange(f"lsn {request.lsn} is not in the tree of size {tree_size}")
        hashes = inclusion_proof(DbNodeStore(self._db), request.lsn - 1, tree_size)
        (raw,) = self._db.internal_multi_get([record_at_key(request.lsn)])
        if raw is None:
            raise NodeMissing(0, request.lsn - 1)  # the record of an applied leaf: a bug
        return log_pb2.GetInclusionProofResponse(
            leaf_index=request.lsn - 1, tree_size=tree_size, hashes=hashes,
            record=pb.Record.FromString(raw),
            checkpoint=served.text if tree_size == size else "", applied_lsn=applied,
        )  # fmt: skip

    async def GetConsistencyProof(
        self, request: log_pb2.GetConsistencyProofRequest, context: _Context
    ) -> log_pb2.GetConsistencyProofResponse:
        return await self._reads.serve(
            context, lambda: self._consistency(request), code_of=_code_of
        )

    def _consistency(
        self, request: log_pb2.GetConsistencyProofRequest
    ) -> log_pb2.GetConsistencyProofResponse:
        first, second = request.first_size, request.second_size
        if first < 1:
            raise InvalidRequest("first_size must be >= 1")
        if first > second:
            raise InvalidRequest(f"first_size {first} is above second_size {second}")
        served, applied = self._served()
        size = served.checkpoint.tree_size
        if second > size:
            raise _LogOutOfRange(
                f"second_size {second} is above the served checkpoint's size {size}"
            )
        hashes = consistency_proof(DbNodeStore(self._db), first, second)
        return log_pb2.GetConsistencyProofResponse(hashes=hashes, applied_lsn=applied)

    async def ListRecordLsns(
        self, request: log_pb2.ListRecordLsnsRequest, context: _Context
    ) -> log_pb2.ListRecordLsnsResponse:
        # The request is checked before the min_lsn wait, so a bad one never waits.
        limit, prefix, start = await self._reads.serve(
            context, lambda: self._lsns_page(request), code_of=_code_of
        )
        return await self._reads.serve(
            context,
            lambda: self._record_lsns(limit, prefix, start),
            min_lsn=request.min_lsn,
            code_of=_code_of,
        )

    @staticmethod
    def _lsns_page(request: log_pb2.ListRecordLsnsRequest) -> tuple[int, bytes, bytes]:
        if len(request.hash) != 32:
            raise InvalidRequest(f"hash must be 32 bytes, got {len(request.hash)}")
        prefix = hash_lsn_prefix(request.hash)
        start = decode_page_token(request.page_token, _LSNS_SCOPE, prefix)
        return page_size_of(request.page_size), prefix, start

    def _record_lsns(
        self, limit: int, prefix: bytes, start: bytes
    ) -> log_pb2.ListRecordLsnsResponse:
        applied = self._state.applied_lsn
        keys = self._db.internal_keys(start, prefix, limit + 1)
        token = ""
        if len(keys) > limit:
            token = encode_page_token(_LSNS_SCOPE, prefix, keys[limit])
            keys = keys[:limit]
        # Keys of a batch written but not yet published as applied are left out.
        lsns = [lsn for lsn in map(lsn_of_hash_key, keys) if lsn <= applied]
        return log_pb2.ListRecordLsnsResponse(lsns=lsns, next_page_token=token, applied_lsn=applied)


class LogMetricsCollector(Collector):
    """The served checkpoint, read at scrape time (docs/operations.md, the verifiable log):

    - ``stemedb_ingestor_log_tree_size``: tree size of the signed checkpoint served (0: none);
    - ``stemedb_ingestor_log_checkpoint_lag_records``: applied LSN minus that size (records
      applied but not yet covered by a served checkpoint; it grows when the writer stops
      signing or the ingestor refuses what it signs);
    - ``stemedb_ingestor_log_checkpoint_mismatch``: 1 once a writer-signed CHECKPOINT or the
      stored checkpoint does not match the log applied here (never served; GetCheckpoint is
      DATA_LOSS naming the file or key, the size and both roots).
    """

    def __init__(self, checkpoints: CheckpointTracker, state: ApplyState) -> None:
        self._checkpoints = checkpoints
        self._state = state

    def collect(self) -> Iterator[Metric]:
        applied = self._state.applied_lsn
        try:
            served = self._checkpoints.served(applied)
        except StemeError:
            served = None  # a node missing under a checkpoint: the RPCs report it
        size = 0 if served is None else served.checkpoint.tree_size
        yield GaugeMetricFamily(
            "stemedb_ingestor_log_tree_size",
            "Tree size of the writer-signed checkpoint the ingestor serves (0: none yet)",
            value=size,
        )
        yield GaugeMetricFamily(
            "stemedb_ingestor_log_checkpoint_lag_records",
            "Applied LSN minus the served checkpoint's tree size",
            value=max(0, applied - size),
        )
        yield GaugeMetricFamily(
            "stemedb_ingestor_log_checkpoint_mismatch",
            "1 when a signed or stored checkpoint does not match the applied log (DATA_LOSS)",
            value=0 if self._checkpoints.mismatch is None else 1,
        )
