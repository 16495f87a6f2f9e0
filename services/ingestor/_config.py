"""The ingestor's configuration: one frozen dataclass, built from flags and environment.

Every flag can also come from ``STEMEDB_<FLAG>`` (DESIGN section 3). Every tuning value has a
documented lower and upper bound, checked here, so a typo fails at start instead of at 3 a.m.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

from stemedb.ingestor._policy import TrustPolicy, load_policy

from stemedb.runtime import EnvArgumentParser, parse_host_port

__all__ = ["LIMITS", "IngestorConfig", "build_parser", "config_from_args"]

_MIB = 1024 * 1024
# The rule of stemedb.wal for consumer checkpoint file names.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

# name -> (lower bound, upper bound), inclusive, for every numeric tuning field.
LIMITS: dict[str, tuple[float, float]] = {
    "apply_batch_records_max": (1, 100_000),
    "apply_batch_bytes_max": (64 * 1024, 1024 * _MIB),
    "block_cache_bytes": (1 * _MIB, 64 * 1024 * _MIB),
    "write_buffer_bytes": (1 * _MIB, 1024 * _MIB),
    "checkpoint_publish_seconds": (0.05, 3600.0),
    "db_size_refresh_seconds": (0.1, 3600.0),
    "min_lsn_wait_seconds_max": (0.001, 3600.0),
    "min_lsn_waiters_max": (1, 1_000_000),
    "rpcs_concurrent_max": (1, 100_000),
    "shutdown_grace_seconds": (0.0, 300.0),
}


@dataclass(frozen=True)
class IngestorConfig:
    """Everything the ingestor needs; nothing else reads flags or the environment."""

    wal_dir: Path = Path("./data/wal")
    db_dir: Path = Path("./data/db")
    listen: str = "127.0.0.1:50052"
    metrics_listen: str = "127.0.0.1:9102"
    name: str = "ingestor"  # consumer name: the checkpoint goes to <wal-dir>/consumers/<name>.json
    # Records per RocksDB WriteBatch (and so per checkpoint): bigger amortizes the per-batch
    # costs, smaller bounds the memory and the latency of one batch.
    apply_batch_records_max: int = 4096
    # Payload bytes per WriteBatch; a batch closes when either bound is reached.
    apply_batch_bytes_max: int = 16 * _MIB
    block_cache_bytes: int = 64 * _MIB  # RocksDB LRU block cache (also holds index/filter blocks)
    write_buffer_bytes: int = 32 * _MIB  # one memtable; at most 2 exist at a time
    checkpoint_publish_seconds: float = 1.0  # how often consumers/<name>.json is refreshed
    db_size_refresh_seconds: float = 5.0  # how often stemedb_ingestor_db_size_bytes is measured
    # A min_lsn read without a gRPC deadline waits at most this long (then DEADLINE_EXCEEDED).
    min_lsn_wait_seconds_max: float = 60.0
    min_lsn_waiters_max: int = 10_000  # concurrent min_lsn waits; beyond: RESOURCE_EXHAUSTED
    rpcs_concurrent_max: int = 1_000  # gRPC maximum_concurrent_rpcs
    shutdown_grace_seconds: float = 5.0  # in-flight RPCs get this long on SIGTERM
    log_level: str = "INFO"
    # The trust policy JSON file of DESIGN 9.2 (docs/lattice.md); empty: every agent weighs 1.0.
    trust_policy: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "wal_dir", Path(self.wal_dir))
        object.__setattr__(self, "db_dir", Path(self.db_dir))
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")
        for name in ("listen", "metrics_listen"):
            parse_host_port(getattr(self, name))
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid consumer name {self.name!r}: use [A-Za-z0-9_.-], max 128")
        _ = self.policy  # a malformed policy is refused at start (PolicyError names the key)

    @cached_property
    def policy(self) -> TrustPolicy:
        """The effective trust policy, read once from ``trust_policy``."""
        return load_policy(self.trust_policy)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = EnvArgumentParser(
        prog="stemedb-ingestor",
        description="Tail a StemeDB WAL into RocksDB and serve StoreService reads.",
    )
    defaults = IngestorConfig()
    helps = {
        "wal_dir": "WAL directory shared with the writer",
        "db_dir": "this ingestor's RocksDB directory",
        "listen": "gRPC HOST:PORT",
        "metrics_listen": "Prometheus /metrics HOST:PORT",
        "name": "consumer name, published under <wal-dir>/consumers/",
        "log_level": "DEBUG, INFO, WARNING or ERROR",
        "trust_policy": "trust policy JSON file (docs/lattice.md); empty: every agent weighs 1.0",
    }
    for field in fields(IngestorConfig):
        default = getattr(defaults, field.name)
        kind = type(default)
        bounds = LIMITS.get(field.name)
        text = helps.get(field.name, field.name.replace("_", " "))
        if bounds is not None:
            text += f" (in [{bounds[0]:g}, {bounds[1]:g}])"
        parser.add_argument(
            _flag(field.name),
            dest=field.name,
            type=kind if kind is not Path else Path,
            default=default,
            help=f"{text}; default {default}",
        )
    return parser


def config_from_args(argv: list[str] | None = None) -> IngestorConfig:
    """Parse ``argv`` (and STEMEDB_* variables) into a validated config; exits 2 on bad input."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return IngestorConfig(**vars(args))
    except ValueError as exc:
        parser.error(str(exc))
