"""The writer's configuration: one frozen dataclass, built from flags and environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stemedb.writer._verify import usable_cpus

from stemedb.runtime import EnvArgumentParser, parse_host_port

__all__ = ["WriterConfig", "build_parser", "config_from_args", "load_trusted_keys"]

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9101"
DEFAULT_WAL_DIR = "./data/wal"


@dataclass(frozen=True)
class WriterConfig:
    """Everything the writer needs; every queue and wait has a bound named with its unit."""

    wal_dir: Path = Path(DEFAULT_WAL_DIR)
    listen: str = DEFAULT_LISTEN
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    require_signatures: bool = False
    trusted_keys: frozenset[bytes] | None = None
    trusted_keys_file: Path | None = None
    # gRPC refuses larger messages before our code sees them; the 16 MiB batch limit of the
    # contract is checked by validation with a clear message, so this leaves room above it.
    max_message_bytes: int = 20 * 1024 * 1024
    inflight_requests_max: int = 1024
    inflight_records_max: int = 200_000
    inflight_bytes_max: int = 32 * 1024 * 1024  # raw request bytes being processed
    verify_workers: int = field(default_factory=usable_cpus)
    # Requests with at most this many signatures verify in the server process: a round trip to a
    # worker process costs more than a few verifications (about 70 us each).
    inline_signatures_max: int = 8
    segment_size_bytes: int = 64 * 1024 * 1024
    sync_mode: str = "fdatasync"
    retention: bool = False
    fsync_warn_seconds: float = 0.5
    shutdown_grace_seconds: float = 10.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    log_level: str = "INFO"


def build_parser() -> EnvArgumentParser:
    p = EnvArgumentParser(
        prog="stemedb-writer",
        description="StemeDB writer: validated, signed, durable appends to the write-ahead log.",
    )
    p.add_argument("--wal-dir", default=DEFAULT_WAL_DIR, help="WAL directory (shared volume)")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="gRPC address HOST:PORT")
    p.add_argument(
        "--metrics-listen", default=DEFAULT_METRICS_LISTEN, help="Prometheus /metrics HOST:PORT"
    )
    p.add_argument(
        "--require-signatures",
        action="store_true",
        default=False,
        help="refuse assertions and epochs without at least one valid signature",
    )
    p.add_argument(
        "--trusted-keys", default=None, help="file of trusted ed25519 keys, hex per line"
    )
    p.add_argument("--max-message-bytes", type=int, default=20 * 1024 * 1024)
    p.add_argument("--inflight-requests-max", type=int, default=1024)
    p.add_argument("--inflight-records-max", type=int, default=200_000)
    p.add_argument(
        "--inflight-bytes-max", type=int, default=32 * 1024 * 1024,
        help="raw bytes of the append requests being processed; more get RESOURCE_EXHAUSTED",
    )  # fmt: skip
    p.add_argument("--verify-workers", type=int, default=usable_cpus())
    p.add_argument("--segment-size-bytes", type=int, default=64 * 1024 * 1024)
    p.add_argument(
        "--sync",
        choices=["fdatasync", "none"],
        default="fdatasync",
        help="'none' is for benchmarks only: acknowledged records can be lost on power loss",
    )
    p.add_argument("--retention", action="store_true", default=False)
    p.add_argument("--fsync-warn-seconds", type=float, default=0.5)
    p.add_argument("--shutdown-grace-seconds", type=float, default=10.0)
    p.add_argument("--tls-cert", default=None, help="PEM server certificate (enables TLS)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", default=None, help="PEM CA: require client certificates")
    p.add_argument("--log-level", default="INFO")
    return p


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


def config_from_args(argv: list[str] | None = None) -> WriterConfig:
    parser = build_parser()
    a = parser.parse_args(argv)
    for name in ("listen", "metrics_listen"):
        try:
            parse_host_port(getattr(a, name))
        except ValueError as exc:
            parser.error(f"--{name.replace('_', '-')}: {exc}")
    if bool(a.tls_cert) != bool(a.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if a.tls_client_ca and not a.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    trusted = None
    if a.trusted_keys:
        try:
            trusted = load_trusted_keys(Path(a.trusted_keys))
        except (OSError, ValueError) as exc:
            parser.error(f"--trusted-keys: {exc}")
    for name in ("inflight_requests_max", "inflight_records_max", "inflight_bytes_max",
                 "verify_workers"):  # fmt: skip
        if getattr(a, name) < 1 and not (name == "verify_workers" and a.verify_workers == 0):
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return WriterConfig(
        wal_dir=Path(a.wal_dir),
        listen=a.listen,
        metrics_listen=a.metrics_listen,
        require_signatures=a.require_signatures,
        trusted_keys=trusted,
        trusted_keys_file=Path(a.trusted_keys) if a.trusted_keys else None,
        max_message_bytes=a.max_message_bytes,
        inflight_requests_max=a.inflight_requests_max,
        inflight_records_max=a.inflight_records_max,
        inflight_bytes_max=a.inflight_bytes_max,
        verify_workers=a.verify_workers,
        segment_size_bytes=a.segment_size_bytes,
        sync_mode=a.sync,
        retention=a.retention,
        fsync_warn_seconds=a.fsync_warn_seconds,
        shutdown_grace_seconds=a.shutdown_grace_seconds,
        tls_cert=Path(a.tls_cert) if a.tls_cert else None,
        tls_key=Path(a.tls_key) if a.tls_key else None,
        tls_client_ca=Path(a.tls_client_ca) if a.tls_client_ca else None,
        log_level=a.log_level,
    )
