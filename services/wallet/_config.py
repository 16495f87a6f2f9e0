"""The wallet's configuration: one frozen dataclass extending the shell's ``ServerSettings``;
its flags, ``STEMEDB_*`` variables, defaults and bounds are generated from the fields."""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import nacl.pwhash.argon2id

from stemedb.runtime import (
    EnvArgumentParser,
    ServerSettings,
    log_event,
    optional_path,
    parse_host_port,
    setting,
    unix_socket_path,
)
from stemedb.runtime import build_parser as _build_parser
from stemedb.runtime import config_from_args as _config_from_args
from stemedb.wallet._errors import KeystoreError
from stemedb.wallet._format import (
    DEFAULT_KDF,
    KDF_MEMLIMIT_BYTES_MAX,
    KDF_OPSLIMIT_MAX,
    KdfParams,
)
from stemedb.wallet._keystore import KeystoreLimits

__all__ = [
    "PASSPHRASE_ENV",
    "WalletConfig",
    "build_parser",
    "check_listen",
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
_PROG = "stemedb-wallet"
_DESCRIPTION = "StemeDB wallet: holds agents' ed25519 keys and signs their records."
_log = logging.getLogger("stemedb.wallet")


def check_listen(value: str) -> None:
    """``unix:PATH``, or a loopback ``HOST:PORT``: the wallet signs for whoever reaches it."""
    if unix_socket_path(value) is not None:
        if value == "unix:":
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
        raise ValueError(f"{value!r}: the wallet serves TCP on loopback only")


@dataclass(frozen=True)
class WalletConfig(ServerSettings):
    """Everything the wallet needs; every bound is named with its unit. The flags and their
    ``STEMEDB_*`` variables are generated from the fields (``stemedb.runtime.setting``); the
    shell's own (``--tls-cert``, ``--tls-key``, ``--tls-client-ca``, ``--health-listen``,
    ``--shutdown-grace-seconds``, ``--log-level``) come from :class:`ServerSettings`."""

    LISTEN_UNIX_ALLOWED: ClassVar[bool] = True

    keystore: Path = setting(Path(DEFAULT_KEYSTORE), help="keystore directory")
    passphrase_file: Path | None = setting(
        None, parse=optional_path,
        help=f"file holding the keystore passphrase (else ${PASSPHRASE_ENV}, then removed from "
        "the environment)",
    )  # fmt: skip
    listen: str = setting(
        DEFAULT_LISTEN, check=check_listen,
        help="unix:PATH (a socket of mode 0600) or a loopback HOST:PORT (TLS and mutual TLS "
        "with --tls-cert, --tls-key, --tls-client-ca)",
    )  # fmt: skip
    writer: str = setting(DEFAULT_WRITER, help="the writer's gRPC address the proxy forwards to")
    writer_tls_ca: Path | None = setting(
        None, parse=optional_path,
        help="PEM CA to trust for the writer's certificate; enables TLS to the writer",
    )  # fmt: skip
    writer_tls_cert: Path | None = setting(
        None, parse=optional_path,
        help="PEM client certificate for mutual TLS to the writer (enables TLS; system roots "
        "unless --writer-tls-ca)",
    )  # fmt: skip
    writer_tls_key: Path | None = setting(
        None, parse=optional_path, help="PEM private key of --writer-tls-cert"
    )
    writer_tls_server_name: str = setting(
        "", help="check the writer's certificate against this name instead of the host"
    )
    metrics_listen: str = setting(DEFAULT_METRICS_LISTEN, help="Prometheus /metrics HOST:PORT")
    kdf_opslimit: int = setting(
        DEFAULT_KDF.opslimit, bounds=(nacl.pwhash.argon2id.OPSLIMIT_MIN, KDF_OPSLIMIT_MAX),
        help="Argon2id passes, for a new keystore",
    )  # fmt: skip
    kdf_memlimit_bytes: int = setting(
        DEFAULT_KDF.memlimit_bytes,
        bounds=(nacl.pwhash.argon2id.MEMLIMIT_MIN, KDF_MEMLIMIT_BYTES_MAX),
        help="Argon2id memory in bytes, for a new keystore",
    )  # fmt: skip
    keys_max: int = setting(
        KeystoreLimits.keys_max, bounds=(1, 1_000_000), help="keys one keystore may hold"
    )
    sequence_block_votes: int = setting(
        KeystoreLimits.sequence_block_votes, bounds=(1, 1_000_000),
        help="vote sequences reserved per durable write of <name>.seq (the most a crash skips)",
    )  # fmt: skip
    # gRPC's own bound on a message: room above the contract's 16 MiB batch, plus signatures.
    max_message_bytes: int = setting(
        24 * 1024 * 1024, bounds=(1024, 1 << 30),
        help="gRPC's bound on a request or response message, in bytes",
    )  # fmt: skip
    inflight_requests_max: int = setting(
        1024, bounds=(1, 1_000_000),
        help="data-path requests being served at once; more get RESOURCE_EXHAUSTED (health and "
        "reflection are exempt)",
    )  # fmt: skip
    forward_timeout_seconds: float = setting(
        60.0, bounds=(0.001, 3600.0),
        help="the longest a forwarded append may take when the agent set no deadline",
    )  # fmt: skip
    shutdown_grace_seconds: float = setting(
        10.0, bounds=(0.0, 300.0), help="in-flight calls get this long on SIGTERM"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "keystore", Path(self.keystore))
        if (self.writer_tls_cert is None) != (self.writer_tls_key is None):
            raise ValueError("--writer-tls-cert and --writer-tls-key go together")
        if self.writer_tls_server_name and not self.writer_tls:
            raise ValueError("--writer-tls-server-name needs --writer-tls-ca or --writer-tls-cert")
        super().__post_init__()

    @property
    def writer_tls(self) -> bool:
        """Whether the proxy reaches the writer over TLS."""
        return self.writer_tls_ca is not None or self.writer_tls_cert is not None

    @property
    def kdf(self) -> KdfParams:
        """Argon2id cost of a new keystore (an existing one keeps its own)."""
        return KdfParams(self.kdf_opslimit, self.kdf_memlimit_bytes)

    @property
    def limits(self) -> KeystoreLimits:
        return KeystoreLimits(
            keys_max=self.keys_max, sequence_block_votes=self.sequence_block_votes
        )

    @property
    def unix_socket(self) -> Path | None:
        """The socket's path when listening on a Unix socket."""
        return unix_socket_path(self.listen)


def build_parser() -> EnvArgumentParser:
    return _build_parser(WalletConfig, _PROG, _DESCRIPTION)


def config_from_args(argv: list[str] | None = None) -> WalletConfig:
    """Parse ``argv`` (and STEMEDB_* variables) into a validated config; exits 2 on bad input."""
    return _config_from_args(WalletConfig, argv, prog=_PROG, description=_DESCRIPTION)


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
    """Warn when others may read the passphrase file, or a group that is not the wallet's own
    (Kubernetes mounts a Secret 0440 in the pod's fsGroup, the wallet's own group)."""
    st = path.stat()
    mode = st.st_mode & 0o777
    if mode & 0o007 or (mode & 0o070 and st.st_gid != os.getegid()):
        log_event(
            _log, logging.WARNING, "passphrase file is readable by others",
            path=str(path), mode=f"{mode:o}", advice="chmod 600",
        )  # fmt: skip
