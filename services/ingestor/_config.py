"""The ingestor's configuration: one frozen dataclass; its flags, ``STEMEDB_*`` variables,
defaults and bounds are generated from the fields (``stemedb.runtime.setting``, DESIGN section 3).

Every tuning value has a documented lower and upper bound, checked here, so a typo fails at start
instead of at 3 a.m.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stemedb.ingestor._policy import TrustPolicy, load_policy
from stemedb.runtime import EnvArgumentParser, ServerSettings, bounds_of, setting
from stemedb.runtime import build_parser as _build_parser
from stemedb.runtime import config_from_args as _config_from_args

__all__ = ["LIMITS", "IngestorConfig", "build_parser", "config_from_args"]

_MIB = 1024 * 1024
# The rule of stemedb.wal for consumer checkpoint file names.
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PROG = "stemedb-ingestor"
_DESCRIPTION = "Tail a StemeDB WAL into RocksDB and serve StoreService reads."


@dataclass(frozen=True)
class IngestorConfig(ServerSettings):
    """Everything the ingestor needs; nothing else reads flags or the environment."""

    wal_dir: Path = setting(Path("./data/wal"), help="WAL directory shared with the writer")
    db_dir: Path = setting(Path("./data/db"), help="this ingestor's RocksDB directory")
    listen: str = setting("127.0.0.1:50052", help="gRPC HOST:PORT")
    metrics_listen: str = setting("127.0.0.1:9102", help="Prometheus /metrics HOST:PORT")
    name: str = setting(
        "ingestor", help="consumer name, published under <wal-dir>/consumers/<name>.json"
    )
    # Records per RocksDB WriteBatch (and so per checkpoint): bigger amortizes the per-batch
    # costs, smaller bounds the memory and the latency of one batch.
    apply_batch_records_max: int = setting(
        4096, bounds=(1, 100_000), help="records per RocksDB WriteBatch"
    )
    # Payload bytes per WriteBatch; a batch closes when either bound is reached.
    apply_batch_bytes_max: int = setting(
        16 * _MIB, bounds=(64 * 1024, 1024 * _MIB), help="payload bytes per RocksDB WriteBatch"
    )
    block_cache_bytes: int = setting(
        64 * _MIB, bounds=(1 * _MIB, 64 * 1024 * _MIB),
        help="RocksDB LRU block cache (also holds index/filter blocks)",
    )  # fmt: skip
    # Record values (H:, V:, E:) kept for Get, GetAssertion and BatchGet, beside RocksDB's
    # block cache (docs/ingestor.md, "Read cache"); 0 disables it.
    read_cache_bytes_max: int = setting(
        64 * _MIB, bounds=(0, 64 * 1024 * _MIB),
        help="bytes of record values cached for the point reads (0: no cache)",
    )  # fmt: skip
    write_buffer_bytes: int = setting(
        32 * _MIB, bounds=(1 * _MIB, 1024 * _MIB), help="one memtable; at most 2 exist at a time"
    )
    checkpoint_publish_seconds: float = setting(
        1.0, bounds=(0.05, 3600.0), help="how often consumers/<name>.json is refreshed"
    )
    db_size_refresh_seconds: float = setting(
        5.0, bounds=(0.1, 3600.0), help="how often stemedb_ingestor_db_size_bytes is measured"
    )
    # A min_lsn read waits at most this long, whatever its gRPC deadline (then
    # DEADLINE_EXCEEDED), so long client deadlines cannot pile up parked reads.
    min_lsn_wait_seconds_max: float = setting(
        30.0, bounds=(0.001, 3600.0),
        help="a min_lsn read waits at most this long, whatever its deadline",
    )  # fmt: skip
    min_lsn_waiters_max: int = setting(
        10_000, bounds=(1, 1_000_000), help="concurrent min_lsn waits; beyond: RESOURCE_EXHAUSTED"
    )
    # The data path only: health and reflection do not count (stemedb.runtime.ServiceShell).
    rpcs_concurrent_max: int = setting(
        1_000, bounds=(1, 100_000),
        help="concurrent StoreService calls; beyond: RESOURCE_EXHAUSTED (health is exempt)",
    )  # fmt: skip
    # Keys and values of one ScanPrefix or list page; a page ends early (next_page_token set)
    # rather than pass it. The first entry of a page is always served.
    read_page_bytes_max: int = setting(
        3 * _MIB, bounds=(64 * 1024, 32 * _MIB),
        help="bytes of keys and values per ScanPrefix or list page; a page ends early beyond",
    )  # fmt: skip
    read_threads: int = setting(
        4, bounds=(1, 64), help="threads that run paged reads off the event loop"
    )
    # Health "stemedb.ready" is SERVING only while the apply loop runs and at most this many
    # durable records (WATERMARK minus applied LSN) wait to be applied.
    ready_lag_records_max: int = setting(
        100_000, bounds=(0, 10**12),
        help="health stemedb.ready is SERVING only while the apply lag is at most this",
    )  # fmt: skip
    shutdown_grace_seconds: float = setting(
        5.0, bounds=(0.0, 300.0), help="in-flight RPCs get this long on SIGTERM"
    )
    # The trust policy JSON file of DESIGN 9.2 (docs/lattice.md); empty: every agent weighs 1.0.
    trust_policy: str = setting(
        "", help="trust policy JSON file (docs/lattice.md); empty: every agent weighs 1.0"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "wal_dir", Path(self.wal_dir))
        object.__setattr__(self, "db_dir", Path(self.db_dir))
        super().__post_init__()
        if not _NAME_RE.match(self.name):
            raise ValueError(f"invalid consumer name {self.name!r}: use [A-Za-z0-9_.-], max 128")
        _ = self.policy  # a malformed policy is refused at start (PolicyError names the key)

    @cached_property
    def policy(self) -> TrustPolicy:
        """The effective trust policy, read once from ``trust_policy``."""
        return load_policy(self.trust_policy)


# name -> (lower bound, upper bound), inclusive, for every numeric tuning field.
LIMITS: dict[str, tuple[float, float]] = bounds_of(IngestorConfig)


def build_parser() -> EnvArgumentParser:
    return _build_parser(IngestorConfig, _PROG, _DESCRIPTION)


def config_from_args(argv: list[str] | None = None) -> IngestorConfig:
    """Parse ``argv`` (and STEMEDB_* variables) into a validated config; exits 2 on bad input."""
    return _config_from_args(IngestorConfig, argv, prog=_PROG, description=_DESCRIPTION)
