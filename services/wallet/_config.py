"""The wallet's configuration: one frozen dataclass, built from flags and environment."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from stemedb.wallet._errors import KeystoreError
from stemedb.wallet._format import DEFAULT_KDF, KdfParams
from stemedb.wallet._keystore import KeystoreLimits

from stemedb.runtime import EnvArgumentParser, log_event, parse_host_port

__all__ = [
    "PASSPHRASE_ENV",
    "WalletConfig",
    "build_parser",
    "config_from_args",
    "read_passphrase",
]

DEFAULT_KEYSTORE = "./data/wallet"
DEFAULT_LISTEN = "unix:./data/wallet.sock"
DEFAULT_WRITER = "127.0.0.1:50051"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9104"
# The passphrase may come from the environment (a Kubernetes Secret as an env var); a file is
# preferred (--passphrase-file), since the environment of a process is easier to leak.
PASSPHRASE_ENV = "STEMEDB_WALLET_PASSPHRASE"
PASSPHRASE_BYTES_MAX = 4096
_log = logging.getLogger("stemedb.wallet")


@dataclass(frozen=True)
class WalletConfig:
    """Everything the wallet needs; every bound is named with its unit."""

    keystore: Path = Path(DEFAULT_KEYSTORE)
    passphrase_file: Path | None = None
    listen: str = DEFAULT_LISTEN
    writer: str = DEFAULT_WRITER
    metrics_listen: str = DEFAULT_METRICS_LISTEN
    kdf: KdfParams = DEFAULT_KDF
    limits: KeystoreLimits = field(default_factory=KeystoreLimits)
    # gRPC's own bound on a message: room above the contract's 16 MiB batch, plus signatures.
    max_message_bytes: int = 24 * 1024 * 1024
    inflight_requests_max: int = 1024
    forward_timeout_seconds: float = 60.0
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"

    @property
    def unix_socket(self) -> Path | None:
        """The socket's path when listening on a Unix socket."""
        return Path(self.listen[len("unix:") :]) if self.listen.startswith("unix:") else None


def build_parser() -> EnvArgumentParser:
    p = EnvArgumentParser(
        prog="stemedb-wallet",
        description="StemeDB wallet: holds agents' ed25519 keys and signs their records.",
    )
    p.add_argument("--keystore", default=DEFAULT_KEYSTORE, help="keystore directory")
    p.add_argument(
        "--passphrase-file",
        default=None,
        help=f"file holding the keystore passphrase (else ${PASSPHRASE_ENV})",
    )
    p.add_argument(
        "--listen", default=DEFAULT_LISTEN, help="unix:PATH (mode 0600) or loopback HOST:PORT"
    )
    p.add_argument("--writer", default=DEFAULT_WRITER, help="the writer's gRPC address")
    p.add_argument(
        "--metrics-listen", default=DEFAULT_METRICS_LISTEN, help="Prometheus /metrics HOST:PORT"
    )
    p.add_argument("--kdf-opslimit", type=int, default=DEFAULT_KDF.opslimit,
                   help="Argon2id passes, for a new keystore")  # fmt: skip
    p.add_argument("--kdf-memlimit-bytes", type=int, default=DEFAULT_KDF.memlimit_bytes,
                   help="Argon2id memory, for a new keystore")  # fmt: skip
    p.add_argument("--keys-max", type=int, default=KeystoreLimits.keys_max)
    p.add_argument("--sequence-block-votes", type=int, default=KeystoreLimits.sequence_block_votes)
    p.add_argument("--max-message-bytes", type=int, default=24 * 1024 * 1024)
    p.add_argument("--inflight-requests-max", type=int, default=1024)
    p.add_argument("--forward-timeout-seconds", type=float, default=60.0)
    p.add_argument("--shutdown-grace-seconds", type=float, default=10.0)
    p.add_argument("--log-level", default="INFO")
    return p


def _check_listen(value: str) -> None:
    if value.startswith("unix:"):
        if not value[len("unix:") :]:
            raise ValueError("unix: needs a path")
        return
    host, _port = parse_host_port(value)
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{value!r}: the wallet serves TCP on loopback only (no TLS yet)")


def config_from_args(argv: list[str] | None = None) -> WalletConfig:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        _check_listen(a.listen)
    except ValueError as exc:
        parser.error(f"--listen: {exc}")
    try:
        parse_host_port(a.metrics_listen)
    except ValueError as exc:
        parser.error(f"--metrics-listen: {exc}")
    kdf = KdfParams(a.kdf_opslimit, a.kdf_memlimit_bytes)
    try:
        kdf.check()
    except ValueError as exc:
        parser.error(f"--kdf-opslimit/--kdf-memlimit-bytes: {exc}")
    for name in ("keys_max", "sequence_block_votes", "max_message_bytes", "inflight_requests_max"):
        if getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return WalletConfig(
        keystore=Path(a.keystore),
        passphrase_file=Path(a.passphrase_file) if a.passphrase_file else None,
        listen=a.listen,
        writer=a.writer,
        metrics_listen=a.metrics_listen,
        kdf=kdf,
        limits=KeystoreLimits(keys_max=a.keys_max, sequence_block_votes=a.sequence_block_votes),
        max_message_bytes=a.max_message_bytes,
        inflight_requests_max=a.inflight_requests_max,
        forward_timeout_seconds=a.forward_timeout_seconds,
        shutdown_grace_seconds=a.shutdown_grace_seconds,
        log_level=a.log_level,
    )


def read_passphrase(cfg: WalletConfig) -> bytes:
    """The passphrase from --passphrase-file (one trailing newline dropped) or the environment."""
    if cfg.passphrase_file is not None:
        try:
            with open(cfg.passphrase_file, "rb") as f:
                raw = f.read(PASSPHRASE_BYTES_MAX + 2)
        except OSError as exc:
            raise KeystoreError(f"--passphrase-file: {exc}") from None
        where = f"--passphrase-file {cfg.passphrase_file}"
        _warn_if_shared(cfg.passphrase_file)
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
    else:
        # Taken out of the environment once read, so that nothing started later inherits it.
        env = os.environ.pop(PASSPHRASE_ENV, None)
        if env is None:
            raise KeystoreError(f"no passphrase: give --passphrase-file or set {PASSPHRASE_ENV}")
        raw, where = env.encode("utf-8"), PASSPHRASE_ENV
    if not raw:
        raise KeystoreError(f"{where}: the passphrase is empty")
    if len(raw) > PASSPHRASE_BYTES_MAX:
        raise KeystoreError(f"{where}: the passphrase is longer than {PASSPHRASE_BYTES_MAX} bytes")
    return raw


def _warn_if_shared(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log_event(
            _log, logging.WARNING, "passphrase file is readable by others",
            path=str(path), mode=f"{mode:o}", advice="chmod 600",
        )  # fmt: skip
