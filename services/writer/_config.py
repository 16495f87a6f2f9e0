"""The writer's configuration: one frozen dataclass; its flags, ``STEMEDB_*`` variables,
defaults and bounds are generated from the fields (``stemedb.runtime.setting``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stemedb import note
from stemedb.runtime import EnvArgumentParser, ServerSettings, derived, optional_path, setting
from stemedb.runtime import build_parser as _build_parser
from stemedb.runtime import config_from_args as _config_from_args
from stemedb.writer._tree import DEFAULT_LOG_KEY_NAME, DEFAULT_LOG_ORIGIN
from stemedb.writer._verify import usable_cpus

__all__ = ["WriterConfig", "build_parser", "config_from_args", "load_trusted_keys"]

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9101"
DEFAULT_WAL_DIR = "./data/wal"
_PROG = "stemedb-writer"
_DESCRIPTION = "StemeDB writer: validated, signed, durable appends to the write-ahead log."


def _check_origin(origin: str) -> None:
    try:
        note.Verifier(origin, bytes(32))
    except note.MalformedKey as exc:
        raise ValueError(f"--log-origin: {exc}") from None


@dataclass(frozen=True)
class WriterConfig(ServerSettings):
    """Everything the writer needs; every queue and wait has a bound named with its unit."""

    wal_dir: Path = setting(Path(DEFAULT_WAL_DIR), help="WAL directory (shared volume)")
    listen: str = setting(DEFAULT_LISTEN, help="gRPC address HOST:PORT")
    metrics_listen: str = setting(DEFAULT_METRICS_LISTEN, help="Prometheus /metrics HOST:PORT")
    require_signatures: bool = setting(
        False, help="refuse assertions and epochs without at least one valid signature"
    )
    trusted_keys_file: Path | None = setting(
        None, flag="--trusted-keys", parse=optional_path,
        help="file of trusted ed25519 keys, hex per line",
    )  # fmt: skip
    trusted_keys: frozenset[bytes] | None = derived(None)  # read from trusted_keys_file
    # gRPC refuses larger messages before our code sees them; the 16 MiB batch limit of the
    # contract is checked by validation with a clear message, so this leaves room above it.
    max_message_bytes: int = setting(
        20 * 1024 * 1024, help="gRPC's bound on a request or response message, in bytes"
    )
    inflight_requests_max: int = setting(
        1024, bounds=(1, 1_000_000), help="requests being processed; more: RESOURCE_EXHAUSTED"
    )
    inflight_records_max: int = setting(
        200_000, bounds=(1, 100_000_000), help="records being processed; more: RESOURCE_EXHAUSTED"
    )
    inflight_bytes_max: int = setting(
        32 * 1024 * 1024, bounds=(1, 1 << 40),
        help="raw bytes of the append requests being processed; more get RESOURCE_EXHAUSTED",
    )  # fmt: skip
    verify_workers: int = setting(
        default_factory=usable_cpus, bounds=(0, 4096),
        help="signature verification processes (0: verify in the server process)",
    )  # fmt: skip
    # Requests with at most this many signatures verify in the server process: a round trip to a
    # worker process costs more than a few verifications (about 70 us each).
    inline_signatures_max: int = derived(8)
    segment_size_bytes: int = setting(64 * 1024 * 1024, help="WAL segment size in bytes")
    sync_mode: str = setting(
        "fdatasync", flag="--sync", choices=("fdatasync", "none"),
        help="'none' is for benchmarks only: acknowledged records can be lost on power loss",
    )  # fmt: skip
    retention: bool = setting(
        False, help="delete segments wholly below every consumer's checkpoint"
    )
    retention_consumer_stale_seconds: float | None = setting(
        None,
        help="retention ignores a consumer checkpoint behind the log and not updated for this "
        "long (default: never)",
    )
    meter_config: Path | None = setting(
        None, parse=optional_path,
        help="JSON file of the meter's costs and per-agent budgets (DESIGN 12; reloaded on "
        "SIGHUP); without it nothing is metered",
    )  # fmt: skip
    fsync_warn_seconds: float = setting(0.5, help="log a warning when one fsync takes longer")
    log_key: Path | None = setting(
        None, parse=optional_path,
        help="the log's signer key file (Go sumdb/note format), created 0600 on first start "
        "(default: <wal-dir>/log.key)",
    )  # fmt: skip
    log_origin: str = setting(
        DEFAULT_LOG_ORIGIN, check=_check_origin,
        help="the verifiable log's origin line, also the log key's name",
    )  # fmt: skip
    log_checkpoint_interval_seconds: float = setting(
        0.01, bounds=(0.0, 60.0),
        help="least time between two signed checkpoints (one covers every group commit since)",
    )  # fmt: skip
    shutdown_grace_seconds: float = setting(
        10.0, bounds=(0.0, 300.0), help="in-flight commits get this long on SIGTERM"
    )
    frontend_processes: int = setting(
        0, bounds=(0, 256),
        help="front-end processes serving gRPC on --listen (SO_REUSEPORT) that decode, validate "
        "and verify, feeding this process (the WAL owner) over a Unix socket; 0: this process "
        "serves gRPC itself",
    )  # fmt: skip

    @property
    def log_key_path(self) -> Path:
        """--log-key, or its default ``<wal-dir>/log.key``."""
        return self.log_key if self.log_key is not None else self.wal_dir / DEFAULT_LOG_KEY_NAME

    def __post_init__(self) -> None:
        object.__setattr__(self, "wal_dir", Path(self.wal_dir))
        super().__post_init__()


def build_parser() -> EnvArgumentParser:
    return _build_parser(WriterConfig, _PROG, _DESCRIPTION)


def load_trusted_keys(path: Path) -> frozenset[bytes]:
    """Read one 64-hex-digit ed25519 public key per line; '#' starts a comment."""
    keys = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ValueError(f"{path}:{number}: expected a 64-hex-digit ed25519 public key")
        keys.add(key)
    return frozenset(keys)


def _check_frontends(values: Mapping[str, Any]) -> None:
    if not values.get("frontend_processes"):
        return
    listen = str(values.get("listen", ""))
    if listen.rpartition(":")[2] == "0":
        raise ValueError(
            "--frontend-processes needs a fixed port in --listen (the front ends share it), "
            f"got {listen}"
        )


def _derive(values: Mapping[str, Any]) -> dict[str, Any]:
    _check_frontends(values)
    path = values.get("trusted_keys_file")
    if path is None:
        return {}
    try:
        return {"trusted_keys": load_trusted_keys(path)}
    except (OSError, ValueError) as exc:
        raise ValueError(f"--trusted-keys: {exc}") from None


def config_from_args(argv: list[str] | None = None) -> WriterConfig:
    """Parse ``argv`` (and STEMEDB_* variables) into a validated config; exits 2 on bad input."""
    return _config_from_args(
        WriterConfig, argv, prog=_PROG, description=_DESCRIPTION, derive=_derive
    )
