"""The public surface of stemedb.ingestor and its configuration."""

from __future__ import annotations

import pytest

import stemedb.ingestor
from stemedb.ingestor import IngestorConfig, config_from_args


def test_public_names_are_pinned() -> None:
    assert sorted(stemedb.ingestor.__all__) == sorted(
        ["INGEST_HEALTH_NAME", "INTERNAL_CF", "READY_HEALTH_NAME", "SCHEMA_VERSION",
         "AppliedLsnWaiter", "ApplyEngine", "ApplyHalted", "ApplyOutcome", "ApplyState",
         "Checkpoint", "DbOptions",
         "HaltInfo", "IngestorConfig", "IngestorError", "InvalidRequest", "MinLsnTimeout",
         "SchemaMismatch", "ScanResult", "ShuttingDown", "Store", "StoreDb",
         "StoreInconsistent", "TooManyWaiters", "UndecodableRecord", "config_from_args",
         "decode_page_token", "encode_page_token", "page_size_of", "serve"]
    )  # fmt: skip
    for name in stemedb.ingestor.__all__:
        assert hasattr(stemedb.ingestor, name)


def test_defaults_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_from_args([])
    assert (cfg.listen, cfg.metrics_listen, cfg.name) == ("127.0.0.1:50052", "127.0.0.1:9102",
                                                          "ingestor")  # fmt: skip
    assert str(cfg.wal_dir) == "data/wal" and str(cfg.db_dir) == "data/db"
    monkeypatch.setenv("STEMEDB_DB_DIR", "/tmp/x")
    monkeypatch.setenv("STEMEDB_APPLY_BATCH_RECORDS_MAX", "77")
    cfg = config_from_args(["--name", "replica-2"])
    assert str(cfg.db_dir) == "/tmp/x" and cfg.apply_batch_records_max == 77
    assert cfg.name == "replica-2"


def test_bounds_are_enforced() -> None:
    with pytest.raises(ValueError, match="apply_batch_records_max"):
        IngestorConfig(apply_batch_records_max=0)
    with pytest.raises(ValueError, match="consumer name"):
        IngestorConfig(name="../evil")
    with pytest.raises(SystemExit):
        config_from_args(["--apply-batch-records-max", "1000000000"])
